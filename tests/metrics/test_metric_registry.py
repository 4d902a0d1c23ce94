"""Metrics are objects in one registry; one dispatcher scores with any of them, computing the
values that several metrics read once."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tailor.metrics.metric
from tailor.metrics import (
    METRICS,
    Metric,
    PerExampleScores,
    bootstrap_ci,
    classification_scores,
    generation_scores,
    lower_is_better,
    paired_comparison,
    rating_scores,
    score_metrics,
)
from tailor.metrics.metric import metric_registry

BUILT_IN = ("accuracy", "bleu", "f1", "mae", "meteor", "rmse", "rouge-1", "rouge-L")


def test_the_built_in_metrics_are_registered_under_their_names() -> None:
    assert set(BUILT_IN) <= set(METRICS.names())
    for name in BUILT_IN:
        metric = METRICS.load(name)
        assert isinstance(metric, Metric) and metric.name == name and metric.help
        assert METRICS.help(name) == metric.help
        assert metric.higher_is_better == (name not in ("mae", "rmse"))
        assert lower_is_better(name) == (not metric.higher_is_better)


def test_metrics_that_read_the_same_values_share_one_computation() -> None:
    load = METRICS.load
    assert load("accuracy").values is load("f1").values
    assert load("mae").values is load("rmse").values
    assert load("rouge-1").values is load("rouge-L").values
    assert load("bleu").values is not load("rouge-1").values


def test_scoring_by_names_is_the_official_computation_bit_for_bit() -> None:
    predictions, golds = ["b", "a", "c", "x"], ["a", "a", "c", "b"]
    scored = score_metrics(["accuracy", "f1"], predictions, golds, labels=["a", "b", "c"])
    direct = classification_scores(predictions, golds, ["a", "b", "c"])
    assert scored.aggregate() == direct.aggregate() == {"accuracy": 0.5, "f1": pytest.approx(5 / 9)}
    assert bootstrap_ci(scored, n_resamples=50) == bootstrap_ci(direct, n_resamples=50)
    ratings = score_metrics(["mae", "rmse"], ["4", "x", "1"], ["5", "2", "1"], labels=["1", "2", "3", "4", "5"])
    assert ratings.aggregate() == rating_scores(["4", "x", "1"], ["5", "2", "1"]).aggregate()
    texts, refs = ["the cat sat", "a dog"], ["the cat sat on the mat", "a dog barked"]
    generated = score_metrics(["rouge-1", "rouge-L", "bleu"], texts, refs)
    assert generated.aggregate() == generation_scores(texts, refs).aggregate()
    assert list(generated.columns) == ["rouge-1", "rouge-L", "bleu"]


def test_each_computation_runs_once_however_many_metrics_read_it() -> None:
    calls: list[int] = []

    def lengths(predictions: Sequence[str], golds: Sequence[str], *, labels: Sequence[str],
                ids: Sequence[Any] | None) -> PerExampleScores:
        calls.append(len(predictions))
        return PerExampleScores("generation", {"short": np.array([float(len(p) < 5) for p in predictions]),
                                               "long": np.array([float(len(p) >= 5) for p in predictions])})

    short = Metric("short", "share of short answers", lengths, lambda columns, _: float(columns["short"].mean()))
    long = Metric("long", "share of long answers", lengths, lambda columns, _: float(columns["long"].mean()),
                  higher_is_better=False)
    scores = score_metrics([short, long, "rouge-1"], ["ab", "abcdef", "abc"], ["ab", "x", "abc"])
    assert calls == [3]
    assert scores.aggregate() == {"short": pytest.approx(2 / 3), "long": pytest.approx(1 / 3),
                                  "rouge-1": pytest.approx(2 / 3)}
    assert scores.lower_is_better("long") and not scores.lower_is_better("short")
    # The paired comparison takes the direction from the scores' own metrics.
    fewer_long = score_metrics([short, long, "rouge-1"], ["ab", "abc", "abc"], ["ab", "x", "abc"])
    assert paired_comparison(scores, fewer_long, n_resamples=50)["long"]["delta"] < 0


def test_a_metric_of_one_value_per_example() -> None:
    exact = Metric.per_example("exact", "1 when the answer is the gold", lambda p, g: float(p.strip() == g.strip()))
    scores = score_metrics([exact], ["a ", "b", "c"], ["a", "x", "c"])
    assert scores.aggregate() == {"exact": pytest.approx(2 / 3)}
    assert scores.aggregate([1, 1]) == {"exact": 0.0}
    with pytest.raises(ValueError, match="pair up"):
        score_metrics([exact], ["a"], [])


def test_metrics_of_different_kinds_or_names_are_refused() -> None:
    with pytest.raises(ValueError, match="values of different kinds"):
        score_metrics(["accuracy", "mae"], ["1"], ["1"], labels=["1", "2"])
    with pytest.raises(ValueError, match="distinct names"):
        score_metrics(["mae", "mae"], ["1"], ["1"])
    with pytest.raises(ValueError, match="no metrics"):
        score_metrics([], ["1"], ["1"])
    with pytest.raises(ValueError, match="unknown metric 'cider'; valid names: accuracy"):
        score_metrics(["cider"], ["1"], ["1"])


def test_a_rating_scale_comes_from_the_labels() -> None:
    # An unparsable answer is the scale's farther end from the gold: 10 on a 1-10 scale.
    scores = score_metrics(["mae"], ["great"], ["2"], labels=[str(k) for k in range(1, 11)])
    assert scores.aggregate() == {"mae": 8.0}
    with pytest.raises(ValueError, match="labels must be numbers"):
        score_metrics(["mae"], ["1"], ["1"], labels=["low", "high"])


def test_a_metric_added_by_entry_point_is_taken_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tailor_test_metric.py").write_text(
        "from tailor.metrics import Metric\n"
        "LENGTH = Metric.per_example('length', 'words per answer', lambda p, g: len(p.split()),\n"
        "                            higher_is_better=False)\n")
    dist_info = tmp_path / "tailor_test_metric-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: tailor-test-metric\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[tailor.metrics]\nlength = tailor_test_metric:LENGTH\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(tailor.metrics.metric, "METRICS", metric_registry())
    assert lower_is_better("length")
    assert score_metrics(["length", "rouge-1"], ["a b c", "d"], ["a", "d"]).aggregate()["length"] == 2.0
    monkeypatch.delitem(sys.modules, "tailor_test_metric")
