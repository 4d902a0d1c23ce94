"""Personalizing one chat request: what the model is told about the user, and where.

For a user the store holds, the user's latest message is the query: the ``k`` best
matching records (BM25, or the latest with ``recency``) and the ``k_memories`` best
memories are retrieved, the user's persona description and profile summary are added
when the store has them, and all of it goes into one system message ahead of the
conversation (the client's own system messages come first in it). An unknown user, or a
request without ``user``, is served as is: no personalization, granularity ``global``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tailor.memory.store import Memory, MemoryStore
from tailor.profiles.sqlite import SQLiteProfileStore
from tailor.prompting.builder import TokenCounter, fit_record
from tailor.server.config import ServeMethod
from tailor.server.record_index import RecordIndex
from tailor.tasks.chat import CHAT_TASK, ChatTask
from tailor.types import Granularity, HistoryRecord


@dataclass(frozen=True)
class ChatContext:
    """What was found about the user for one request."""

    records: tuple[HistoryRecord, ...] = ()
    memories: tuple[Memory, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def granularity(self) -> Granularity:
        return "user" if self.records or self.memories or self.notes else "global"


class ChatPersonalizer:
    """Retrieves a user's context and places it in a conversation."""

    def __init__(self, store: SQLiteProfileStore, index: RecordIndex, memory: MemoryStore | None, *,
                 method: ServeMethod, k: int, k_memories: int, count_tokens: TokenCounter,
                 context_tokens: int = 384, task: ChatTask = CHAT_TASK) -> None:
        self.store = store
        self.index = index
        self.memory = memory
        self.method = method
        self.k = k
        self.k_memories = k_memories
        self.count_tokens = count_tokens
        self.context_tokens = context_tokens
        self.task = task

    def context(self, user_id: str, query: str) -> ChatContext | None:
        """The user's context for ``query``; ``None`` when the store does not hold the user."""
        records: list[HistoryRecord] | None
        if self.method == "bm25":
            records = self.index.search(user_id, query, self.k)
        elif self.method == "recency":
            records = self.index.recent(user_id, self.k)
        else:
            records = [] if self.store.has_user(user_id) else None
        if records is None:
            return None
        memories = self.memory.search(user_id, query, self.k_memories) if self.memory is not None else []
        return ChatContext(tuple(records), tuple(memories), tuple(self._notes(user_id)))

    def _notes(self, user_id: str) -> list[str]:
        notes = []
        persona_id = self.store.persona_of(user_id)
        if persona_id is not None:
            for persona in self.store.list_personas():
                if persona.persona_id == persona_id and persona.description.strip():
                    notes.append(persona.description.strip())
        # The newest profile summary (tailor.prompting.summary writes one per task and model).
        summaries = [a for a in self.store.list_artifacts(user_id) if a.kind == "summary"]
        if summaries:
            text = max(summaries, key=lambda artifact: artifact.created_at).value.get("summary")
            if isinstance(text, str) and text.strip():
                notes.append(text.strip())
        return notes

    def messages(self, conversation: Sequence[dict[str, str]], context: ChatContext) -> tuple[dict[str, str], ...]:
        """The conversation with the user's context in a leading system message."""
        if context.granularity == "global":
            return tuple(conversation)
        system = [m["content"] for m in conversation if m["role"] == "system" and m["content"].strip()]
        blocks = ["\n\n".join(system) if system else self.task.instruction]
        if context.notes:
            blocks.append("About the user:\n" + "\n".join(context.notes))
        if context.memories:
            blocks.append(self.task.memory_header + "\n" + "\n".join(f"- {m.text}" for m in context.memories))
        if context.records:
            share = self.context_tokens // len(context.records)
            fitted = [fit_record(self.task, record, share, self.count_tokens) for record in context.records]
            blocks.append(self.task.context_header + "\n"
                          + "\n".join(f"- {self.task.render_item(record)}" for record in fitted))
        rest = [m for m in conversation if m["role"] != "system"]
        return ({"role": "system", "content": "\n\n".join(blocks)}, *rest)


__all__ = ["ChatContext", "ChatPersonalizer"]
