"""A learned choice of method per input (RSPG-style): the ``auto`` method's selector.

For each input, cheap features of the input, the user's profile and the first-stage
rankings (:func:`input_features`) go through one small regularized linear model per option
(``bm25``, ``recency``, ``dense``, ``hybrid``), each predicting that option's gain over
``none`` on the task's metric. The option of highest predicted gain is chosen only when
that gain exceeds a margin chosen by cross-validation on the training examples; otherwise
the input gets ``none``, so the selector falls back to the plain model unless an option was
clearly better on similar inputs.

The fitted selector is a JSON file (:meth:`Selector.save`): the features' means and scales,
each option's coefficients and the margin, so serving it needs no scikit-learn; fitting
(:func:`fit_selector`) does (extra ``select``). What it was trained on (task, split, example
ids, settings) is kept beside the numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tailor.personalizers.contract import Personalized, Personalizer
from tailor.retrieval.retriever import Retriever
from tailor.tasks.spec import TaskSpec
from tailor.types import Profile

BASELINE = "none"
"""The option every other is measured against, and the selector's fallback."""
DEFAULT_OPTIONS: tuple[str, ...] = (BASELINE, "bm25", "recency", "dense", "hybrid")
"""What ``auto`` chooses among by default: no personalization, or one retrieval method at the task's k."""
FEATURES: tuple[str, ...] = (
    "input_words", "profile_items", "bm25_top", "bm25_margin", "dense_top", "dense_margin",
    "bm25_dense_overlap", "bm25_recency_overlap", "recency_gap")
"""The features of one input, in :func:`input_features`' order (counts as ``log1p``)."""
DEPTH = 5
"""How many top items of each ranking the overlap features compare."""
SELECTOR_FORMAT = 1
MIN_EXAMPLES = 4
"""Fewer training examples than this: the selector always answers ``none``."""
FOLDS = 5


@dataclass(frozen=True)
class FeatureRankers:
    """The first-stage rankings the features read: BM25, recency and (when an embedder is
    at hand) dense, each over the profile handed to :func:`input_features`."""

    bm25: Retriever
    recency: Retriever
    dense: Retriever | None = None


def _overlap(first: Sequence[str], second: Sequence[str]) -> float:
    union = set(first) | set(second)
    return len(set(first) & set(second)) / len(union) if union else 0.0


def _top_and_margin(scores: Sequence[float]) -> tuple[float, float]:
    if not scores:
        return 0.0, 0.0
    top = float(scores[0])
    return top, top - float(scores[1]) if len(scores) > 1 else top


def input_features(task: TaskSpec, text: str, profile: Profile, rankers: FeatureRankers) -> list[float]:
    """The :data:`FEATURES` of one input: its length, the profile's size, BM25's top score
    and its margin over the second, the same for dense similarity (0 without an embedder),
    how much the top items of BM25 and dense, and of BM25 and recency, overlap (Jaccard), and
    how far down the recency order BM25's best item lies (0: it is the newest)."""
    query = task.query(text)
    size = len(profile.records)
    depth = min(DEPTH, size)
    bm25 = rankers.bm25.retrieve(query, profile, depth) if depth else []
    recency = rankers.recency.retrieve(query, profile, size) if depth else []
    dense = rankers.dense.retrieve(query, profile, depth) if depth and rankers.dense is not None else []
    bm25_ids = [hit.record.id for hit in bm25]
    recent_ids = [hit.record.id for hit in recency]
    bm25_top, bm25_margin = _top_and_margin([hit.score for hit in bm25])
    dense_top, dense_margin = _top_and_margin([hit.score for hit in dense])
    gap = recent_ids.index(bm25_ids[0]) / max(size - 1, 1) if bm25_ids and bm25_ids[0] in recent_ids else 0.0
    return [math.log1p(len(query.split())), math.log1p(size), bm25_top, bm25_margin, dense_top, dense_margin,
            _overlap(bm25_ids, [hit.record.id for hit in dense]) if dense else 0.0,
            _overlap(bm25_ids, recent_ids[:depth]), gap]


