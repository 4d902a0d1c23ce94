"""Personalizers that ask the LLM first: profile summaries and personas (one personalizer,
:class:`NotesPersonalizer`, for ``tailor eval`` and ``tailor serve``), prompt refinement.

Each has a ``prepare(task, examples)`` step that the evaluation runner calls once before
predicting, so that the extra LLM calls (a summary per user, a description per persona)
run in batches with a progress bar instead of one at a time inside the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tailor.backends.base import Backend
from tailor.personalizers.base import Personalized
from tailor.personas.chooser import PersonaChooser
from tailor.prompting.builder import Layout, PromptBudget, TokenCounter, build_messages
from tailor.prompting.refine import StyleNoteWriter, refined_instruction
from tailor.retrieval.base import Retriever
from tailor.tasks.base import TaskSpec
from tailor.types import Granularity, ModelSteps, Profile, TaskExample, answer_steps


class SummarySource(Protocol):
    """Where a user's profile summary comes from: written now (``tailor eval``,
    :class:`~tailor.prompting.summary.ProfileSummarizer`) or the newest stored one while a
    new one is written in the background (``tailor serve``)."""

    def summary(self, user_id: str) -> str:
        """The user's summary; empty when there is none."""
        ...


SUMMARY_PREFIX = "About this user: "
PERSONA_PREFIX = "This user writes like this group: "


class NotesPersonalizer:
    """Notes about the user above the input, and the retrieved items: ``summary`` (the
    user's LLM-written profile summary), ``persona`` (their persona's description, see
    :class:`~tailor.personas.chooser.PersonaChooser`), both, each with or without a
    retrieval (``summary+bm25``, ``persona+hybrid``...). The notes are one free-text block
    (:func:`~tailor.prompting.builder.build_messages`' ``extra_context``): summary first,
    then persona.
    """

    def __init__(self, name: str, *, summaries: SummarySource | None = None, personas: PersonaChooser | None = None,
                 retriever: Retriever | None = None, k: int = 1, layout: Layout = "lamp",
                 count_tokens: TokenCounter, budget: PromptBudget = PromptBudget(),
                 persona_backend: Backend | None = None, k_personas: int | None = None, seed: int = 0) -> None:
        self.name, self.summaries, self.personas, self.retriever, self.k = name, summaries, personas, retriever, k
        self.layout, self.count_tokens, self.budget = layout, count_tokens, budget
        self.persona_backend, self.k_personas, self.seed = persona_backend, k_personas, seed
        self._prepared: dict[str, str] = {}

    def prepare(self, task: TaskSpec, examples: Sequence[TaskExample], progress: object | None = None) -> None:
        """Write the summaries of the examples' users in batches, and build the personas
        they need, before the first prompt (``tailor eval`` calls this once)."""
        users = [e.user_id for e in examples]
        write = getattr(self.summaries, "summaries", None)
        if callable(write):
            self._prepared.update(write(users, progress))
        if self.personas is not None and self.persona_backend is not None:
            self.personas.prepare(task, users, self.persona_backend, k=self.k_personas, seed=self.seed)

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        user_id = profile.user_id
        lines: list[str] = []
        notes: dict[str, str] = {}
        if self.summaries is not None:
            summary = self._prepared[user_id] if user_id in self._prepared else self.summaries.summary(user_id)
            if summary:
                lines.append(SUMMARY_PREFIX + summary)
                notes["summary"] = summary
        persona_shown = False
        if self.personas is not None:
            persona = self.personas.persona(user_id, task.query(text))
            if persona is not None:
                notes["persona"] = persona.persona_id
                if persona.description.strip():
                    lines.append(PERSONA_PREFIX + persona.description.strip())
                    persona_shown = True
        records = ([h.record for h in self.retriever.retrieve(task.query(text), profile, self.k)]
                   if self.retriever is not None else [])
        messages = build_messages(task, text, records, layout=self.layout, count_tokens=self.count_tokens,
                                  budget=self.budget, extra_context="\n".join(lines) or None)
        granularity: Granularity = "user" if "summary" in notes or records else (
            "persona" if persona_shown else "global")
        return Personalized(messages=messages, retrieved=tuple(r.id for r in records), granularity=granularity,
                            notes=notes)


REFINE_RETRIEVAL = "bm25"
"""How ``refine`` ranks the items its style note is written from."""


class RefinePersonalizer:
    """``refine``: a style note written from the user's retrieved items rewrites the instruction.

    The note is a model call before the prompt: :meth:`personalize_batch` asks the writer's
    backend (``tailor eval``); :meth:`personalize_steps` hands the request to its caller
    (``tailor serve`` queues it like a reply). Both build the same messages.
    """

    def __init__(self, retriever: Retriever, writer: StyleNoteWriter, *, k: int = 4, count_tokens: TokenCounter,
                 budget: PromptBudget = PromptBudget()) -> None:
        self.name = "refine"
        self.retriever, self.writer, self.k = retriever, writer, k
        self.count_tokens, self.budget = count_tokens, budget

    def batch_steps(self, task: TaskSpec, items: Sequence[tuple[str, Profile]]) -> ModelSteps[list[Personalized]]:
        """:meth:`personalize_batch` as steps (:data:`~tailor.types.ModelSteps`): yields the
        style notes' requests, is sent their results."""
        retrieved = [[h.record for h in self.retriever.retrieve(task.query(text), profile, self.k)]
                     for text, profile in items]
        notes = yield from self.writer.note_steps(
            [(profile.user_id, records) for (_, profile), records in zip(items, retrieved)])
        results = []
        for (text, _), records, note in zip(items, retrieved, notes):
            messages = build_messages(task, text, (), count_tokens=self.count_tokens, budget=self.budget)
            messages = ({"role": "system", "content": refined_instruction(task, note)}, *messages[1:])
            results.append(Personalized(messages=messages, retrieved=tuple(r.id for r in records),
                                        granularity="user" if note else "global", notes={"style": note}))
        return results

    def personalize_batch(self, task: TaskSpec, items: Sequence[tuple[str, Profile]]) -> list[Personalized]:
        return answer_steps(self.batch_steps(task, items), self.writer.backend.generate)

    def personalize_steps(self, task: TaskSpec, text: str, profile: Profile) -> ModelSteps[Personalized]:
        """:meth:`personalize` as steps (see :func:`~tailor.personalizers.base.personalize_steps`)."""
        decided = yield from self.batch_steps(task, [(text, profile)])
        return decided[0]

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        return self.personalize_batch(task, [(text, profile)])[0]

    def forget(self, user_id: str) -> None:
        """Drop what is cached about the user (their style notes)."""
        self.writer.forget(user_id)
