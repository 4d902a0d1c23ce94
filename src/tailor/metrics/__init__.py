"""Metrics: the official LaMP metrics per example, bootstrap intervals and paired comparisons."""

from tailor.metrics.bootstrap import bootstrap_ci, paired_comparison
from tailor.metrics.labels import (
    LAMP_LABELS,
    LAMP_TASK_KINDS,
    LAMP_TASKS,
    MetricKind,
    task_kind,
)
from tailor.metrics.scores import (
    PerExampleScores,
    classification_scores,
    generation_scores,
    lower_is_better,
    rating_scores,
)
from tailor.metrics.tasks import score_task
from tailor.task_names import normalize_task_name

__all__ = [
    "LAMP_LABELS",
    "LAMP_TASKS",
    "LAMP_TASK_KINDS",
    "MetricKind",
    "PerExampleScores",
    "bootstrap_ci",
    "classification_scores",
    "generation_scores",
    "lower_is_better",
    "normalize_task_name",
    "paired_comparison",
    "rating_scores",
    "score_task",
    "task_kind",
]
