"""Personalizers that ask the LLM first: profile summaries, personas, prompt refinement.

Each has a ``prepare(task, examples)`` step that the evaluation runner calls once before
predicting, so that the extra LLM calls (a summary per user, a description per persona)
run in batches with a progress bar instead of one at a time inside the loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tailor.backends.base import Backend
from tailor.embeddings.base import Embedder
from tailor.personalizers.base import Personalized
from tailor.personas.builder import build_personas_across_users, nearest_persona
from tailor.profiles.base import ProfileStore
from tailor.prompting.builder import Layout, PromptBudget, TokenCounter, build_messages
from tailor.prompting.refine import StyleNoteWriter, refined_instruction
from tailor.prompting.summary import ProfileSummarizer
from tailor.retrieval.base import Retriever
from tailor.tasks.base import TaskSpec
from tailor.types import Persona, Profile, TaskExample


class SummaryPersonalizer:
    """``summary``: the user's LLM-written profile summary above the input;
    ``summary+bm25``: the summary and the retrieved items."""

    def __init__(self, name: str, summarizer: ProfileSummarizer, *, retriever: Retriever | None = None, k: int = 1,
                 layout: Layout = "lamp", count_tokens: TokenCounter, budget: PromptBudget = PromptBudget()) -> None:
        self.name, self.summarizer, self.retriever, self.k = name, summarizer, retriever, k
        self.layout, self.count_tokens, self.budget = layout, count_tokens, budget
        self._summaries: dict[str, str] = {}

    def prepare(self, task: TaskSpec, examples: Sequence[TaskExample], progress: object | None = None) -> None:
        self._summaries.update(self.summarizer.summaries([e.user_id for e in examples], progress))

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        if profile.user_id not in self._summaries:
            self._summaries.update(self.summarizer.summaries([profile.user_id]))
        summary = self._summaries[profile.user_id]
        records = [h.record for h in self.retriever.retrieve(task.query(text), profile, self.k)] if self.retriever else []
        context = f"About this user: {summary}" if summary else None
        messages = build_messages(task, text, records, layout=self.layout, count_tokens=self.count_tokens,
                                  budget=self.budget, extra_context=context)
        return Personalized(messages=messages, retrieved=tuple(r.id for r in records),
                            granularity="user" if summary or records else "global",
                            notes={"summary": summary} if summary else {})


class PersonaPersonalizer:
    """``persona``: the description of the user's persona above the input.

    A user with fewer than ``min_records`` records (cold start) gets the persona nearest to
    the input itself; with no personas at all, no personalization (global).
    """

    def __init__(self, store: ProfileStore, embedder: Embedder, backend: Backend, *, k_personas: int | None = None,
                 min_records: int = 3, count_tokens: TokenCounter, budget: PromptBudget = PromptBudget(),
                 seed: int = 0) -> None:
        self.name = "persona"
        self.store, self.embedder, self.backend = store, embedder, backend
        self.k_personas, self.min_records, self.seed = k_personas, min_records, seed
        self.count_tokens, self.budget = count_tokens, budget
        self._personas: dict[str, Persona] = {}

    def prepare(self, task: TaskSpec, examples: Sequence[TaskExample], progress: object | None = None) -> None:
        users = [u for u in dict.fromkeys(e.user_id for e in examples)
                 if self.store.count_records(u) >= self.min_records]
        personas = self.store.list_personas()
        built_for = {str(p.metadata.get("task")) for p in personas}
        if not personas or task.name not in built_for or any(self.store.persona_of(u) is None for u in users):
            personas = build_personas_across_users(self.store, self.embedder, self.backend, task, user_ids=users or None,
                                                   k=self.k_personas, seed=self.seed)
        self._personas = {p.persona_id: p for p in personas}

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        if not self._personas:
            self._personas = {p.persona_id: p for p in self.store.list_personas()}
        persona: Persona | None = None
        if len(profile.records) >= self.min_records:
            persona_id = self.store.persona_of(profile.user_id)
            persona = self._personas.get(persona_id) if persona_id else None
        if persona is None and self._personas:  # cold start: the persona nearest to the input
            vector = self.embedder.embed([task.query(text)])[0]
            persona = nearest_persona(list(self._personas.values()), np.asarray(vector, dtype=np.float64))
        context = f"This user writes like this group: {persona.description}" if persona and persona.description else None
        messages = build_messages(task, text, (), count_tokens=self.count_tokens, budget=self.budget,
                                  extra_context=context)
        return Personalized(messages=messages, granularity="persona" if context else "global",
                            notes={"persona": persona.persona_id} if persona else {})


class RefinePersonalizer:
    """``refine``: a style note written from the user's retrieved items rewrites the instruction."""

    def __init__(self, retriever: Retriever, writer: StyleNoteWriter, *, k: int = 4, count_tokens: TokenCounter,
                 budget: PromptBudget = PromptBudget()) -> None:
        self.name = "refine"
        self.retriever, self.writer, self.k = retriever, writer, k
        self.count_tokens, self.budget = count_tokens, budget

    def personalize_batch(self, task: TaskSpec, items: Sequence[tuple[str, Profile]]) -> list[Personalized]:
        retrieved = [[h.record for h in self.retriever.retrieve(task.query(text), profile, self.k)]
                     for text, profile in items]
        notes = self.writer.notes([(profile.user_id, records) for (_, profile), records in zip(items, retrieved)])
        results = []
        for (text, _), records, note in zip(items, retrieved, notes):
            messages = build_messages(task, text, (), count_tokens=self.count_tokens, budget=self.budget)
            messages = ({"role": "system", "content": refined_instruction(task, note)}, *messages[1:])
            results.append(Personalized(messages=messages, retrieved=tuple(r.id for r in records),
                                        granularity="user" if note else "global", notes={"style": note}))
        return results

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        return self.personalize_batch(task, [(text, profile)])[0]
