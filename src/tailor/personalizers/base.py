"""Personalizers: for one user's input, decide what the model sees.

A personalizer reads the user's profile (handed to it, already scoped to that user),
retrieves, and builds the chat messages. The same personalizer serves an offline
evaluation and a live request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tailor.prompting.builder import Layout, PromptBudget, TokenCounter, build_messages
from tailor.retrieval.base import Retriever
from tailor.tasks.base import TaskSpec
from tailor.types import Granularity, ModelSteps, Profile


@dataclass(frozen=True)
class Personalized:
    """What a personalizer decided for one input: the messages, the record ids it used,
    and the granularity it worked at (``global`` = no personalization).

    A method that needs no model (``profile-prior``, ``knn``) gives its ``answer`` itself
    and no messages. ``label_prior`` (log-probabilities over the task's labels) asks for
    the model's calibrated label scores to be multiplied by it (``bm25+prior``).
    """

    messages: tuple[dict[str, str], ...]
    retrieved: tuple[str, ...] = ()
    granularity: Granularity = "global"
    notes: dict[str, str] = field(default_factory=dict)
    answer: str | None = None
    label_prior: Mapping[str, float] | None = None


@runtime_checkable
class Personalizer(Protocol):
    name: str

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized: ...


def personalize_steps(personalizer: Personalizer, task: TaskSpec, text: str,
                      profile: Profile) -> ModelSteps[Personalized]:
    """``personalizer.personalize(task, text, profile)`` as steps
    (:data:`~tailor.types.ModelSteps`): a personalizer that asks the model before its
    prompt (``refine``'s style note) has a ``personalize_steps`` method that yields those
    requests to the caller; any other decides at once, yielding nothing."""
    steps = getattr(personalizer, "personalize_steps", None)
    if steps is None:
        return personalizer.personalize(task, text, profile)
    decided: Personalized = yield from steps(task, text, profile)
    return decided


class NoPersonalization:
    """The non-personalized baseline: the task input alone."""

    name = "none"

    def __init__(self, *, count_tokens: TokenCounter, budget: PromptBudget = PromptBudget()) -> None:
        self.count_tokens = count_tokens
        self.budget = budget

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        messages = build_messages(task, text, (), count_tokens=self.count_tokens, budget=self.budget)
        return Personalized(messages=messages, granularity="global")


class RetrievalPersonalizer:
    """Retrieve the ``k`` best items of the user's profile and show them with the input."""

    def __init__(self, name: str, retriever: Retriever, *, k: int, layout: Layout,
                 count_tokens: TokenCounter, budget: PromptBudget = PromptBudget()) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1 for a retrieval method, got {k}")
        self.name = name
        self.retriever = retriever
        self.k = k
        self.layout = layout
        self.count_tokens = count_tokens
        self.budget = budget

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        hits = self.retriever.retrieve(task.query(text), profile, self.k)
        records = [hit.record for hit in hits]
        messages = build_messages(task, text, records, layout=self.layout,
                                  count_tokens=self.count_tokens, budget=self.budget)
        return Personalized(
            messages=messages,
            retrieved=tuple(r.id for r in records),
            granularity="user" if records else "global",
        )
