"""Prompt refinement: derive the user's conventions from their retrieved items, then
rewrite the task instruction with them.

The first LLM call reads the items and writes a one-sentence style note ("short
headlines in title case, often with a colon"); the task instruction is then rewritten to
ask for that style. Notes are cached per user and per set of retrieved items.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from tailor.prompting.summary import clean_description, describe_items_messages
from tailor.tasks.base import TaskSpec
from tailor.types import Backend, GenerationRequest, HistoryRecord

STYLE_INSTRUCTION = (
    "In one short sentence, state the conventions these items follow that a writer should "
    "copy (length in words, capitalization, punctuation, tone). Answer with the sentence only."
)


def refined_instruction(task: TaskSpec, note: str) -> str:
    """The task instruction rewritten to follow the user's conventions."""
    if not note:
        return task.instruction
    return f"{task.instruction} Follow this user's conventions: {note}"


class StyleNoteWriter:
    """Writes style notes from retrieved items, in batches, with a small LRU cache."""

    def __init__(self, backend: Backend, task: TaskSpec, *, max_new_tokens: int = 40, cache_size: int = 1024) -> None:
        self.backend, self.task, self.max_new_tokens = backend, task, max_new_tokens
        self._cache: OrderedDict[tuple[str, tuple[str, ...]], str] = OrderedDict()
        self._cache_size = cache_size

    def notes(self, items: Sequence[tuple[str, Sequence[HistoryRecord]]]) -> list[str]:
        """A note per ``(user_id, retrieved records)`` pair; empty for an empty list of records."""
        keys = [(user_id, tuple(r.id for r in records)) for user_id, records in items]
        todo = {key: records for key, (_, records) in zip(keys, items) if records and key not in self._cache}
        if todo:
            requests = [GenerationRequest(messages=describe_items_messages(self.task, records, STYLE_INSTRUCTION,
                                                                           count_tokens=self.backend.count_tokens),
                                          max_new_tokens=self.max_new_tokens, stop=("\n",))
                        for records in todo.values()]
            for key, result in zip(todo, self.backend.generate(requests)):
                self._cache[key] = clean_description(result.text)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return [self._cache.get(key, "") for key in keys]
