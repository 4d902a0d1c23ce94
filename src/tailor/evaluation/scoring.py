"""``tailor score``: a predictions file against a golds file, scored by the task itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tailor.tasks import get_task


def score_files(task_name: str, golds_path: str | Path, predictions_path: str | Path) -> dict[str, Any]:
    """``tailor score``: a predictions file against a golds file, both in the task's outputs
    format (LaMP's outputs layout unless the task reads another), with the task's metrics.

    Every gold id must have a prediction; predictions for ids without a gold are an error
    too, since they mean the two files are of different splits.
    """
    task = get_task(task_name)
    golds = task.read_outputs(golds_path)
    predictions = task.read_outputs(predictions_path)
    missing = [i for i in golds if i not in predictions]
    if missing:
        raise ValueError(f"{predictions_path}: no prediction for {len(missing)} gold id(s), first {missing[0]!r}")
    extra = [i for i in predictions if i not in golds]
    if extra:
        raise ValueError(f"{predictions_path}: {len(extra)} prediction id(s) have no gold, first {extra[0]!r}")
    ids = list(golds)
    scored = task.score([predictions[i] for i in ids], [golds[i] for i in ids], ids=ids)
    return {"task": task.name, "n": len(ids), "metrics": scored.aggregate()}
