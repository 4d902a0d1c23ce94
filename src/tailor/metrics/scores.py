"""Per-example scores for LaMP tasks, aggregated into metrics over any subset of examples.

The rules follow the official LaMP evaluator: outputs are stripped; classification maps them
to the task's label list (unknown labels count as wrong) and reports accuracy and macro-F1 over
the whole label list; rating parses numbers (an unparsable prediction is scored as whichever
bound is farther from the gold) and reports MAE and RMSE; generation reports ROUGE-1 and
ROUGE-L F-measure from ``rouge_score`` without stemming, averaged over examples.

Scores are kept per example so that a bootstrap or a per-user breakdown can re-aggregate any
subset (with repeats) without scoring the texts again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from tailor.metrics.labels import MetricKind

_KINDS: tuple[MetricKind, ...] = ("classification", "rating", "generation")

# Classification and rating columns are exactly these; generation columns are metrics
# themselves (each averaged), so more can be added beside the required ROUGE ones.
_COLUMNS: dict[MetricKind, tuple[str, ...]] = {
    "classification": ("prediction", "gold"),
    "rating": ("prediction", "gold"),
    "generation": ("rouge-1", "rouge-L"),
}

_LOWER_IS_BETTER = frozenset({"mae", "rmse"})


def lower_is_better(name: str) -> bool:
    """Whether a smaller value of metric ``name`` is better (true for ``mae`` and ``rmse``)."""
    return name in _LOWER_IS_BETTER


# eq=False: the generated __eq__ would compare numpy arrays and fail on their truth value.
@dataclass(frozen=True, eq=False)
class PerExampleScores:
    """Per-example values from which a metric set can be aggregated over any subset (for bootstrap).

    ``columns`` holds one 1-D array per name, all of the same length:

    - classification: ``prediction`` and ``gold`` label indices (``prediction`` is -1 for an
      output outside the label list); ``n_labels`` is the size of the label list.
    - rating: ``prediction`` and ``gold`` as numbers (an unparsable prediction already
      replaced by the farther bound).
    - generation: one column per metric (``rouge-1``, ``rouge-L``, optionally ``bleu``).

    The arrays are copied and made read-only, so the scores cannot change after creation.
    """

    kind: MetricKind
    columns: Mapping[str, np.ndarray]
    n_labels: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {', '.join(_KINDS)}")
        required = _COLUMNS[self.kind]
        missing = [name for name in required if name not in self.columns]
        if missing:
            raise ValueError(f"{self.kind} scores need columns {list(required)}; missing {missing}")
        if self.kind != "generation":
            extra = sorted(set(self.columns) - set(required))
            if extra:
                raise ValueError(f"{self.kind} scores take only columns {list(required)}; got extra {extra}")

        frozen: dict[str, np.ndarray] = {}
        for name, values in self.columns.items():
            array = np.array(values)  # a copy, so the caller's array can't change our scores
            if array.ndim != 1:
                raise ValueError(f"column {name!r} must be one-dimensional, got shape {array.shape}")
            if self.kind == "classification":
                if array.size and not np.issubdtype(array.dtype, np.integer):
                    raise ValueError(f"column {name!r} must hold integer label indices, got dtype {array.dtype}")
                array = array.astype(np.int64)
            else:
                array = array.astype(np.float64)
            array.setflags(write=False)
            frozen[name] = array
        lengths = {name: len(array) for name, array in frozen.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"all columns must have the same length, got {lengths}")
        if self.kind == "classification":
            self._check_label_indices(frozen)
        object.__setattr__(self, "columns", MappingProxyType(frozen))

    def _check_label_indices(self, columns: Mapping[str, np.ndarray]) -> None:
        if self.n_labels < 1:
            raise ValueError(f"classification scores need n_labels >= 1, got {self.n_labels}")
        gold, prediction = columns["gold"], columns["prediction"]
        if gold.size and (gold.min() < 0 or gold.max() >= self.n_labels):
            raise ValueError(f"gold label indices must lie in [0, {self.n_labels})")
        if prediction.size and (prediction.min() < -1 or prediction.max() >= self.n_labels):
            raise ValueError(f"predicted label indices must lie in [-1, {self.n_labels}) (-1 marks an unknown label)")

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def names(self) -> tuple[str, ...]:
        """The metric names ``aggregate`` returns, in a stable order."""
        if self.kind == "classification":
            return ("accuracy", "f1")
        if self.kind == "rating":
            return ("mae", "rmse")
        return tuple(self.columns)

    def lower_is_better(self, name: str) -> bool:
        """Whether a smaller value of metric ``name`` is better."""
        return lower_is_better(name)

    def aggregate(self, indices: np.ndarray | Sequence[int] | None = None) -> dict[str, float]:
        """Metrics over the examples at ``indices`` (repeats allowed), or over all when None.

        Raises ValueError when there are no examples to aggregate.
        """
        checked = self._check_indices(indices)
        columns = self.columns if checked is None else {name: array[checked] for name, array in self.columns.items()}
        if self.kind == "classification":
            return _classification_metrics(columns["prediction"], columns["gold"], self.n_labels)
        if self.kind == "rating":
            error = np.abs(columns["prediction"] - columns["gold"])
            return {"mae": float(error.mean()), "rmse": float(np.sqrt(np.mean(error**2)))}
        return {name: float(values.mean()) for name, values in columns.items()}

    def _check_indices(self, indices: np.ndarray | Sequence[int] | None) -> np.ndarray | None:
        if indices is None:
            if len(self) == 0:
                raise ValueError("no examples to aggregate")
            return None
        array = np.asarray(indices)
        if array.ndim != 1:
            raise ValueError(f"indices must be one-dimensional, got shape {array.shape}")
        if array.size == 0:
            raise ValueError("no examples to aggregate: indices is empty")
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"indices must be integers, got dtype {array.dtype}")
        # Negative indices would silently wrap around in numpy; a subset never means that.
        if array.min() < 0 or array.max() >= len(self):
            raise ValueError(f"indices must lie in [0, {len(self)}), got range [{array.min()}, {array.max()}]")
        return array


def _classification_metrics(prediction: np.ndarray, gold: np.ndarray, n_labels: int) -> dict[str, float]:
    correct = prediction == gold
    true_positives = np.bincount(gold[correct], minlength=n_labels)
    # -1 (unknown label) is no label's prediction: it only adds a false negative to the gold label.
    predicted = np.bincount(prediction[prediction >= 0], minlength=n_labels)
    actual = np.bincount(gold, minlength=n_labels)
    # 2PR/(P+R) equals 2tp/(2tp+fp+fn) = 2tp/(predicted+actual) whenever tp > 0, and both are
    # 0 otherwise; labels absent from gold and predictions (denominator 0) score 0, as in
    # sklearn's f1_score(average="macro", labels=range(n_labels)).
    f1 = np.divide(2.0 * true_positives, predicted + actual, out=np.zeros(n_labels), where=(predicted + actual) > 0)
    return {"accuracy": float(correct.mean()), "f1": float(f1.mean())}


def _example(position: int, ids: Sequence[Any] | None) -> str:
    return f"example {position}" + (f" (id {ids[position]!r})" if ids is not None else "")


def _check_inputs(predictions: Sequence[str], golds: Sequence[str], ids: Sequence[Any] | None) -> None:
    if len(predictions) != len(golds):
        raise ValueError(f"got {len(predictions)} predictions but {len(golds)} golds; they must pair up one to one")
    if ids is not None and len(ids) != len(golds):
        raise ValueError(f"got {len(ids)} ids for {len(golds)} golds")
    for what, texts in (("prediction", predictions), ("gold", golds)):
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"{what} of {_example(position, ids)} is {type(text).__name__}, expected str")


def classification_scores(
    predictions: Sequence[str], golds: Sequence[str], labels: Sequence[str], *, ids: Sequence[Any] | None = None
) -> PerExampleScores:
    """Score label predictions (LaMP-1, LaMP-2) against golds over the label list ``labels``.

    Both sides are stripped and matched case-sensitively; a prediction outside ``labels`` counts
    as wrong. A gold outside ``labels`` raises ValueError naming the example (and its id, when
    ``ids`` is given), since it means the label list or the gold file is wrong.
    """
    _check_inputs(predictions, golds, ids)
    if len(labels) == 0:
        raise ValueError("labels must not be empty")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be unique, got {list(labels)}")
    index = {label: position for position, label in enumerate(labels)}
    gold_indices = []
    for position, gold in enumerate(golds):
        if gold.strip() not in index:
            raise ValueError(f"gold of {_example(position, ids)} is {gold!r}, not one of the labels {list(labels)}")
        gold_indices.append(index[gold.strip()])
    prediction_indices = [index.get(prediction.strip(), -1) for prediction in predictions]
    return PerExampleScores(
        kind="classification",
        columns={
            "prediction": np.array(prediction_indices, dtype=np.int64),
            "gold": np.array(gold_indices, dtype=np.int64),
        },
        n_labels=len(labels),
    )


def rating_scores(
    predictions: Sequence[str],
    golds: Sequence[str],
    low: float = 1.0,
    high: float = 5.0,
    *,
    ids: Sequence[Any] | None = None,
) -> PerExampleScores:
    """Score rating predictions (LaMP-3) against numeric golds, for MAE and RMSE.

    A prediction that ``float()`` cannot parse (``"4 stars"``, ``""``) is replaced by whichever
    of ``low`` and ``high`` is farther from the gold (``high`` on a tie), as the official
    evaluator does. Numeric predictions are not clipped to [low, high]. ``float()`` also
    accepts ``"nan"`` and ``"inf"``, on which the official evaluator crashes (sklearn rejects
    non-finite input); here they count as unparsable.
    """
    _check_inputs(predictions, golds, ids)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"need finite bounds with low < high, got low={low}, high={high}")
    gold_values, prediction_values = [], []
    for position, (prediction, gold) in enumerate(zip(predictions, golds)):
        try:
            gold_value = float(gold.strip())
        except ValueError:
            gold_value = math.nan
        if not math.isfinite(gold_value):
            raise ValueError(f"gold of {_example(position, ids)} is {gold!r}, not a finite number")
        gold_values.append(gold_value)
        prediction_values.append(_parse_rating(prediction, gold_value, low, high))
    return PerExampleScores(
        kind="rating",
        columns={"prediction": np.array(prediction_values), "gold": np.array(gold_values)},
    )


def _parse_rating(prediction: str, gold: float, low: float, high: float) -> float:
    try:
        value = float(prediction.strip())
    except ValueError:
        value = math.nan
    if math.isfinite(value):
        return value
    return low if abs(low - gold) > abs(high - gold) else high


def generation_scores(
    predictions: Sequence[str], golds: Sequence[str], bleu: bool = True, *, ids: Sequence[Any] | None = None
) -> PerExampleScores:
    """Score generated texts (LaMP-4..7) against golds: ROUGE-1, ROUGE-L and, optionally, BLEU.

    ROUGE is the F-measure of ``rouge_score``'s RougeScorer without stemming, on stripped texts.
    The official evaluator averages it through ``evaluate``'s bootstrap aggregator, whose
    median of resampled means is within noise of the plain mean used here.

    BLEU is an extra that LaMP does not report: sacrebleu's sentence-level BLEU (its default
    smoothing and effective order) divided by 100, so it lies in [0, 1] like ROUGE.
    """
    _check_inputs(predictions, golds, ids)
    # Imported here: rouge_score pulls in nltk, which takes over a second to import.
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU

    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)
    # One BLEU object for all examples: this is what sacrebleu.sentence_bleu(prediction,
    # [gold]) builds on every call with its defaults, at twice the speed.
    bleu_metric = BLEU(effective_order=True) if bleu else None
    rouge_1, rouge_l, bleu_values = [], [], []
    for prediction, gold in zip(predictions, golds):
        prediction, gold = prediction.strip(), gold.strip()
        rouge = scorer.score(target=gold, prediction=prediction)
        rouge_1.append(rouge["rouge1"].fmeasure)
        rouge_l.append(rouge["rougeL"].fmeasure)
        if bleu_metric is not None:
            bleu_values.append(float(bleu_metric.sentence_score(prediction, [gold]).score) / 100.0)
    columns = {"rouge-1": np.array(rouge_1, dtype=np.float64), "rouge-L": np.array(rouge_l, dtype=np.float64)}
    if bleu:
        columns["bleu"] = np.array(bleu_values, dtype=np.float64)
    return PerExampleScores(kind="generation", columns=columns)