@dataclass(frozen=True)
class LinearGain:
    """One option's predicted gain over ``none``: standardized features times ``coef``, plus ``intercept``."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def predict(self, features: Sequence[float]) -> float:
        return self.intercept + sum(c * (x - m) / s for c, x, m, s in zip(self.coef, features, self.mean, self.scale))


@dataclass(frozen=True)
class Selector:
    """Picks one of ``options`` per input: the option of highest predicted gain over
    ``none`` when that gain exceeds ``margin``, else ``none`` (``margin`` ``None``: always
    ``none``, what cross-validation found no option clearly better for)."""

    task: str
    options: tuple[str, ...]
    gains: Mapping[str, LinearGain]
    margin: float | None
    features: tuple[str, ...] = FEATURES
    training: Mapping[str, Any] = field(default_factory=dict)
    """What it was fitted on: the split, the example ids, the settings, the cross-validated gain."""

    def __post_init__(self) -> None:
        if not self.options or self.options[0] != BASELINE:
            raise ValueError(f"a selector's first option must be {BASELINE!r}, got {list(self.options)}")
        missing = [option for option in self.options[1:] if option not in self.gains]
        if missing:
            raise ValueError(f"a selector needs a gain model for every option but {BASELINE}; missing {missing}")

    def predicted_gains(self, features: Sequence[float]) -> dict[str, float]:
        """Each option's predicted gain over ``none`` (``none``'s is 0)."""
        if len(features) != len(self.features):
            raise ValueError(f"expected {len(self.features)} features ({', '.join(self.features)}), "
                             f"got {len(features)}")
        return {BASELINE: 0.0} | {option: self.gains[option].predict(features) for option in self.options[1:]}

    def choose(self, features: Sequence[float]) -> str:
        """The option for an input with these features."""
        if self.margin is None or len(self.options) == 1:
            return BASELINE
        gains = self.predicted_gains(features)
        best = max(self.options[1:], key=lambda option: gains[option])
        return best if gains[best] > self.margin else BASELINE

    # -- files -----------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"format": SELECTOR_FORMAT, "kind": "tailor-selector", "task": self.task, "options": list(self.options),
                "features": list(self.features), "margin": self.margin,
                "gains": {option: {"mean": list(g.mean), "scale": list(g.scale), "coef": list(g.coef),
                                   "intercept": g.intercept} for option, g in self.gains.items()},
                "training": dict(self.training)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Selector:
        if data.get("kind") != "tailor-selector" or data.get("format") != SELECTOR_FORMAT:
            raise ValueError(f"not a tailor selector of format {SELECTOR_FORMAT} (made by tailor train-selector)")
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"the selector was fitted on features {data['features']}; this version computes "
                             f"{list(FEATURES)}: train it again")
        gains = {option: LinearGain(tuple(g["mean"]), tuple(g["scale"]), tuple(g["coef"]), float(g["intercept"]))
                 for option, g in data["gains"].items()}
        return cls(task=str(data["task"]), options=tuple(data["options"]), gains=gains,
                   margin=None if data["margin"] is None else float(data["margin"]),
                   features=tuple(data["features"]), training=dict(data.get("training") or {}))

    def save(self, path: str | Path) -> Path:
        """Write it as JSON to ``path`` (its folder created), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Selector:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no selector at {path}; make one with tailor train-selector")
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


# -- fitting ---------------------------------------------------------------------------------------

ALPHAS: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)
"""The ridge penalties each option's gain model chooses among (leave-one-out, on the training examples)."""


def fit_selector(features: Sequence[Sequence[float]], outcomes: Mapping[str, Collection[float]], *, task: str,
                 folds: int = FOLDS, seed: int = 0, training: Mapping[str, Any] | None = None) -> Selector:
    """A selector fitted on training examples: ``features`` one row per example
    (:func:`input_features`), ``outcomes`` each option's metric on each example (higher
    better; ``none`` among them). Each option's gain over ``none`` is fitted by ridge
    regression on standardized features; the margin a predicted gain must exceed is the
    one whose choices gained most over ``none`` on held-out folds, largest on a tie, and the
    selector keeps to ``none`` unless that gain is above 0 by more than its standard error."""
    import numpy as np

    x = np.asarray(features, dtype=float).reshape(len(features), -1)
    if BASELINE not in outcomes:
        raise ValueError(f"outcomes must include {BASELINE!r}, the baseline")
    options = (BASELINE, *(option for option in outcomes if option != BASELINE))
    n = len(x)
    if any(len(outcomes[option]) != n for option in options):
        raise ValueError("every option needs an outcome for every example")
    gains = np.stack([np.asarray(outcomes[o], dtype=float) - np.asarray(outcomes[BASELINE], dtype=float)
                      for o in options[1:]], axis=1) if len(options) > 1 else np.zeros((n, 0))
    info: dict[str, Any] = dict(training or {}) | {"n": n, "mean_gain": {
        o: round(float(gains[:, i].mean()), 6) if n else 0.0 for i, o in enumerate(options[1:])}}
    if n < MIN_EXAMPLES or len(options) == 1:
        models = {o: LinearGain((0.0,) * x.shape[1], (1.0,) * x.shape[1], (0.0,) * x.shape[1], 0.0)
                  for o in options[1:]}
        return Selector(task, options, models, None, training=info | {"why_none": f"fewer than {MIN_EXAMPLES} examples"})
    held_out = np.zeros_like(gains)
    from tailor.registry import require

    model_selection = require("sklearn.model_selection", "select")
    for train_rows, test_rows in model_selection.KFold(n_splits=min(folds, n), shuffle=True, random_state=seed).split(x):
        for i in range(gains.shape[1]):
            held_out[test_rows, i] = _fit_gain(x[train_rows], gains[train_rows, i]).predict_many(x[test_rows])
    margin, cross_validated = _choose_margin(held_out, gains)
    info["cross_validated_gain"] = cross_validated
    models = {o: _fit_gain(x, gains[:, i]).linear() for i, o in enumerate(options[1:])}
    return Selector(task, options, models, margin, training=info)


