"""``tailor eval``'s loop for a ranking task: each example's candidates ranked for its user
by the method's ranker (:mod:`tailor.personalizers.ranking`), in batches; and the cold
users' share of the scores (the task's :attr:`~tailor.tasks.spec.TaskSpec.cold_profile`).

A row keeps the first :attr:`kept` items of the ranking (``output``, a JSON array: what
the task's metrics read), their scores, the records shown to the model, the profile size
and the seconds the example took (a recommender's fit, or a method's summaries, shared
among the examples it serves).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from tailor.evaluation.checkpoint import Checkpoint, prepare_ahead
from tailor.metrics import bootstrap_ci
from tailor.metrics.scores import PerExampleScores
from tailor.store import ProfileStore
from tailor.tasks.spec import TaskSpec
from tailor.types import Profile, TaskExample

ProgressFactory = Callable[[int, str], Any]
DEFAULT_KEPT = 100
"""How many ranked items a prediction keeps when the task does not say (``kept``)."""


def rank_method(task: TaskSpec, examples: Sequence[TaskExample], ranker: Any, store: ProfileStore, *,
                batch_size: int, checkpoint: Checkpoint | None = None,
                progress: ProgressFactory | None = None) -> dict[str, dict[str, Any]]:
    """Rank every example's candidates with ``ranker`` (its ``rank_batch``), the user's
    profile read from ``store``; one row per example id, as :func:`tailor.evaluation.runner.run_method`."""
    rows: dict[str, dict[str, Any]] = dict(checkpoint.rows) if checkpoint else {}
    todo = [e for e in examples if e.id not in rows]
    bar = progress(len(examples), ranker.name) if progress else None
    if bar is not None:
        bar.update(len(examples) - len(todo))
    kept = int(getattr(task, "kept", DEFAULT_KEPT))
    overhead = prepare_ahead(ranker, task, todo, progress)
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        began = time.perf_counter()
        profiles = [_profile(e, store) for e in batch]
        # The task's own question when it has one: what the rank route asks with too.
        question = getattr(task, "question", None)
        ranked = ranker.rank_batch(task, [(question or e.input, profile, e.candidates)
                                          for e, profile in zip(batch, profiles)])
        seconds = (time.perf_counter() - began) / len(batch) + overhead
        new_rows = [{"id": e.id, "output": json.dumps(list(r.items[:kept])),
                     "scores": [round(score, 4) for score in r.scores[:kept]], "candidates": len(e.candidates),
                     "retrieved": list(r.retrieved), "granularity": r.granularity,
                     "profile_size": len(profile.records), "seconds": round(seconds, 4),
                     **({"notes": r.notes} if r.notes else {}),
                     **({"stages": {name: [round(v, 4) for v in values] for name, values in r.stages.items()}}
                        if r.stages else {})}
                    for e, r, profile in zip(batch, ranked, profiles)]
        if checkpoint is not None:
            checkpoint.append(new_rows)
        rows.update((row["id"], row) for row in new_rows)
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return rows


def _profile(example: TaskExample, store: ProfileStore) -> Profile:
    """The user's stored profile, restricted to the example's own records (the store holds
    one profile per user; a split holds one question per user, so they are the same)."""
    stored = store.get_profile(example.user_id)
    if example.profile.records and len(example.profile.records) != len(stored.records):
        wanted = {r.id for r in example.profile.records}
        return Profile(stored.user_id, tuple(r for r in stored.records if r.id in wanted), stored.attributes)
    return stored


def cold_subset(task: TaskSpec, examples: Sequence[TaskExample]) -> list[int]:
    """The positions of the examples whose user is cold: at most the task's
    :attr:`~tailor.tasks.spec.TaskSpec.cold_profile` history items (none when it sets none)."""
    limit = task.cold_profile
    if limit is None:
        return []
    return [position for position, example in enumerate(examples) if len(example.profile.records) <= limit]


def subset_result(scores: PerExampleScores, positions: Sequence[int], *, n_resamples: int, seed: int,
                  max_profile: int | None) -> dict[str, Any]:
    """The metrics of ``scores`` on the examples at ``positions``, with bootstrap intervals
    over those examples alone."""
    import numpy as np

    chosen = np.asarray(positions, dtype=np.int64)
    subset = PerExampleScores(kind=scores.kind, columns={name: values[chosen] for name, values in scores.columns.items()},
                              n_labels=scores.n_labels, metrics=scores.metrics)
    return {"max_profile": max_profile, "n": len(positions), "metrics": subset.aggregate(),
            "ci95": {k: list(v) for k, v in bootstrap_ci(subset, n_resamples=n_resamples, seed=seed).items()}}


__all__ = ["DEFAULT_KEPT", "cold_subset", "rank_method", "subset_result"]
