"""What a personalization method changed, shown on examples of a saved run.

A score says how much a method helps; two examples side by side show how: the input, the
user's own earlier item the method retrieved, the gold, and each method's answer. The
examples are chosen by a rule from the saved predictions, never by id:

1. the question where the method's main metric gains most over the baseline's;
2. a typical question: the one at the median of the method's per-question gains (the
   first question left out), so that a reader also sees what the method usually does.

The retrieved items are the records the method's prediction rows name (``retrieved``),
looked up in the example's own profile, which the run ingested into its store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tailor.evaluation.plots import Run, example_values, prediction_rows, run_examples
from tailor.types import HistoryRecord

RULE = ("the question where {method}'s {metric} gains most over {baseline}'s, and a typical one: the median of "
        "{method}'s per-question gains")


@dataclass(frozen=True)
class SideBySide:
    """One example of a run with every compared method's answer."""

    why: str
    """Which rule chose it, with the gain it has."""
    example_id: str
    user_id: str
    input: str
    gold: str
    retrieved: tuple[HistoryRecord, ...]
    """The records ``method`` retrieved for this input, in its order."""
    answers: dict[str, str]
    """Each method's answer, by method."""
    scores: dict[str, float]
    """Each method's main metric on this example (absolute error for a rating, 1 or 0 for a label)."""

    def to_json(self) -> dict[str, object]:
        return {"why": self.why, "id": self.example_id, "user_id": self.user_id, "input": self.input,
                "gold": self.gold, "retrieved": [r.to_dict() for r in self.retrieved],
                "answers": self.answers, "scores": self.scores}


def side_by_side(run: Run, method: str, *, baseline: str = "none",
                 methods: Sequence[str] | None = None) -> list[SideBySide]:
    """Two examples of ``run`` (one when it holds a single question) that show what
    ``method`` changed against ``baseline``, chosen by :data:`RULE`, with the answers of
    ``methods`` (default: every method of the run)."""
    held = [r["method"] for r in run.results["results"]]
    shown = list(methods) if methods is not None else held
    missing = [m for m in dict.fromkeys([method, baseline, *shown]) if m not in held]
    if missing:
        raise ValueError(f"{run.folder} holds no method {', '.join(missing)} (it holds {', '.join(held)})")
    rows = {m: prediction_rows(run, m) for m in dict.fromkeys([method, baseline, *shown])}
    examples = [e for e in run_examples(run) if all(e.id in r for r in rows.values())]
    if not examples:
        return []
    metric = run.main_metric
    values = {m: example_values(run, m, examples, rows[m]) for m in rows}
    sign = -1.0 if run.lower_is_better(metric) else 1.0
    gains = sign * (values[method] - values[baseline])
    best = int(np.argmax(gains))  # the first of equal gains, in file order
    chosen = [(best, f"largest gain of {method} over {baseline}: {metric} {gains[best]:+.4f}")]
    others = [int(i) for i in np.argsort(gains, kind="stable") if i != best]
    if others:
        typical = others[len(others) // 2]
        chosen.append((typical, f"typical (median gain of {method} over {baseline}): {metric} {gains[typical]:+.4f}"))
    shown_rows = {m: rows[m] for m in shown}
    out = []
    for index, why in chosen:
        example = examples[index]
        records = {r.id: r for r in example.profile.records}
        retrieved = tuple(records[i] for i in rows[method][example.id].get("retrieved", []) if i in records)
        out.append(SideBySide(
            why=why, example_id=example.id, user_id=example.user_id, input=example.input, gold=example.gold or "",
            retrieved=retrieved, answers={m: str(r[example.id]["output"]) for m, r in shown_rows.items()},
            scores={m: float(values[m][index]) for m in shown_rows}))
    return out