@dataclass(frozen=True)
class _Fitted:
    mean: Any
    scale: Any
    coef: Any
    intercept: float

    def predict_many(self, x: Any) -> Any:
        return self.intercept + ((x - self.mean) / self.scale) @ self.coef

    def linear(self) -> LinearGain:
        return LinearGain(tuple(float(v) for v in self.mean), tuple(float(v) for v in self.scale),
                          tuple(float(v) for v in self.coef), float(self.intercept))


def _fit_gain(x: Any, y: Any) -> _Fitted:
    from tailor.registry import require

    linear_model = require("sklearn.linear_model", "select")
    preprocessing = require("sklearn.preprocessing", "select")
    scaler = preprocessing.StandardScaler().fit(x)
    ridge = linear_model.RidgeCV(alphas=ALPHAS).fit(scaler.transform(x), y)
    return _Fitted(scaler.mean_, scaler.scale_, ridge.coef_, float(ridge.intercept_))


def _choose_margin(predicted: Any, gains: Any) -> tuple[float | None, dict[str, float]]:
    """The margin whose held-out choices gain most over ``none`` (the largest on a tie),
    and that gain with its standard error; ``None`` when it is not above 0 by more than
    its standard error."""
    import numpy as np

    n = len(gains)
    best_option = predicted.argmax(axis=1)
    best_gain = predicted[np.arange(n), best_option]
    realized = gains[np.arange(n), best_option]
    candidates = sorted({0.0, *(float(g) for g in best_gain if g > 0)}, reverse=True)
    chosen: tuple[float, float, float] | None = None
    for margin in candidates:  # largest first: a tie keeps the more conservative margin
        picked = np.where(best_gain > margin, realized, 0.0)
        mean, error = float(picked.mean()), float(picked.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
        if chosen is None or mean > chosen[1] + 1e-12:
            chosen = (margin, mean, error)
    assert chosen is not None  # candidates holds 0.0
    margin, mean, error = chosen
    summary = {"margin": margin, "gain": round(mean, 6), "standard_error": round(error, 6)}
    return (margin if mean - error > 0 else None), summary


# -- the personalizer --------------------------------------------------------------------------------


class AutoPersonalizer:
    """``auto``: the ``selector``'s option for each input, personalized by that option's
    personalizer (built like the method of the same name); which one is in the result's
    ``notes["chosen"]``."""

    name = "auto"

    def __init__(self, selector: Selector, options: Mapping[str, Personalizer], rankers: FeatureRankers) -> None:
        missing = [option for option in selector.options if option not in options]
        if missing:
            raise ValueError(f"no personalizer for the selector's options {missing}")
        self.selector, self.options, self.rankers = selector, dict(options), rankers

    def choose(self, task: TaskSpec, text: str, profile: Profile) -> str:
        return self.selector.choose(input_features(task, text, profile, self.rankers))

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        chosen = self.choose(task, text, profile)
        decided = self.options[chosen].personalize(task, text, profile)
        return replace(decided, notes={**decided.notes, "chosen": chosen})


__all__ = ["BASELINE", "DEFAULT_OPTIONS", "FEATURES", "AutoPersonalizer", "FeatureRankers", "LinearGain", "Selector",
           "fit_selector", "input_features"]
