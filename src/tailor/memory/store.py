"""Per-user conversations and memories, kept in the profile store's SQLite file.

Tables (each under the store's derived data rule: they reference ``users(user_id) ON
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

import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tailor.embeddings.base import Embedder
from tailor.memory.episodes import DEFAULT_EPISODE_METHOD, Episode, EpisodeMethod, EpisodeSearch
from tailor.memory.facts import Fact
from tailor.memory.lexical import tokenize
from tailor.memory.search import TextEmbedder, hybrid_rank
from tailor.profiles._derived import utc_now
from tailor.profiles.base import UnknownUserError
from tailor.profiles.sqlite import SQLiteProfileStore

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS conversation_messages (
        message_id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        completion_id TEXT NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        created_at TEXT NOT NULL,
        extraction TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS conversation_messages_by_user ON conversation_messages (user_id)",
    ("CREATE INDEX IF NOT EXISTS conversation_messages_pending ON conversation_messages (extraction) "
     "WHERE extraction = 'pending'"),
    """CREATE TABLE IF NOT EXISTS memories (
        memory_id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        key TEXT,
        operator TEXT NOT NULL,
        value TEXT NOT NULL,
        text TEXT NOT NULL,
        normalized TEXT NOT NULL,
        terms TEXT NOT NULL,
        confidence REAL NOT NULL,
        source_message_id TEXT,
        created_at TEXT NOT NULL,
        superseded_by TEXT,
        superseded_at TEXT,
        embedder TEXT,
        embedding BLOB
    )""",
    "CREATE INDEX IF NOT EXISTS memories_by_user ON memories (user_id, superseded_by)",
    """CREATE TABLE IF NOT EXISTS memory_history (
        event_id INTEGER PRIMARY KEY AUTOINCREMENT,
        memory_id TEXT NOT NULL REFERENCES memories(memory_id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        related_memory_id TEXT,
        source_message_id TEXT,
        at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS memory_history_by_memory ON memory_history (user_id, memory_id)",
    "CREATE INDEX IF NOT EXISTS memory_history_by_related ON memory_history (user_id, related_memory_id)",
)

_MEMORY_COLUMNS = ("memory_id, key, operator, value, text, confidence, source_message_id, created_at, "
                   "superseded_by, superseded_at")
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

    def __init__(self, store: SQLiteProfileStore, *, embedder: TextEmbedder | None = None,
                 episode_method: EpisodeMethod = DEFAULT_EPISODE_METHOD) -> None:
        self.store = store
        self.embedder = embedder
        # Episodic memory: the user's own turns, searched as ``tailor eval-memory`` measures them.
        self.episode_search = EpisodeSearch(episode_method, embedder if isinstance(embedder, Embedder) else None)
        with store.transaction() as connection:
            for statement in SCHEMA:
                connection.execute(statement)

    # -- conversations ---------------------------------------------------------------------

    def add_exchange(self, user_id: str, completion_id: str, user_text: str, reply: str, *,
                     extract: bool = True) -> str:
        """Store the user's message and the reply; return the user message's id.

        With ``extract`` the message is marked pending for fact extraction (and stays so
        across restarts until a worker has read it). Raises :class:`UnknownUserError`.
        """
        message_id = f"msg_{uuid.uuid4().hex}"
        now = utc_now()
        rows = [(message_id, user_id, completion_id, "user", user_text, now, "pending" if extract else "none"),
                (f"msg_{uuid.uuid4().hex}", user_id, completion_id, "assistant", reply, now, "none")]
        try:
            with self.store.transaction() as connection:
                connection.executemany("INSERT INTO conversation_messages VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError:  # the user is gone (deleted meanwhile)
            raise UnknownUserError(user_id) from None
        return message_id

    def episodes(self, user_id: str) -> list[Episode]:
        """The user's kept messages (their own and the replies, ``speaker`` ``"user"`` or
        ``"assistant"``), oldest first: the newest :data:`MAX_SEARCHED` of them. A day's
        messages are one session, so a message's neighbours are those of the same day."""
        with self.store.transaction() as connection:
            rows = connection.execute(
                "SELECT message_id, role, content, created_at FROM conversation_messages WHERE user_id = ? "
                "ORDER BY rowid DESC LIMIT ?", (user_id, MAX_SEARCHED)).fetchall()
        return [Episode(row[0], row[1], row[2], session=row[3][:10], date=row[3][:10]) for row in reversed(rows)]

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
        with self.store.transaction() as connection:
            return [(row[0], row[1]) for row in connection.execute(
                "SELECT user_id, message_id FROM conversation_messages WHERE extraction = 'pending' ORDER BY rowid")]

    def message_text(self, user_id: str, message_id: str) -> str | None:
        with self.store.transaction() as connection:
            row = connection.execute("SELECT content FROM conversation_messages WHERE user_id = ? AND message_id = ?",
                                     (user_id, message_id)).fetchone()
        return None if row is None else str(row[0])

    def mark_extracted(self, user_id: str, message_id: str, status: str) -> None:
        with self.store.transaction() as connection:
            connection.execute("UPDATE conversation_messages SET extraction = ? WHERE user_id = ? AND message_id = ?",
                               (status, user_id, message_id))

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
        added: list[Memory] = []
        with self.store.transaction() as connection:
            if connection.execute("SELECT 1 FROM users WHERE user_id = ?", (user_id,)).fetchone() is None:
                raise UnknownUserError(user_id)
            for index, fact in enumerate(facts):
                memory = self._add_one(connection, user_id, fact, terms[index],
                                       None if vectors is None else vectors[index], embedder, source_message_id, now)
                if memory is not None:
                    added.append(memory)
            if source_message_id is not None:
                connection.execute("UPDATE conversation_messages SET extraction = 'done' "
                                   "WHERE user_id = ? AND message_id = ?", (user_id, source_message_id))
        return added

    def _add_one(self, connection: sqlite3.Connection, user_id: str, fact: Fact, terms: str,
                 vector: np.ndarray | None, embedder: str | None, source: str | None, now: str) -> Memory | None:
        normalized = fact.normalized
        if fact.key is None:
            same = connection.execute("SELECT memory_id, normalized FROM memories WHERE user_id = ? AND key IS NULL "
                                      "AND superseded_by IS NULL AND normalized = ?", (user_id, normalized)).fetchall()
        else:
            same = connection.execute("SELECT memory_id, normalized FROM memories WHERE user_id = ? AND key = ? "
                                      "AND superseded_by IS NULL", (user_id, fact.key)).fetchall()
        if any(row[1] == normalized for row in same):
            return None  # already held
        memory_id = f"mem_{uuid.uuid4().hex}"
        blob = None if vector is None else np.asarray(vector, dtype="<f4").tobytes()
        connection.execute(
            "INSERT INTO memories VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
            (memory_id, user_id, fact.key, fact.operator, fact.value, fact.text, normalized, terms, fact.confidence,
             source, now, embedder, blob))
        self._event(connection, memory_id, user_id, "ADD", None, source, now)
        if fact.operator == "=":
            for old_id, _ in same:
                connection.execute("UPDATE memories SET superseded_by = ?, superseded_at = ? "
                                   "WHERE user_id = ? AND memory_id = ?", (memory_id, now, user_id, old_id))
                self._event(connection, old_id, user_id, "SUPERSEDED", memory_id, source, now)
                self._event(connection, memory_id, user_id, "SUPERSEDES", old_id, source, now)
        return Memory(memory_id, fact.key, fact.operator, fact.value, fact.text, fact.confidence, source, now)

    @staticmethod
    def _event(connection: sqlite3.Connection, memory_id: str, user_id: str, event: str, related: str | None,
               source: str | None, now: str) -> None:
        connection.execute("INSERT INTO memory_history (memory_id, user_id, event, related_memory_id, "
                           "source_message_id, at) VALUES (?, ?, ?, ?, ?, ?)",
                           (memory_id, user_id, event, related, source, now))

    def list_memories(self, user_id: str, *, include_superseded: bool = False) -> list[Memory]:
        """The user's memories, oldest first: the active ones, or all with their superseded versions."""
        where = "" if include_superseded else " AND superseded_by IS NULL"
        with self.store.transaction() as connection:
            rows = connection.execute(f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE user_id = ?{where} ORDER BY rowid",
                                      (user_id,)).fetchall()
        return [Memory(*row) for row in rows]

    def history(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """Each of the user's memories' events, oldest first, by memory id."""
        events: dict[str, list[dict[str, Any]]] = {}
        with self.store.transaction() as connection:
            for memory_id, event, related, source, at in connection.execute(
                    "SELECT memory_id, event, related_memory_id, source_message_id, at FROM memory_history "
                    "WHERE user_id = ? ORDER BY event_id", (user_id,)):
                events.setdefault(memory_id, []).append(
                    {"event": event, "related_memory_id": related, "source_message_id": source, "at": at})
        return events

    def delete(self, user_id: str, memory_id: str) -> list[str]:
        """Hard-delete the memory, the earlier versions it superseded, and their history;
        return the ids deleted (empty when the user holds no such memory)."""
        with self.store.transaction() as connection:
            if connection.execute("SELECT 1 FROM memories WHERE user_id = ? AND memory_id = ?",
                                  (user_id, memory_id)).fetchone() is None:
                return []
            chain = [memory_id]
            frontier = [memory_id]
            while frontier:
                marks = ",".join("?" * len(frontier))
                frontier = [row[0] for row in connection.execute(
                    f"SELECT memory_id FROM memories WHERE user_id = ? AND superseded_by IN ({marks})",
                    (user_id, *frontier))]
                chain.extend(frontier)
            for start in range(0, len(chain), 500):
                part = chain[start:start + 500]
                marks = ",".join("?" * len(part))
                connection.execute(f"DELETE FROM memory_history WHERE user_id = ? AND related_memory_id IN ({marks})",
                                   (user_id, *part))
                connection.execute(f"DELETE FROM memories WHERE user_id = ? AND memory_id IN ({marks})",
                                   (user_id, *part))
        return chain

    def search(self, user_id: str, query: str, k: int) -> list[Memory]:
        """Up to ``k`` of the user's active memories for ``query``: BM25 and, with an
        embedder, dense similarity, fused by reciprocal rank."""
        if k <= 0:
            return []
        with self.store.transaction() as connection:
            rows = connection.execute(
                f"SELECT {_MEMORY_COLUMNS}, terms, embedder, embedding FROM memories "
                "WHERE user_id = ? AND superseded_by IS NULL ORDER BY rowid DESC LIMIT ?",
                (user_id, MAX_SEARCHED)).fetchall()
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
        with self.store.transaction() as connection:
            messages = [{"id": row[0], "completion_id": row[1], "role": row[2], "content": row[3], "created_at": row[4]}
                        for row in connection.execute(
                            "SELECT message_id, completion_id, role, content, created_at FROM conversation_messages "
                            "WHERE user_id = ? ORDER BY rowid", (user_id,))]
        return {"memories": memories, "conversations": messages}


__all__ = ["SCHEMA", "Memory", "MemoryStore"]
