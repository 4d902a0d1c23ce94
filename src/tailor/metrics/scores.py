"""Per-example scores, aggregated by their metrics over any subset of examples, and the
built-in metrics (:data:`tailor.metrics.METRICS`) with the computations they read.

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
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from tailor.metrics.metric import ColumnMean, Metric, resolve_metric
from tailor.metrics.ranking import RANKING_METRICS

MetricKind = Literal["classification", "rating", "generation", "ranking"]
"""What per-example columns hold: label indices, numbers, or each metric's own value per
example (generation, and ranking: :mod:`tailor.metrics.ranking`)."""
_KINDS: tuple[MetricKind, ...] = ("classification", "rating", "generation", "ranking")
_OWN_COLUMNS: tuple[MetricKind, ...] = ("generation", "ranking")
"""The kinds whose columns are their metrics' own per-example values, each averaged."""

# Classification and rating columns are exactly these; generation columns are metrics'
# per-example values themselves (ROUGE, BLEU, a metric a package adds), each averaged.
_COLUMNS: dict[MetricKind, tuple[str, ...]] = {
    "classification": ("prediction", "gold"),
    "rating": ("prediction", "gold"),
    "generation": (),
    "ranking": (),
}

OFFICIAL_METRICS: dict[MetricKind, tuple[str, ...]] = {
    "classification": ("accuracy", "f1"),
    "rating": ("mae", "rmse"),
    "generation": ("rouge-1", "rouge-L", "bleu"),
    "ranking": RANKING_METRICS,
}
"""The metrics the official LaMP evaluator reports for each kind of task (BLEU added): what a
task is scored with unless it names its own, and what scores built without metrics report
(generation scores: the metric named by each column)."""


# eq=False: the generated __eq__ would compare numpy arrays and fail on their truth value.
@dataclass(frozen=True, eq=False)
class PerExampleScores:
    """Per-example values from which a metric set can be aggregated over any subset (for bootstrap).

    ``columns`` holds one 1-D array per name, all of the same length:

    - classification: ``prediction`` and ``gold`` label indices (``prediction`` is -1 for an
      output outside the label list); ``n_labels`` is the size of the label list.
    - rating: ``prediction`` and ``gold`` as numbers (an unparsable prediction already
      replaced by the farther bound).
    - generation: one column per metric, its value on each example (``rouge-1``, ``rouge-L``,
      ``bleu``, or a metric a package adds).

    ``metrics`` aggregate the columns (names in :data:`tailor.metrics.METRICS` or
    :class:`Metric` objects); left empty, they are the kind's :data:`OFFICIAL_METRICS`, or
    for generation the metric each column is named after. The arrays are copied and made
    read-only, so the scores cannot change after creation.
    """

    kind: MetricKind
    columns: Mapping[str, np.ndarray]
    n_labels: int = 0
    metrics: tuple[Metric | str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {', '.join(_KINDS)}")
        required = _COLUMNS[self.kind]
        missing = [name for name in required if name not in self.columns]
        if missing:
            raise ValueError(f"{self.kind} scores need columns {list(required)}; missing {missing}")
        if not self.columns:
            raise ValueError(f"{self.kind} scores need at least one column")
        if self.kind not in _OWN_COLUMNS:
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
        """The metric names ``aggregate`` returns, in a stable order (the metrics' order)."""
        return tuple(metric.name for metric in self._metrics)

    @cached_property
    def _metrics(self) -> tuple[Metric, ...]:
        # Resolved on first use: scores made by one computation for several metrics are
        # merged before anything aggregates them (tailor.metrics.score_metrics).
        names = self.metrics or (tuple(self.columns) if self.kind in _OWN_COLUMNS else OFFICIAL_METRICS[self.kind])
        return tuple(resolve_metric(metric) for metric in names)

    def metric(self, name: str) -> Metric:
        """The metric called ``name``."""
        for metric in self._metrics:
            if metric.name == name:
                return metric
        raise ValueError(f"no metric {name!r} in these scores; they have {', '.join(self.names())}")

    def lower_is_better(self, name: str) -> bool:
        """Whether a smaller value of metric ``name`` is better."""
        return not self.metric(name).higher_is_better

    def aggregate(self, indices: np.ndarray | Sequence[int] | None = None) -> dict[str, float]:
        """Metrics over the examples at ``indices`` (repeats allowed), or over all when None.

        Raises ValueError when there are no examples to aggregate.
        """
        checked = self._check_indices(indices)
        columns = self.columns if checked is None else {name: array[checked] for name, array in self.columns.items()}
        return {metric.name: metric.aggregate(columns, self.n_labels) for metric in self._metrics}

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


def _example(position: int, ids: Sequence[Any] | None) -> str:
    return f"example {position}" + (f" (id {ids[position]!r})" if ids is not None else "")


def check_inputs(predictions: Sequence[str], golds: Sequence[str], ids: Sequence[Any] | None) -> None:
    """Predictions and golds must pair up one to one, be strings, and match ``ids`` in number."""
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
    check_inputs(predictions, golds, ids)
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
    check_inputs(predictions, golds, ids)
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
    check_inputs(predictions, golds, ids)
    columns = _rouge_columns(predictions, golds)
    if bleu:
        columns["bleu"] = _bleu_column(predictions, golds)
    return PerExampleScores(kind="generation", columns=columns)


def bleu_scores(predictions: Sequence[str], golds: Sequence[str], *,
                ids: Sequence[Any] | None = None) -> PerExampleScores:
    """Sentence-level BLEU of each generated text against its gold (see :func:`generation_scores`)."""
    check_inputs(predictions, golds, ids)
    return PerExampleScores(kind="generation", columns={"bleu": _bleu_column(predictions, golds)})


def _rouge_columns(predictions: Sequence[str], golds: Sequence[str]) -> dict[str, np.ndarray]:
    # Imported here: rouge_score pulls in nltk, which takes over a second to import.
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)
    rouge_1, rouge_l = [], []
    for prediction, gold in zip(predictions, golds):
        rouge = scorer.score(target=gold.strip(), prediction=prediction.strip())
        rouge_1.append(rouge["rouge1"].fmeasure)
        rouge_l.append(rouge["rougeL"].fmeasure)
    return {"rouge-1": np.array(rouge_1, dtype=np.float64), "rouge-L": np.array(rouge_l, dtype=np.float64)}


