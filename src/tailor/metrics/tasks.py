"""Score a whole LaMP task by name, with the metrics the official evaluator uses for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tailor.metrics.labels import LAMP_LABELS, LAMP_TASK_KINDS
from tailor.metrics.scores import PerExampleScores, classification_scores, generation_scores, rating_scores
from tailor.task_names import normalize_task_name


def score_task(
    task: str, predictions: Sequence[str], golds: Sequence[str], *, ids: Sequence[Any] | None = None
) -> PerExampleScores:
    """Per-example scores of ``predictions`` against ``golds`` for LaMP task ``task``.

    ``task`` is any spelling ``normalize_task_name`` accepts (``"LaMP-2N"``, ``"LaMP_4"``);
    unknown names raise ValueError listing the valid ones. ``ids``, when given, names the
    examples in error messages. Classification tasks report accuracy and macro-F1, LaMP-3
    MAE and RMSE on the 1..5 scale, generation tasks ROUGE-1, ROUGE-L and BLEU.
    """
    name = normalize_task_name(task)
    kind = LAMP_TASK_KINDS[name]
    if kind == "classification":
        return classification_scores(predictions, golds, LAMP_LABELS[name], ids=ids)
    if kind == "rating":
        return rating_scores(predictions, golds, low=1.0, high=5.0, ids=ids)
    return generation_scores(predictions, golds, ids=ids)
