"""Notes about the user above the input: an LLM-written profile summary (PAG-style) and the
description of the user's persona. Each is a :class:`NoteSource` that a
:class:`~tailor.personalizers.prompt.PromptPersonalizer` asks for one line per input; the
notes are one free-text block (:func:`~tailor.prompting.builder.build_messages`'
``extra_context``), in the order of the method's parts (summary, then persona).

A note source may ask the model first (a summary per user, a description per persona):
``prepare`` does that in batches for the users ``tailor eval`` is about to see, with a
progress bar, instead of one at a time inside the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tailor.backends.contract import Backend
from tailor.personas.chooser import PersonaChooser
from tailor.tasks.spec import TaskSpec
from tailor.types import Granularity

SUMMARY_PREFIX = "About this user: "
PERSONA_PREFIX = "This user writes like this group: "


class SummarySource(Protocol):
    """Where a user's profile summary comes from: written now (``tailor eval``,
    :class:`~tailor.prompting.summary.ProfileSummarizer`) or the newest stored one while a
    new one is written in the background (``tailor serve``)."""

    def summary(self, user_id: str) -> str:
        """The user's summary; empty when there is none."""
        ...


@dataclass(frozen=True)
class Note:
    """One note for one input: the ``line`` shown (may be empty), the ``value`` recorded in
    the prediction's notes, and the granularity the line personalizes at."""

    line: str
    value: str
    granularity: Granularity


class NoteSource(Protocol):
    kind: str
    """The key of its value in :attr:`~tailor.personalizers.contract.Personalized.notes`."""

    def prepare(self, task: TaskSpec, user_ids: Sequence[str], progress: object | None) -> None: ...

    def note(self, task: TaskSpec, user_id: str, query: str) -> Note | None: ...


class SummaryNote:
    """The user's profile summary, from ``summaries``."""

    kind = "summary"

    def __init__(self, summaries: SummarySource) -> None:
        self.summaries = summaries
        self._prepared: dict[str, str] = {}

    def prepare(self, task: TaskSpec, user_ids: Sequence[str], progress: object | None) -> None:
        write = getattr(self.summaries, "summaries", None)
        if callable(write):
            self._prepared.update(write(list(user_ids), progress))

    def note(self, task: TaskSpec, user_id: str, query: str) -> Note | None:
        summary = self._prepared[user_id] if user_id in self._prepared else self.summaries.summary(user_id)
        return Note(SUMMARY_PREFIX + summary, summary, "user") if summary else None


class PersonaNote:
    """The description of the user's persona, chosen by ``personas``
    (:class:`~tailor.personas.chooser.PersonaChooser`); with ``backend``, ``prepare``
    builds the personas the examples' users need first (``tailor eval``)."""

    kind = "persona"

    def __init__(self, personas: PersonaChooser, *, backend: Backend | None = None, k: int | None = None,
                 seed: int = 0) -> None:
        self.personas, self.backend, self.k, self.seed = personas, backend, k, seed

    def prepare(self, task: TaskSpec, user_ids: Sequence[str], progress: object | None) -> None:
        if self.backend is not None:
            self.personas.prepare(task, list(user_ids), self.backend, k=self.k, seed=self.seed)

    def note(self, task: TaskSpec, user_id: str, query: str) -> Note | None:
        persona = self.personas.persona(user_id, query)
        if persona is None:
            return None
        description = persona.description.strip()
        return Note(PERSONA_PREFIX + description if description else "", persona.persona_id, "persona")


__all__ = ["PERSONA_PREFIX", "SUMMARY_PREFIX", "Note", "NoteSource", "PersonaNote", "SummaryNote", "SummarySource"]
