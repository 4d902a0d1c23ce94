"""Scoring predictions for any task spec (LaMP's and tailor's own) with the official rules."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tailor.data.lamp import read_outputs
from tailor.metrics.scores import PerExampleScores, classification_scores, generation_scores, rating_scores
from tailor.tasks import TaskSpec, get_task


def score_predictions(task: TaskSpec, predictions: Sequence[str], golds: Sequence[str],
                      ids: Sequence[Any] | None = None) -> PerExampleScores:
    """Per-example scores: accuracy and macro-F1 over the label set, MAE and RMSE (1-5), or
    ROUGE-1, ROUGE-L and BLEU, by the task's kind."""
    if task.kind == "classification":
        return classification_scores(predictions, golds, task.labels, ids=ids)
    if task.kind == "rating":
        return rating_scores(predictions, golds, low=1.0, high=5.0, ids=ids)
    return generation_scores(predictions, golds, ids=ids)


def score_files(task_name: str, golds_path: str | Path, predictions_path: str | Path) -> dict[str, Any]:
    """``tailor score``: a predictions file against a golds file, both in LaMP's outputs layout.

    Every gold id must have a prediction; predictions for ids without a gold are an error
    too, since they mean the two files are of different splits.
    """
    task = get_task(task_name)
    _, golds = read_outputs(golds_path)
    _, predictions = read_outputs(predictions_path)
    missing = [i for i in golds if i not in predictions]
    if missing:
        raise ValueError(f"{predictions_path}: no prediction for {len(missing)} gold id(s), first {missing[0]!r}")
    extra = [i for i in predictions if i not in golds]
    if extra:
        raise ValueError(f"{predictions_path}: {len(extra)} prediction id(s) have no gold, first {extra[0]!r}")
    ids = list(golds)
    scored = score_predictions(task, [predictions[i] for i in ids], [golds[i] for i in ids], ids=ids)
    return {"task": task.name, "n": len(ids), "metrics": scored.aggregate()}

