"""Ranking metrics: Recall@K, NDCG@K, HitRate@K (K = 1, 5, 10) and MRR, per example.

A prediction is a ranked list of item ids written as a JSON array (``'["50", "181"]'``,
best first; a ranking task's prediction files hold it so); a gold is the id of the item
the user chose, or a JSON array of ids when several are relevant. Relevance is binary:

- Recall@K: the share of the relevant items in the top K;
- HitRate@K: 1 when any relevant item is in the top K (with one relevant item, as in
  leave-one-out, Recall@K and HitRate@K are the same number);
- NDCG@K: the discounted gain of the relevant items in the top K (1 / log2(rank + 1)),
  divided by the best possible one;
- MRR: 1 / the rank of the first relevant item in the list, 0 when none is in it.

A prediction that is not a JSON array of strings counts as an empty ranking (every
value 0), as the official LaMP evaluator scores an unreadable answer as wrong. An item
listed twice counts at its first place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from tailor.metrics.metric import ColumnMean, Metric

CUTOFFS: tuple[int, ...] = (1, 5, 10)


def parse_ranking(text: str) -> list[str]:
    """The item ids of a prediction, best first, each once; ``[]`` when it is no JSON array of strings."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return []
    return list(dict.fromkeys(value))


def relevant_items(gold: str) -> set[str]:
    """The relevant item ids a gold names: one id, or a JSON array of ids."""
    text = gold.strip()
    if text.startswith("["):
        value = json.loads(text)
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            return set(value)
        raise ValueError(f"a gold that starts with '[' must be a JSON array of item ids, got {gold!r}")
    return {text}


def example_metrics(ranking: Sequence[str], relevant: set[str], cutoffs: Sequence[int] = CUTOFFS) -> dict[str, float]:
    """Every ranking metric of one ranked list against its relevant items."""
    places = [place for place, item in enumerate(ranking, start=1) if item in relevant]
    values: dict[str, float] = {}
    for k in cutoffs:
        within = [place for place in places if place <= k]
        ideal = sum(1.0 / math.log2(place + 1) for place in range(1, min(len(relevant), k) + 1))
        values[f"recall@{k}"] = len(within) / len(relevant)
        values[f"hitrate@{k}"] = 1.0 if within else 0.0
        values[f"ndcg@{k}"] = sum(1.0 / math.log2(place + 1) for place in within) / ideal
    values["mrr"] = 1.0 / places[0] if places else 0.0
    return values


class RankingValues:
    """The per-example values of every ranking metric, computed in one pass."""

    def __call__(self, predictions: Sequence[str], golds: Sequence[str], *, labels: Sequence[str],
                 ids: Sequence[Any] | None) -> Any:
        import numpy as np

        from tailor.metrics.scores import PerExampleScores, check_inputs

        check_inputs(predictions, golds, ids)
        rows = [example_metrics(parse_ranking(prediction), relevant_items(gold))
                for prediction, gold in zip(predictions, golds)]
        names = [*(f"{name}@{k}" for name in ("recall", "hitrate", "ndcg") for k in CUTOFFS), "mrr"]
        return PerExampleScores(kind="ranking", columns={name: np.array([row[name] for row in rows], dtype=float)
                                                         for name in names})

    def __hash__(self) -> int:
        return hash(RankingValues)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RankingValues)


_VALUES = RankingValues()
_HELP = {"recall": "share of the relevant items in the top {k}",
         "hitrate": "1 when a relevant item is in the top {k} (HitRate@{k})",
         "ndcg": "normalized discounted cumulative gain of the top {k}"}


def _metric(name: str, k: int) -> Metric:
    column = f"{name}@{k}"
    return Metric(column, _HELP[name].format(k=k), _VALUES, ColumnMean(column))


RECALL_1, RECALL_5, RECALL_10 = (_metric("recall", k) for k in CUTOFFS)
HITRATE_1, HITRATE_5, HITRATE_10 = (_metric("hitrate", k) for k in CUTOFFS)
NDCG_1, NDCG_5, NDCG_10 = (_metric("ndcg", k) for k in CUTOFFS)
MRR = Metric("mrr", "mean reciprocal rank of the first relevant item (0 when it is not in the list)", _VALUES,
             ColumnMean("mrr"))

RANKING_METRICS: tuple[str, ...] = (
    "ndcg@10", "recall@10", "hitrate@10", "mrr", "ndcg@5", "recall@5", "hitrate@5", "ndcg@1", "recall@1", "hitrate@1")
"""The ranking metrics in the order results list them (NDCG@10 first: the main metric)."""

__all__ = ["CUTOFFS", "HITRATE_1", "HITRATE_5", "HITRATE_10", "MRR", "NDCG_1", "NDCG_5", "NDCG_10", "RANKING_METRICS",
           "RECALL_1", "RECALL_5", "RECALL_10", "RankingValues", "example_metrics", "parse_ranking", "relevant_items"]
