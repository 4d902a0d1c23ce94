"""Metrics: the registry of metrics (the official LaMP metrics, BLEU, and those packages add),
per-example scores, bootstrap intervals and paired comparisons."""

from tailor.metrics.bootstrap import bootstrap_ci, paired_comparison
from tailor.metrics.metric import (
    METRICS,
    ColumnMean,
    ExampleValues,
    Metric,
    lower_is_better,
    resolve_metric,
    score_metrics,
)
from tailor.metrics.scores import (
    OFFICIAL_METRICS,
    MetricKind,
    PerExampleScores,
    bleu_scores,
    classification_scores,
    generation_scores,
    rating_scores,
)

__all__ = [
    "METRICS",
    "OFFICIAL_METRICS",
    "ColumnMean",
    "ExampleValues",
    "Metric",
    "MetricKind",
    "PerExampleScores",
    "bleu_scores",
    "bootstrap_ci",
    "classification_scores",
    "generation_scores",
    "lower_is_better",
    "paired_comparison",
    "rating_scores",
    "resolve_metric",
    "score_metrics",
]
