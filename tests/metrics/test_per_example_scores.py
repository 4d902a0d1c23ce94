import subprocess
import sys

import numpy as np
import pytest

from tailor.metrics import PerExampleScores, classification_scores, lower_is_better, rating_scores


def test_aggregate_over_a_subset_with_repeats() -> None:
    # golds a a b b, predictions a b b a (indices 0 1 1 0 / 0 0 1 1)
    scores = classification_scores(["a", "b", "b", "a"], ["a", "a", "b", "b"], ["a", "b"])
    # subset [0, 0, 2]: all correct -> accuracy 1; a: tp 2 of 2, b: tp 1 of 1 -> F1 1
    assert scores.aggregate([0, 0, 2]) == {"accuracy": 1.0, "f1": 1.0}
    # subset [1, 1, 0]: predictions b b a, golds a a a -> accuracy 1/3;
    # a: tp=1, predicted 1, gold 3 -> F=2/4; b: tp=0 -> 0; macro = 1/4
    metrics = scores.aggregate(np.array([1, 1, 0]))
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    assert metrics["f1"] == pytest.approx(1 / 4)


def test_rating_subset() -> None:
    scores = rating_scores(["1", "3", "5"], ["2", "3", "1"])  # errors 1, 0, 4
    assert scores.aggregate([2, 0]) == pytest.approx({"mae": 5 / 2, "rmse": np.sqrt(17 / 2)})


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ([], "no examples"),
        ([0, 3], r"indices must lie in \[0, 3\)"),
        ([-1], r"indices must lie in \[0, 3\)"),
        ([0.5], "must be integers"),
        ([[0, 1]], "one-dimensional"),
    ],
)
def test_bad_indices_raise(indices: list, message: str) -> None:
    scores = rating_scores(["1", "2", "3"], ["1", "2", "3"])
    with pytest.raises(ValueError, match=message):
        scores.aggregate(indices)


def test_columns_are_copied_and_read_only() -> None:
    values = np.array([0.5, 1.0])
    scores = PerExampleScores(kind="generation", columns={"rouge-1": values, "rouge-L": values})
    values[0] = 0.0
    assert scores.columns["rouge-1"][0] == 0.5
    with pytest.raises(ValueError):
        scores.columns["rouge-1"][0] = 0.0
    with pytest.raises(TypeError):
        scores.columns["bleu"] = values  # type: ignore[index]


def test_names_are_stable_and_direction_is_known() -> None:
    assert classification_scores(["a"], ["a"], ["a"]).names() == ("accuracy", "f1")
    rating = rating_scores(["1"], ["1"])
    assert rating.names() == ("mae", "rmse")
    assert rating.lower_is_better("mae") and lower_is_better("rmse")
    assert not any(lower_is_better(name) for name in ("accuracy", "f1", "rouge-1", "rouge-L", "bleu"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "sorting", "columns": {}}, "unknown kind 'sorting'"),
        ({"kind": "rating", "columns": {"prediction": [1.0]}}, "missing \\['gold'\\]"),
        ({"kind": "rating", "columns": {"prediction": [1.0], "gold": [1.0], "x": [1.0]}}, "extra \\['x'\\]"),
        ({"kind": "rating", "columns": {"prediction": [1.0], "gold": [1.0, 2.0]}}, "same length"),
        ({"kind": "classification", "columns": {"prediction": [0], "gold": [0]}}, "n_labels >= 1"),
        ({"kind": "classification", "columns": {"prediction": [0], "gold": [2]}, "n_labels": 2}, "gold label"),
        ({"kind": "classification", "columns": {"prediction": [-2], "gold": [0]}, "n_labels": 2}, "predicted label"),
        ({"kind": "classification", "columns": {"prediction": [0.0], "gold": [0]}, "n_labels": 2}, "integer"),
        ({"kind": "generation", "columns": {"rouge-1": [[1.0]], "rouge-L": [[1.0]]}}, "one-dimensional"),
    ],
)
def test_invalid_scores_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PerExampleScores(**kwargs)


def test_importing_metrics_stays_light() -> None:
    # rouge_score pulls in nltk (over a second); it must load only when generation is scored
    code = "import sys, tailor.metrics; print(sorted({'rouge_score', 'nltk', 'sacrebleu'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
