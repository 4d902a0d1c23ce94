"""Ranking metrics against hand-computed values."""

from __future__ import annotations

import json
import math

import pytest

from tailor.metrics import bootstrap_ci, score_metrics
from tailor.metrics.ranking import RANKING_METRICS, example_metrics, parse_ranking


def ranking(*items: str) -> str:
    return json.dumps(list(items))


def test_one_relevant_item_at_rank_three() -> None:
    values = example_metrics(["x", "y", "g", "z"], {"g"})
    assert values["recall@1"] == 0 and values["recall@5"] == 1 and values["hitrate@5"] == 1
    assert values["ndcg@5"] == pytest.approx(1 / math.log2(4))  # 0.5
    assert values["ndcg@1"] == 0 and values["mrr"] == pytest.approx(1 / 3)


def test_two_relevant_items() -> None:
    values = example_metrics(["a", "x", "b"], {"a", "b"})
    ideal = 1 + 1 / math.log2(3)
    assert values["recall@1"] == 0.5 and values["hitrate@1"] == 1
    assert values["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert values["mrr"] == 1


def test_scores_average_over_examples_and_bootstrap() -> None:
    scores = score_metrics(RANKING_METRICS, [ranking("g", "x"), ranking("x", "g"), ranking("x", "y")], ["g", "g", "g"])
    metrics = scores.aggregate()
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 0) / 3)
    assert metrics["recall@1"] == pytest.approx(1 / 3) and metrics["mrr"] == pytest.approx(0.5)
    low, high = bootstrap_ci(scores, n_resamples=200)["ndcg@10"]
    assert 0 <= low <= metrics["ndcg@10"] <= high <= 1


def test_an_unreadable_prediction_is_an_empty_ranking() -> None:
    assert parse_ranking("not json") == [] and parse_ranking('{"a": 1}') == []
    assert parse_ranking(ranking("a", "b", "a")) == ["a", "b"]
    assert score_metrics(["mrr"], ["oops"], ["g"]).aggregate()["mrr"] == 0
