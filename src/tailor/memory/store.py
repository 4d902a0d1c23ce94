"""Per-user conversations and memories, kept in the profile store (SQLite or PostgreSQL).

The store holds the tables and their SQL (:mod:`tailor.store.conversations`); this
module gives them meaning: facts in, memories searched out. Tables (declared with the
store's schema, each under its derived data rule: they reference ``users(user_id) ON
DELETE CASCADE``, so deleting a user deletes their conversations, memories and history)::

    conversation_messages(message_id, user_id, completion_id, role, content, created_at,
                          extraction 'pending' | 'done' | 'failed' | 'none')
    memories(memory_id, user_id, key, operator, value, text, normalized, terms, confidence,
             source_message_id, created_at, superseded_by, superseded_at, embedder, embedding)
    memory_history(event_id, memory_id -> memories ON DELETE CASCADE, user_id, event,
                   related_memory_id, source_message_id, at)

Semantics:

- a fact already held (same normalized key and value, or same normalized free text) is
  not added again;
- a ``key = value`` fact supersedes the user's active facts with the same key: they get
  ``superseded_by`` and a ``SUPERSEDED`` history event, and stay readable;
- deleting a memory is a hard delete of it, the earlier versions it superseded, and
  their history: what the user asked to forget is gone, not hidden.

Every statement names the ``user_id``, so one user's memories are never read for another.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from tailor.embeddings.embedder import Embedder
from tailor.memory.episodes import DEFAULT_EPISODE_METHOD, Episode, EpisodeMethod, EpisodeSearch
from tailor.memory.facts import Fact
from tailor.memory.search import TextEmbedder, hybrid_rank
from tailor.retrieval.bm25 import tokenize
from tailor.store import SQLProfileStore
from tailor.store.checks import utc_now
from tailor.store.conversations import NewMemory

# How long a worker's claim on a message lasts: far longer than one extraction takes.
CLAIM_SECONDS = 600.0
# Search reads at most this many of a user's newest active memories.
MAX_SEARCHED = 2000


@dataclass(frozen=True)
class Memory:
    """One remembered fact about a user, with where and when it came from."""

    id: str
    key: str | None
    operator: str
    value: str
    text: str
    confidence: float
    source_message_id: str | None
    created_at: str
    superseded_by: str | None = None
    superseded_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MemoryStore:
    """Conversations and memories of every user, scoped per user in each call."""

    def __init__(self, store: SQLProfileStore, *, embedder: TextEmbedder | None = None,
                 episode_method: EpisodeMethod = DEFAULT_EPISODE_METHOD) -> None:
        self.store = store
        self.embedder = embedder
        # Episodic memory: the user's own turns, searched as ``tailor eval-memory`` measures them.
        self.episode_search = EpisodeSearch(episode_method, embedder if isinstance(embedder, Embedder) else None)

    # -- conversations ---------------------------------------------------------------------

    def add_exchange(self, user_id: str, completion_id: str, user_text: str, reply: str, *,
                     extract: bool = True) -> str:
        """Store the user's message and the reply; return the user message's id.

        With ``extract`` the message is marked pending for fact extraction (and stays so
        across restarts until a worker has read it). Raises :class:`UnknownUserError`.
        """
        message_id = f"msg_{uuid.uuid4().hex}"
        now = utc_now()
        rows = [(message_id, completion_id, "user", user_text, now, "pending" if extract else "none"),
                (f"msg_{uuid.uuid4().hex}", completion_id, "assistant", reply, now, "none")]
        self.store.add_messages(user_id, rows)
        return message_id

    def episodes(self, user_id: str) -> list[Episode]:
        """The user's kept messages (their own and the replies, ``speaker`` ``"user"`` or
        ``"assistant"``), oldest first: the newest :data:`MAX_SEARCHED` of them. A day's
        messages are one session, so a message's neighbours are those of the same day."""
        return [Episode(row[0], row[1], row[2], session=row[3][:10], date=row[3][:10])
                for row in self.store.recent_messages(user_id, MAX_SEARCHED)]

    def search_episodes(self, user_id: str, query: str, k: int, *, speaker: str | None = None) -> list[Episode]:
        """Up to ``k`` of the user's kept messages most relevant to ``query``, best first;
        with ``speaker`` (``"user"``, ``"assistant"``) only that side's. Both sides are
        searched either way: a reply is the context of the message it answers."""
        if k <= 0:
            return []
        episodes = self.episodes(user_id)
        if not episodes:
            return []
        by_id = {episode.id: episode for episode in episodes}
        depth = k if speaker is None else 4 * k
        found = [by_id[episode_id] for episode_id in
                 self.episode_search.search(self.episode_search.profile(user_id, episodes), query, depth)]
        return [episode for episode in found if speaker is None or episode.speaker == speaker][:k]

    def pending_messages(self) -> list[tuple[str, str]]:
        """``(user_id, message_id)`` of every message still waiting for extraction, oldest first."""
        return self.store.pending_messages()

    def message_text(self, user_id: str, message_id: str) -> str | None:
        return self.store.message_text(user_id, message_id)

    def claim_message(self, user_id: str, message_id: str, *, lease: float = CLAIM_SECONDS) -> str | None:
        """The text of a pending message, claimed for this caller's extraction for ``lease``
        seconds; ``None`` when it is gone, no longer pending, or claimed by another (a
        server process sharing the store). A claim left by a process that died runs out,
        and the message is extracted by the next worker that starts."""
        now = datetime.now(timezone.utc)
        until = now + timedelta(seconds=lease)
        return self.store.claim_message(user_id, message_id, now.isoformat(timespec="seconds"),
                                        until.isoformat(timespec="seconds"))

    def mark_extracted(self, user_id: str, message_id: str, status: str) -> None:
        self.store.mark_message(user_id, message_id, status)

    # -- memories ---------------------------------------------------------------------------

    def add_facts(self, user_id: str, facts: Sequence[Fact], *, source_message_id: str | None = None) -> list[Memory]:
        """Remember ``facts`` (dropping those already held, superseding by key); return the new
        memories. When ``source_message_id`` is given the message is marked extracted in
        the same transaction. Raises :class:`UnknownUserError`."""
        texts = [fact.text for fact in facts]
        terms = [" ".join(tokens) for tokens in tokenize(texts)]
        vectors = self.embedder.embed(texts) if self.embedder is not None and texts else None
        embedder = self.embedder.name if self.embedder is not None else None
        now = utc_now()
        rows = [NewMemory(fact.key, fact.operator, fact.value, fact.text, fact.normalized, terms[index],
                          fact.confidence, embedder,
                          None if vectors is None else np.asarray(vectors[index], dtype="<f4").tobytes())
                for index, fact in enumerate(facts)]
        ids = self.store.add_memories(user_id, rows, source_message_id=source_message_id, created_at=now)
        return [Memory(memory_id, fact.key, fact.operator, fact.value, fact.text, fact.confidence, source_message_id,
                       now) for memory_id, fact in zip(ids, facts) if memory_id is not None]

    def list_memories(self, user_id: str, *, include_superseded: bool = False) -> list[Memory]:
        """The user's memories, oldest first: the active ones, or all with their superseded versions."""
        return [Memory(*row) for row in self.store.memory_rows(user_id, include_superseded=include_superseded)]

    def history(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """Each of the user's memories' events, oldest first, by memory id."""
        events: dict[str, list[dict[str, Any]]] = {}
        for memory_id, event, related, source, at in self.store.memory_history(user_id):
            events.setdefault(memory_id, []).append(
                {"event": event, "related_memory_id": related, "source_message_id": source, "at": at})
        return events

    def delete(self, user_id: str, memory_id: str) -> list[str]:
        """Hard-delete the memory, the earlier versions it superseded, and their history;
        return the ids deleted (empty when the user holds no such memory)."""
        return self.store.delete_memory(user_id, memory_id)

    def search(self, user_id: str, query: str, k: int) -> list[Memory]:
        """Up to ``k`` of the user's active memories for ``query``: BM25 and, with an
        embedder, dense similarity, fused by reciprocal rank."""
        if k <= 0:
            return []
        rows = self.store.searchable_memories(user_id, MAX_SEARCHED)
        if not rows:
            return []
        memories = [Memory(*row[:10]) for row in rows]
        query_tokens = tokenize([query])[0]
        query_vector = vectors = None
        if self.embedder is not None:
            query_vector = self.embedder.embed([query])[0]
            vectors = self._vectors(self.embedder, rows, memories)
        ranked = hybrid_rank(query_tokens, [row[10].split() for row in rows], k=k,
                             query_vector=query_vector, vectors=vectors)
        return [memories[index] for index, _ in ranked]

    @staticmethod
    def _vectors(embedder: TextEmbedder, rows: Sequence[Any], memories: Sequence[Memory]) -> np.ndarray:
        matrix: list[np.ndarray | None] = [
            np.frombuffer(row[12], dtype="<f4") if row[11] == embedder.name and row[12] is not None else None
            for row in rows]
        missing = [index for index, vector in enumerate(matrix) if vector is None]
        if missing:  # written under another embedder: embed now, for this search only
            fresh = embedder.embed([memories[index].text for index in missing])
            for position, index in enumerate(missing):
                matrix[index] = fresh[position]
        return np.stack([vector for vector in matrix if vector is not None]).astype(np.float32, copy=False)

    # -- export ------------------------------------------------------------------------------

    def export(self, user_id: str) -> dict[str, Any]:
        """The user's memories (superseded ones included, each with its history) and conversations."""
        history = self.history(user_id)
        memories = [{**memory.to_dict(), "history": history.get(memory.id, [])}
                    for memory in self.list_memories(user_id, include_superseded=True)]
        messages = [{"id": row[0], "completion_id": row[1], "role": row[2], "content": row[3], "created_at": row[4]}
                    for row in self.store.conversation(user_id)]
        return {"memories": memories, "conversations": messages}


__all__ = ["Memory", "MemoryStore"]
