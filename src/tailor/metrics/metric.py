"""What a metric is, the registry of metrics, and the one function that scores with any of them.

A :class:`Metric` has a name, a help line, which way is better, the per-example values it
reads and how it aggregates them over any subset of examples (repeats allowed, so that a
bootstrap re-aggregates without scoring the texts again). Metrics that read the same values
share one computation: accuracy and f1 read the same label indices, rouge-1 and rouge-L come
from one ROUGE pass, so :func:`score_metrics` computes each set of values once.

Built-in metrics and the ones packages add (entry point group ``tailor.metrics``) are in
:data:`METRICS`; a task may also bring a :class:`Metric` of its own without registering it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tailor.registry import Registry

if TYPE_CHECKING:
    import numpy as np

    from tailor.metrics.scores import PerExampleScores


class ExampleValues(Protocol):
    """How per-example values are computed from predictions and golds: returns scores whose
    columns the metrics reading them aggregate. ``labels`` is the task's label list (or
    rating scale); ``ids`` name the examples in error messages."""

    def __call__(self, predictions: Sequence[str], golds: Sequence[str], *, labels: Sequence[str],
                 ids: Sequence[Any] | None) -> PerExampleScores: ...


Aggregate = Callable[["Mapping[str, np.ndarray]", int], float]
"""Columns of per-example values (already restricted to a subset of examples) and the size of
the label list (0 for tasks without labels) -> the metric's value."""


@dataclass(frozen=True)
class Metric:
    """One metric: its name (the key in results), a help line, which way is better, the values
    it reads (``values``, shared with the metrics that read the same) and how it aggregates them."""

    name: str
    help: str
    values: ExampleValues
    aggregate: Aggregate
    higher_is_better: bool = True

    @classmethod
    def per_example(cls, name: str, help: str, value: Callable[[str, str], float], *,
                    higher_is_better: bool = True) -> Metric:
        """A metric that is the mean of one number per example, ``value(prediction, gold)``
        (exact match, a token F1, ...)."""
        return cls(name, help, _EachExample(name, value), ColumnMean(name), higher_is_better)


@dataclass(frozen=True)
class ColumnMean:
    """Aggregates by the mean of one column (a metric whose per-example values are its own)."""

    column: str

    def __call__(self, columns: Mapping[str, np.ndarray], n_labels: int) -> float:
        return float(columns[self.column].mean())


@dataclass(frozen=True)
class _EachExample:
    """The values of :meth:`Metric.per_example`: one column, ``value`` of each pair."""

    column: str
    value: Callable[[str, str], float]

    def __call__(self, predictions: Sequence[str], golds: Sequence[str], *, labels: Sequence[str],
                 ids: Sequence[Any] | None) -> PerExampleScores:
        import numpy as np

        from tailor.metrics.scores import PerExampleScores, check_inputs

        check_inputs(predictions, golds, ids)
        values = np.array([float(self.value(prediction, gold)) for prediction, gold in zip(predictions, golds)])
        return PerExampleScores(kind="generation", columns={self.column: values})


BUILT_IN_METRICS: dict[str, str] = {
    "accuracy": "tailor.metrics.scores:ACCURACY",
    "f1": "tailor.metrics.scores:F1",
    "mae": "tailor.metrics.scores:MAE",
    "rmse": "tailor.metrics.scores:RMSE",
    "rouge-1": "tailor.metrics.scores:ROUGE_1",
    "rouge-L": "tailor.metrics.scores:ROUGE_L",
    "bleu": "tailor.metrics.scores:BLEU",
    "meteor": "tailor.metrics.meteor:METEOR",
    "reward": "tailor.alignment.users:REWARD",
    **{f"{name}@{k}": f"tailor.metrics.ranking:{name.upper()}_{k}"
       for name in ("ndcg", "recall", "hitrate") for k in (1, 5, 10)},
    "mrr": "tailor.metrics.ranking:MRR",
}
"""tailor's own metrics (the official LaMP metrics, BLEU, and the ranking metrics of
:mod:`tailor.metrics.ranking`), as ``"module:attribute"`` entries."""


def metric_registry() -> Registry:
    """A registry of the built-in metrics and those packages add (entry points read anew)."""
    return Registry("metric", BUILT_IN_METRICS, group="tailor.metrics")


METRICS = metric_registry()
"""Metrics by name: the built-ins and those packages add (entry point group ``tailor.metrics``)."""


def resolve_metric(metric: Metric | str) -> Metric:
    """``metric`` itself, or the metric registered under that name in :data:`METRICS`."""
    if isinstance(metric, Metric):
        return metric
    loaded = METRICS.load(metric)
    if not isinstance(loaded, Metric):
        raise TypeError(f"metric {metric!r} of entry point group tailor.metrics is not a Metric")
    return loaded


def lower_is_better(name: str) -> bool:
    """Whether a smaller value of the registered metric ``name`` is better (``mae``, ``rmse``)."""
    return not resolve_metric(name).higher_is_better


def score_metrics(metrics: Sequence[Metric | str], predictions: Sequence[str], golds: Sequence[str], *,
                  labels: Sequence[str] = (), ids: Sequence[Any] | None = None) -> PerExampleScores:
    """Per-example scores of ``predictions`` against ``golds`` for ``metrics`` (objects or
    registered names), each set of values computed once however many metrics read it.

    ``labels`` is the task's label list (classification) or rating scale; ``ids``, when given,
    name the examples in error messages.
    """
    from tailor.metrics.scores import PerExampleScores

    resolved = tuple(resolve_metric(metric) for metric in metrics)
    if not resolved:
        raise ValueError("no metrics to score with")
    names = [metric.name for metric in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"metrics must have distinct names, got {names}")
    computed: dict[ExampleValues, PerExampleScores] = {}
    for metric in resolved:
        if metric.values not in computed:
            computed[metric.values] = metric.values(predictions, golds, labels=tuple(labels), ids=ids)
    parts = list(computed.values())
    kinds = sorted({part.kind for part in parts})
    if len(kinds) > 1:
        raise ValueError(f"metrics {', '.join(names)} read values of different kinds ({', '.join(kinds)}); "
                         "score them separately")
    columns: dict[str, Any] = {}
    for part in parts:
        shared = sorted(set(columns) & set(part.columns))
        if shared:
            raise ValueError(f"metrics {', '.join(names)}: two computations make the columns {shared}")
        columns.update(part.columns)
    return PerExampleScores(kind=parts[0].kind, columns=columns, n_labels=max(part.n_labels for part in parts),
                            metrics=resolved)
