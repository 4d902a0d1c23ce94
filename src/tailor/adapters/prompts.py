"""RAG-aware training data: pairs whose prompt is the one a personalization method builds.

LaMP's fine-tuned setting: a model fine-tuned on the retrieval-augmented prompt it will be
served is what makes retrieval pay off on small models; an adapter trained on the bare
input and then served with pasted items sees an input it never learned. So an adapter is
trained for one prompt (a :class:`TrainingPrompt`: ``none``, or a retrieval method with its
layout, ``k`` and token budgets), and every training prompt is built by the very
personalizer object ``tailor eval`` builds for that method (same retriever, layout, k and
budgets, no truncation of its own). The prompt's id (``none``, ``bm25:lamp:k=1``) is part
of the adapter's key, so ``lora+bm25`` is served by adapters trained on bm25 prompts.

No leakage, for one user:

- each profile item is a pair: its input (the task's ``item_turn``) with the prompt built
  from the user's items dated *strictly earlier* than it (profiles whose dates are missing
  or unreadable: the items before it in the profile's order), its output as the target;
- each question of the *train* split is a pair: its input with the prompt built from its
  profile as given (a LaMP profile holds what preceded the question), its gold as target.
  A profile item that is itself one of these questions is left to the question's pair.

Golds are read only for the train split: training on dev or test questions would train on
what the evaluation then asks. For another split, only the items that precede every one of
the user's questions are used (see :func:`items_before_questions`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tailor.adapters.data import TrainingPair, item_pair
from tailor.adapters.store import NO_PROMPT
from tailor.personalizers.base import Personalizer
from tailor.prompting.builder import LAYOUTS, PromptBudget
from tailor.tasks.base import TaskSpec
from tailor.types import HistoryRecord, Profile, TaskExample

__all__ = ["TRAINABLE_METHODS", "TrainingPrompt", "by_time", "items_before_questions", "method_pairs", "prompt_id"]

TRAINABLE_METHODS = ("none", "bm25")
"""Prompt methods an adapter can be trained for: those the adapter methods serve
(``lora`` = the ``none`` prompt, ``lora+bm25`` = the ``bm25`` prompt)."""


def prompt_id(method: str, layout: str | None, k: int) -> str:
    """The name of a training prompt: ``none``, or ``METHOD:LAYOUT:k=K``."""
    return NO_PROMPT if method == "none" else f"{method}:{layout}:k={k}"


@dataclass(frozen=True)
class TrainingPrompt:
    """The prompt an adapter is trained on and served with (the method's, resolved)."""

    method: str = "none"
    layout: str | None = None
    """The retrieved items' layout (``lamp`` or ``dialogue``); ``None`` for ``none``."""
    k: int = 1
    input_tokens: int = PromptBudget().input_tokens
    context_tokens: int = PromptBudget().context_tokens

    def __post_init__(self) -> None:
        if self.method not in TRAINABLE_METHODS:
            raise ValueError(f"adapters are trained for the prompt of {', '.join(TRAINABLE_METHODS)}, "
                             f"not {self.method!r}")
        if self.method == "none":
            object.__setattr__(self, "layout", None)
            object.__setattr__(self, "k", 1)
        elif self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        PromptBudget(self.input_tokens, self.context_tokens)  # checks the budgets

    @classmethod
    def of(cls, method: str, task: TaskSpec, *, k: int = 1, budget: PromptBudget = PromptBudget()) -> TrainingPrompt:
        """The prompt of a method spec as ``tailor eval --method`` takes it (``bm25``, ``bm25:dialogue``)."""
        from tailor.personalizers import parse_method

        spec = parse_method(method)
        if spec.name not in TRAINABLE_METHODS:
            raise ValueError(f"adapters can be trained for the prompt of {', '.join(TRAINABLE_METHODS)} "
                             f"(served as lora and lora+bm25), not {spec.name!r}")
        return cls(spec.name, spec.layout or task.layout if spec.name != "none" else None, k,
                   budget.input_tokens, budget.context_tokens)

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


def _pair(task: TaskSpec, personalizer: Personalizer, record_id: str, text: str, output: str,
          profile: Profile) -> TrainingPair:
    decided = personalizer.personalize(task, text, profile)
    return TrainingPair(record_id, text, output, messages=tuple(dict(m) for m in decided.messages),
                        context=tuple(decided.retrieved))


def method_pairs(task: TaskSpec, personalizer: Personalizer, user_id: str, records: Sequence[HistoryRecord],
                 questions: Sequence[TaskExample] = ()) -> list[TrainingPair]:
    """One user's training pairs with ``personalizer``'s prompts (see the module docstring).

    ``records`` is the user's history; ``questions`` are train-split questions with golds
    (their pairs come last, in the given order). Each pair's ``context`` lists the record
    ids its prompt shows.
    """
    if not task.document_fields:
        raise ValueError(f"task {task.name} has no document fields to learn from; adapters do not support it")
    listed = list(records)
    ordered, instants = by_time(listed)
    moments = {r.id: moment for r, moment in zip(ordered, instants)} if instants is not None else None
    question_ids = {q.id for q in questions}
    pairs = []
    for index, record in enumerate(ordered):
        if record.id in question_ids:
            continue
        item = item_pair(task, record)
        if item is None:
            continue
        if moments is None:
            earlier = ordered[:index]
        else:
            # In the profile's own order, as the store hands it to the personalizer at inference.
            earlier = [r for r in listed if moments[r.id] < moments[record.id]]
        pairs.append(_pair(task, personalizer, record.id, item.input, item.output, Profile(user_id, tuple(earlier))))
    for question in questions:
        if question.user_id != user_id:
            raise ValueError(f"question {question.id} is user {question.user_id!r}'s, not {user_id!r}'s")
        gold = (question.gold or "").strip()
        if gold:
            pairs.append(_pair(task, personalizer, question.id, question.input, gold, question.profile))
    return pairs
