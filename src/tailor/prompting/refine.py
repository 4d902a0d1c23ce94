"""Prompt refinement: derive the user's conventions from their retrieved items, then
rewrite the task instruction with them.

The first LLM call reads the items and writes a one-sentence style note ("short
headlines in title case, often with a colon"); the task instruction is then rewritten to
ask for that style. Notes are cached per user and per set of retrieved items (their
contents, so a record replaced under the same id gets a new note).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence

from tailor.prompting.summary import clean_description, describe_items_messages
from tailor.tasks.spec import TaskSpec
from tailor.types import Backend, GenerationRequest, HistoryRecord, ModelSteps, answer_steps

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
    """Writes style notes from retrieved items, in batches, with a small LRU cache.

    :meth:`notes` asks ``backend``; :meth:`note_steps` leaves asking the model to its
    caller (``tailor serve`` queues the requests like replies). Both write the same notes.
    """

    def __init__(self, backend: Backend, task: TaskSpec, *, max_new_tokens: int = 40, cache_size: int = 1024) -> None:
        self.backend, self.task, self.max_new_tokens = backend, task, max_new_tokens
        self._cache: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # a server writes notes for several requests at once

    def notes(self, items: Sequence[tuple[str, Sequence[HistoryRecord]]]) -> list[str]:
        """A note per ``(user_id, retrieved records)`` pair; empty for an empty list of records."""
        return answer_steps(self.note_steps(items), self.backend.generate)

    def note_steps(self, items: Sequence[tuple[str, Sequence[HistoryRecord]]]) -> ModelSteps[list[str]]:
        """:meth:`notes` as steps: yields the requests for the notes not cached (once, none
        when all are), is sent their results, and returns a note per pair."""
        keys = [(user_id, _digest(records)) for user_id, records in items]
        with self._lock:
            todo = {key: records for key, (_, records) in zip(keys, items) if records and key not in self._cache}
        written: dict[tuple[str, str], str] = {}
        if todo:
            requests = [GenerationRequest(messages=describe_items_messages(self.task, records, STYLE_INSTRUCTION,
                                                                           count_tokens=self.backend.count_tokens),
                                          max_new_tokens=self.max_new_tokens, stop=("\n",))
                        for records in todo.values()]
            results = yield requests
            if len(results) != len(requests):
                raise ValueError(f"{len(requests)} style notes were asked for, {len(results)} answers came back")
            written = {key: clean_description(result.text) for key, result in zip(todo, results)}
            with self._lock:
                self._cache.update(written)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        with self._lock:
            return [written[key] if key in written else self._cache.get(key, "") for key in keys]

    def forget(self, user_id: str) -> None:
        """Drop the user's cached notes (the user was deleted)."""
        with self._lock:
            for key in [key for key in self._cache if key[0] == user_id]:
                del self._cache[key]


def _digest(records: Sequence[HistoryRecord]) -> str:
    """The records' ids and contents, as a cache key."""
    shown = json.dumps([record.to_dict() for record in records], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(shown.encode("utf-8")).hexdigest()