def _bleu_column(predictions: Sequence[str], golds: Sequence[str]) -> np.ndarray:
    from sacrebleu.metrics import BLEU

    # One BLEU object for all examples: this is what sacrebleu.sentence_bleu(prediction,
    # [gold]) builds on every call with its defaults, at twice the speed.
    bleu_metric = BLEU(effective_order=True)
    values = [float(bleu_metric.sentence_score(prediction.strip(), [gold.strip()]).score) / 100.0
              for prediction, gold in zip(predictions, golds)]
    return np.array(values, dtype=np.float64)


# -- the computations metrics read, and the built-in metrics ----------------------------------------


def label_values(predictions: Sequence[str], golds: Sequence[str], *, labels: Sequence[str],
                 ids: Sequence[Any] | None = None) -> PerExampleScores:
    """Label indices over the task's label list (what accuracy and f1 read)."""
    return classification_scores(predictions, golds, labels, ids=ids)


def rating_values(predictions: Sequence[str], golds: Sequence[str], *, labels: Sequence[str] = (),
                  ids: Sequence[Any] | None = None) -> PerExampleScores:
    """Ratings as numbers on the scale the task's labels span (LaMP's 1-5 when it lists none;
    what mae and rmse read)."""
    if not labels:
        return rating_scores(predictions, golds, ids=ids)
    try:
        scale = [float(label) for label in labels]
    except ValueError:
        raise ValueError(f"a rating task's labels must be numbers (its scale), got {list(labels)}") from None
    return rating_scores(predictions, golds, low=min(scale), high=max(scale), ids=ids)


def rouge_values(predictions: Sequence[str], golds: Sequence[str], *, labels: Sequence[str] = (),
                 ids: Sequence[Any] | None = None) -> PerExampleScores:
    """ROUGE-1 and ROUGE-L per example, from one pass of the scorer (what rouge-1 and rouge-L read)."""
    return generation_scores(predictions, golds, bleu=False, ids=ids)


def bleu_values(predictions: Sequence[str], golds: Sequence[str], *, labels: Sequence[str] = (),
                ids: Sequence[Any] | None = None) -> PerExampleScores:
    """Sentence BLEU per example (what bleu reads)."""
    return bleu_scores(predictions, golds, ids=ids)


def _accuracy(columns: Mapping[str, np.ndarray], n_labels: int) -> float:
    return float((columns["prediction"] == columns["gold"]).mean())


def _macro_f1(columns: Mapping[str, np.ndarray], n_labels: int) -> float:
    prediction, gold = columns["prediction"], columns["gold"]
    correct = prediction == gold
    true_positives = np.bincount(gold[correct], minlength=n_labels)
    # -1 (unknown label) is no label's prediction: it only adds a false negative to the gold label.
    predicted = np.bincount(prediction[prediction >= 0], minlength=n_labels)
    actual = np.bincount(gold, minlength=n_labels)
    # 2PR/(P+R) equals 2tp/(2tp+fp+fn) = 2tp/(predicted+actual) whenever tp > 0, and both are
    # 0 otherwise; labels absent from gold and predictions (denominator 0) score 0, as in
    # sklearn's f1_score(average="macro", labels=range(n_labels)).
    f1 = np.divide(2.0 * true_positives, predicted + actual, out=np.zeros(n_labels), where=(predicted + actual) > 0)
    return float(f1.mean())


def _mae(columns: Mapping[str, np.ndarray], n_labels: int) -> float:
    return float(np.abs(columns["prediction"] - columns["gold"]).mean())


def _rmse(columns: Mapping[str, np.ndarray], n_labels: int) -> float:
    error = np.abs(columns["prediction"] - columns["gold"])
    return float(np.sqrt(np.mean(error**2)))


ACCURACY = Metric("accuracy", "share of answers that are the gold label (LaMP-1, LaMP-2)", label_values, _accuracy)
F1 = Metric("f1", "macro-F1 over the task's whole label list, as the official LaMP evaluator", label_values,
            _macro_f1)
MAE = Metric("mae", "mean absolute error of ratings; an answer that is no number counts as the scale's farther end",
             rating_values, _mae, higher_is_better=False)
RMSE = Metric("rmse", "root mean squared error of ratings, unparsable answers as for mae", rating_values, _rmse,
              higher_is_better=False)
ROUGE_1 = Metric("rouge-1", "ROUGE-1 F-measure (rouge_score, no stemming), averaged over examples", rouge_values,
                 ColumnMean("rouge-1"))
ROUGE_L = Metric("rouge-L", "ROUGE-L F-measure (rouge_score, no stemming), averaged over examples", rouge_values,
                 ColumnMean("rouge-L"))
BLEU = Metric("bleu", "sentence BLEU (sacrebleu, effective order) / 100, averaged over examples", bleu_values,
              ColumnMean("bleu"))
