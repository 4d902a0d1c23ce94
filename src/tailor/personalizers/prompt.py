"""The prompt of a method's retrieval and notes: what ``none``, every retrieval method and
``summary``/``persona`` (alone or with a retrieval) build."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tailor.personalizers.contract import Personalized
from tailor.prompting.builder import Layout, PromptBudget, TokenCounter, build_messages
from tailor.retrieval.retriever import Retriever
from tailor.tasks.spec import TaskSpec
from tailor.types import Granularity, Profile, TaskExample

if TYPE_CHECKING:
    from tailor.personalizers.notes import NoteSource


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


__all__ = ["NoPersonalization", "PromptPersonalizer", "RetrievalPersonalizer"]
