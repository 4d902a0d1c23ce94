"""``refine``: a style note, written by the model from the user's retrieved items, rewrites
the task's instruction (prompt refinement).

The note is a model call before the prompt: ``tailor eval`` asks the writer's backend in
batches (:meth:`RefinePersonalizer.personalize_batch`); ``tailor serve`` queues the request
like a reply (:meth:`RefinePersonalizer.personalize_steps`). Both build the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from tailor.personalizers.contract import Personalized
from tailor.prompting.builder import PromptBudget, TokenCounter, build_messages
from tailor.prompting.refine import StyleNoteWriter, refined_instruction
from tailor.retrieval.retriever import Retriever
from tailor.tasks.spec import TaskSpec
from tailor.types import ModelSteps, Profile, answer_steps


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
        """:meth:`personalize` as steps (see :func:`~tailor.personalizers.contract.personalize_steps`)."""
        decided = yield from self.batch_steps(task, [(text, profile)])
        return decided[0]

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        return self.personalize_batch(task, [(text, profile)])[0]

    def forget(self, user_id: str) -> None:
        """Drop what is cached about the user (their style notes)."""
        self.writer.forget(user_id)


__all__ = ["RefinePersonalizer"]
