"""The prompt an adapter is trained for (:class:`TrainingPrompt`), and the time order that
keeps its training pairs free of leakage (:func:`by_time`, :func:`items_before_questions`).

LaMP's fine-tuned setting: a model fine-tuned on the retrieval-augmented prompt it will be
served is what makes retrieval pay off on small models; an adapter trained on the bare
input and then served with pasted items sees an input it never learned. So an adapter is
trained for one prompt (``none``, or a retrieval method with its layout, ``k`` and token
budgets). The prompt's id (``none``, ``bm25:lamp:k=1``) is part of the adapter's key, so
``lora+bm25`` is served by adapters trained on bm25 prompts (and ``lora+dense`` by adapters
trained on dense prompts: any retrieval method's prompt can be trained for). The pairs themselves are
built by the personalizer ``tailor eval`` builds for that method
(:mod:`tailor.training.pairs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tailor.adapters.store import NO_PROMPT
from tailor.prompting.builder import LAYOUTS, PromptBudget
from tailor.types import HistoryRecord, TaskExample, check_positive_ints

__all__ = ["TrainingPrompt", "by_time", "items_before_questions", "prompt_id"]


def prompt_id(method: str, layout: str | None, k: int) -> str:
    """The name of a training prompt: ``none``, or ``METHOD:LAYOUT:k=K``."""
    return NO_PROMPT if method == "none" else f"{method}:{layout}:k={k}"


@dataclass(frozen=True)
class TrainingPrompt:
    """The prompt an adapter is trained on and served with (the method's, resolved)."""

    method: str = "none"
    """The retrieval method whose prompt it is (``none``: the input alone); which names are
    retrieval methods is the method registry's (:mod:`tailor.methods`) to say."""
    layout: str | None = None
    """The retrieved items' layout (``lamp`` or ``dialogue``); ``None`` for ``none``."""
    k: int = 1
    input_tokens: int = PromptBudget().input_tokens
    context_tokens: int = PromptBudget().context_tokens

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method or ":" in self.method:
            raise ValueError(f"method must be a retrieval method's name, got {self.method!r}")
        if self.method == "none":
            object.__setattr__(self, "layout", None)
            object.__setattr__(self, "k", 1)
        elif self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        check_positive_ints(self, ("k",))
        PromptBudget(self.input_tokens, self.context_tokens)  # checks the budgets

    @property
    def id(self) -> str:
        return prompt_id(self.method, self.layout, self.k)

    @property
    def spec(self) -> str:
        """The method spec that builds this prompt (``none``, ``bm25:lamp``)."""
        return self.method if self.layout is None else f"{self.method}:{self.layout}"

    @property
    def budget(self) -> PromptBudget:
        return PromptBudget(self.input_tokens, self.context_tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "method": self.method, "layout": self.layout, "k": self.k,
                "input_tokens": self.input_tokens, "context_tokens": self.context_tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingPrompt:
        return cls(data["method"], data.get("layout"), int(data.get("k", 1)), int(data["input_tokens"]),
                   int(data["context_tokens"]))


def _instant(record: HistoryRecord) -> datetime | None:
    if not record.date:
        return None
    try:
        moment = datetime.fromisoformat(record.date)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def by_time(records: Iterable[HistoryRecord]) -> tuple[list[HistoryRecord], list[datetime] | None]:
    """``records`` oldest first with their instants; in the given order with ``None`` when
    any date is missing or unreadable (the order is then the only time there is)."""
    listed = list(records)
    instants = [_instant(r) for r in listed]
    if not listed or any(i is None for i in instants):
        return listed, None
    order = sorted(range(len(listed)), key=lambda i: instants[i])  # type: ignore[arg-type,return-value]
    return [listed[i] for i in order], [instants[i] for i in order]  # type: ignore[misc]


def items_before_questions(questions: Sequence[TaskExample]) -> list[HistoryRecord]:
    """The profile items that precede every one of ``questions`` (one user's, of a split
    whose golds must not be trained on): the items of the question whose profile ends
    earliest, or, without dates, the items common to all their profiles."""
    if not questions:
        return []
    profiles = [q.profile.records for q in questions]
    ends: list[datetime] = []
    for records in profiles:
        _, instants = by_time(records)
        if instants:
            ends.append(max(instants))
    if len(ends) == len(profiles):
        cutoff = min(ends)
        seen: dict[str, HistoryRecord] = {}
        for records in profiles:
            for record in records:
                moment = _instant(record)
                if moment is not None and moment <= cutoff:
                    seen.setdefault(record.id, record)
        return list(seen.values())
    common = set.intersection(*({r.id for r in records} for records in profiles))
    return [r for r in profiles[0] if r.id in common]
