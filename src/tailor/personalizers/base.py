"""Personalizers: for one user's input, decide what the model sees.

A personalizer reads the user's profile (handed to it, already scoped to that user),
retrieves, and builds the chat messages. The same personalizer serves an offline
evaluation and a live request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tailor.prompting.builder import Layout, PromptBudget, TokenCounter, build_messages
from tailor.retrieval.base import Retriever
from tailor.tasks.base import TaskSpec
from tailor.types import Granularity, ModelSteps, Profile, TaskExample

if TYPE_CHECKING:
    from tailor.personalizers.notes import NoteSource
    from tailor.store.contract import ProfileStore


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


class PromptPersonalizer:
    """The prompt of a method's retrieval and notes: the notes about the user (each
    :class:`~tailor.personalizers.notes.NoteSource`'s line, in order) and the ``k`` best
    items ``retriever`` finds in the user's profile, shown with the input in ``layout``;
    with neither, the input alone (the ``none`` baseline).

    The granularity is ``user`` when a record or a note of the user's own is shown,
    ``persona`` when only their persona's description is, else ``global``.
    """

    def __init__(self, name: str, *, retriever: Retriever | None = None, notes: Sequence[NoteSource] = (),
                 k: int = 1, layout: Layout = "lamp", count_tokens: TokenCounter,
                 budget: PromptBudget = PromptBudget()) -> None:
        if retriever is not None and k < 1:
            raise ValueError(f"k must be at least 1 for a retrieval method, got {k}")
        self.name, self.retriever, self.notes, self.k = name, retriever, tuple(notes), k
        self.layout, self.count_tokens, self.budget = layout, count_tokens, budget

    @property
    def prepare(self) -> Callable[[TaskSpec, Sequence[TaskExample], object | None], None] | None:
        """What ``tailor eval`` calls once before the first prompt, when there is anything
        to prepare: the notes' model calls for the examples' users, in batches."""
        return self._prepare if self.notes else None

    def _prepare(self, task: TaskSpec, examples: Sequence[TaskExample], progress: object | None = None) -> None:
        users = [e.user_id for e in examples]
        for note in self.notes:
            note.prepare(task, users, progress)

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        query = task.query(text)
        lines: list[str] = []
        notes: dict[str, str] = {}
        levels: set[Granularity] = set()
        for source in self.notes:
            note = source.note(task, profile.user_id, query)
            if note is None:
                continue
            notes[source.kind] = note.value
            if note.line:
                lines.append(note.line)
                levels.add(note.granularity)
        records = ([hit.record for hit in self.retriever.retrieve(query, profile, self.k)]
                   if self.retriever is not None else [])
        messages = build_messages(task, text, records, layout=self.layout, count_tokens=self.count_tokens,
                                  budget=self.budget, extra_context="\n".join(lines) or None)
        granularity: Granularity = "user" if records or "user" in levels else (
            "persona" if "persona" in levels else "global")
        return Personalized(messages=messages, retrieved=tuple(r.id for r in records), granularity=granularity,
                            notes=notes)


class NoPersonalization(PromptPersonalizer):
    """The non-personalized baseline: the task input alone."""

    def __init__(self, *, count_tokens: TokenCounter, budget: PromptBudget = PromptBudget()) -> None:
        super().__init__("none", count_tokens=count_tokens, budget=budget)


class RetrievalPersonalizer(PromptPersonalizer):
    """Retrieve the ``k`` best items of the user's profile and show them with the input."""

    def __init__(self, name: str, retriever: Retriever, *, k: int, layout: Layout,
                 count_tokens: TokenCounter, budget: PromptBudget = PromptBudget()) -> None:
        super().__init__(name, retriever=retriever, k=k, layout=layout, count_tokens=count_tokens, budget=budget)


class ProfileFromStore:
    """``personalizer`` handed the user's whole profile, read from ``store`` (``tailor
    serve`` hands personalizers a profile holding only the user's id)."""

    def __init__(self, personalizer: Personalizer, store: ProfileStore) -> None:
        self.name, self.personalizer, self.store = personalizer.name, personalizer, store

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        return self.personalizer.personalize(task, text, self.store.get_profile(profile.user_id))
