"""Conversations and memories kept in a SQL store: what :mod:`tailor.memory.store` reads and writes.

:class:`ConversationData` is a base of both SQL stores; its statements read the same in
SQLite and PostgreSQL. The store keeps rows and the rules that need one transaction (a
fact already held is not added again; a ``key = value`` fact supersedes the user's active
facts of that key; deleting a memory deletes the versions it superseded, and their
history); what a memory means, and how it is searched, is :mod:`tailor.memory`'s.

Every statement names the ``user_id``, so one user's memories are never read for another;
the tables (schema version 3) reference ``users`` with ``ON DELETE CASCADE``. Rows of a
user come back in the order they were written (``_row_order``: SQLite's ``rowid``,
PostgreSQL's ``seq`` identity column).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tailor.store.adapter_rows import AdapterData
from tailor.store.sql import ConnectionT

__all__ = ["MEMORY_COLUMNS", "ConnectionT", "ConversationData", "NewMemory"]

MEMORY_COLUMNS = ("memory_id, key, operator, value, text, confidence, source_message_id, created_at, "
                  "superseded_by, superseded_at")
"""The columns :meth:`ConversationData.memory_rows` returns, in this order."""


@dataclass(frozen=True)
class NewMemory:
    """A fact to remember, as stored: ``normalized`` decides whether it is held already,
    ``terms`` are its tokens for BM25, ``embedding`` its little-endian float32 vector under
    ``embedder`` (both ``None`` without an embedder)."""

    key: str | None
    operator: str
    value: str
    text: str
    normalized: str
    terms: str
    confidence: float
    embedder: str | None = None
    embedding: bytes | None = None


class ConversationData(AdapterData[ConnectionT]):
    """Conversation messages, memories and their history, per user."""

    # -- conversations ----------------------------------------------------------------------

    def add_messages(self, user_id: str, messages: Sequence[tuple[str, str, str, str, str, str]]) -> None:
        """Keep ``(message_id, completion_id, role, content, created_at, extraction)`` rows
        for the user, in this order. Raises :class:`UnknownUserError`, also when the user
        is deleted meanwhile."""
        with self.transaction() as connection:
            self._hold_user(connection, user_id)
            self._execute_many(connection, self._sql(
                "INSERT INTO conversation_messages (message_id, user_id, completion_id, role, content, created_at, "
                "extraction) VALUES (?, ?, ?, ?, ?, ?, ?)"),
                [(message_id, user_id, *rest) for message_id, *rest in messages])

    def recent_messages(self, user_id: str, limit: int) -> list[tuple[str, str, str, str]]:
        """``(message_id, role, content, created_at)`` of the user's newest ``limit``
        messages, oldest first."""
        with self._reading() as connection:
            rows = connection.execute(self._sql(
                "SELECT message_id, role, content, created_at FROM conversation_messages WHERE user_id = ? "
                f"ORDER BY {self._row_order} DESC LIMIT ?"), (user_id, max(int(limit), 0))).fetchall()
        return [(row[0], row[1], row[2], row[3]) for row in reversed(rows)]

    def messages_after(self, user_id: str, message_id: str, limit: int) -> list[tuple[str, str, str, str]] | None:
        """``(message_id, role, content, created_at)`` of the user's messages written after
        ``message_id``, oldest first, at most the newest ``limit`` of them; ``None`` when
        the user holds no such message (a search kept up to date by what is new starts over)."""
        with self._reading() as connection:
            found = connection.execute(self._sql(
                f"SELECT {self._row_order} FROM conversation_messages WHERE user_id = ? AND message_id = ?"),
                (user_id, message_id)).fetchone()
            if found is None:
                return None
            rows = connection.execute(self._sql(
                "SELECT message_id, role, content, created_at FROM conversation_messages "
                f"WHERE user_id = ? AND {self._row_order} > ? ORDER BY {self._row_order} DESC LIMIT ?"),
                (user_id, found[0], max(int(limit), 0))).fetchall()
        return [(row[0], row[1], row[2], row[3]) for row in reversed(rows)]

    def conversation(self, user_id: str) -> list[tuple[str, str, str, str, str]]:
        """``(message_id, completion_id, role, content, created_at)`` of all the user's messages, oldest first."""
        with self._reading() as connection:
            return [(row[0], row[1], row[2], row[3], row[4]) for row in connection.execute(self._sql(
                "SELECT message_id, completion_id, role, content, created_at FROM conversation_messages "
                f"WHERE user_id = ? ORDER BY {self._row_order}"), (user_id,))]

    def pending_messages(self) -> list[tuple[str, str]]:
        """``(user_id, message_id)`` of every message waiting for extraction, oldest first
        (cross-user: the extraction worker's queue after a restart)."""
        with self._reading() as connection:
            return [(row[0], row[1]) for row in connection.execute(
                "SELECT user_id, message_id FROM conversation_messages WHERE extraction = 'pending' "
                f"ORDER BY {self._row_order}")]

    def message_text(self, user_id: str, message_id: str) -> str | None:
        with self._reading() as connection:
            row = connection.execute(self._sql(
                "SELECT content FROM conversation_messages WHERE user_id = ? AND message_id = ?"),
                (user_id, message_id)).fetchone()
        return None if row is None else str(row[0])

    def claim_message(self, user_id: str, message_id: str, now: str, until: str) -> str | None:
        """Claim a pending message for extraction until ``until`` (ISO-8601 UTC, as ``now``);
        return its text, or ``None`` when it is not pending, is gone, or another claim on it
        has not run out by ``now``. Of several processes claiming one message, one gets it."""
        with self.transaction() as connection:
            claimed = connection.execute(self._sql(
                "UPDATE conversation_messages SET claimed_until = ? WHERE user_id = ? AND message_id = ? "
                "AND extraction = 'pending' AND (claimed_until IS NULL OR claimed_until <= ?)"),
                (until, user_id, message_id, now)).rowcount
            if claimed != 1:
                return None
            row = connection.execute(self._sql(
                "SELECT content FROM conversation_messages WHERE user_id = ? AND message_id = ?"),
                (user_id, message_id)).fetchone()
        return None if row is None else str(row[0])

    def mark_message(self, user_id: str, message_id: str, extraction: str) -> None:
        """Set the message's extraction status (``pending``, ``done``, ``failed``, ``none``)."""
        with self.transaction() as connection:
            connection.execute(self._sql(
                "UPDATE conversation_messages SET extraction = ? WHERE user_id = ? AND message_id = ?"),
                (extraction, user_id, message_id))

    # -- memories ---------------------------------------------------------------------------

    def add_memories(self, user_id: str, memories: Sequence[NewMemory], *, source_message_id: str | None,
                     created_at: str) -> list[str | None]:
        """Remember ``memories`` in one transaction; return each one's new id, ``None`` for
        one already held. A ``key = value`` memory supersedes the user's active memories of
        its key. The source message, if given, is marked ``done`` in the same transaction.
        Raises :class:`UnknownUserError`."""
        ids: list[str | None] = []
        with self.transaction() as connection:
            self._hold_user(connection, user_id)
            superseded = 0
            for memory in memories:
                memory_id, replaced = self._add_memory(connection, user_id, memory, source_message_id, created_at)
                ids.append(memory_id)
                superseded += replaced
            if any(memory_id is not None for memory_id in ids):
                self._memories_changed(connection, user_id, removed=superseded > 0)
            if source_message_id is not None:
                connection.execute(self._sql("UPDATE conversation_messages SET extraction = 'done' "
                                             "WHERE user_id = ? AND message_id = ?"), (user_id, source_message_id))
        return ids

    def _memories_changed(self, connection: ConnectionT, user_id: str, *, removed: bool) -> None:
        """Count a change to the user's memories (:meth:`memory_state`), and a removal if one
        went (superseded or deleted)."""
        connection.execute(self._sql(
            "UPDATE users SET memory_version = memory_version + 1, memory_removals = memory_removals + ? "
            "WHERE user_id = ?"), (1 if removed else 0, user_id))

    def _add_memory(self, connection: ConnectionT, user_id: str, memory: NewMemory, source: str | None,
                    now: str) -> tuple[str | None, int]:
        """The new memory's id (``None`` when already held) and how many it superseded."""
        if memory.key is None:
            same = connection.execute(self._sql(
                "SELECT memory_id, normalized FROM memories WHERE user_id = ? AND key IS NULL "
                "AND superseded_by IS NULL AND normalized = ?"), (user_id, memory.normalized)).fetchall()
        else:
            same = connection.execute(self._sql(
                "SELECT memory_id, normalized FROM memories WHERE user_id = ? AND key = ? AND superseded_by IS NULL"),
                (user_id, memory.key)).fetchall()
        if any(row[1] == memory.normalized for row in same):
            return None, 0  # already held
        memory_id = f"mem_{uuid.uuid4().hex}"
        connection.execute(self._sql(
            "INSERT INTO memories (memory_id, user_id, key, operator, value, text, normalized, terms, confidence, "
            "source_message_id, created_at, superseded_by, superseded_at, embedder, embedding) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)"),
            (memory_id, user_id, memory.key, memory.operator, memory.value, memory.text, memory.normalized,
             memory.terms, memory.confidence, source, now, memory.embedder, memory.embedding))
        self._memory_event(connection, memory_id, user_id, "ADD", None, source, now)
        if memory.operator == "=":
            for old_id, _ in same:
                connection.execute(self._sql("UPDATE memories SET superseded_by = ?, superseded_at = ? "
                                             "WHERE user_id = ? AND memory_id = ?"), (memory_id, now, user_id, old_id))
                self._memory_event(connection, old_id, user_id, "SUPERSEDED", memory_id, source, now)
                self._memory_event(connection, memory_id, user_id, "SUPERSEDES", old_id, source, now)
            return memory_id, len(same)
        return memory_id, 0

    def _memory_event(self, connection: ConnectionT, memory_id: str, user_id: str, event: str, related: str | None,
                      source: str | None, now: str) -> None:
        connection.execute(self._sql(
            "INSERT INTO memory_history (memory_id, user_id, event, related_memory_id, source_message_id, at) "
            "VALUES (?, ?, ?, ?, ?, ?)"), (memory_id, user_id, event, related, source, now))

    def memory_rows(self, user_id: str, *, include_superseded: bool = False) -> list[tuple[Any, ...]]:
        """The user's memories (:data:`MEMORY_COLUMNS`), oldest first: the active ones, or all."""
        where = "" if include_superseded else " AND superseded_by IS NULL"
        with self._reading() as connection:
            return [tuple(row) for row in connection.execute(self._sql(
                f"SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = ?{where} ORDER BY {self._row_order}"),
                (user_id,))]

    def searchable_memories(self, user_id: str, limit: int) -> list[tuple[Any, ...]]:
        """The user's newest ``limit`` active memories, newest first: :data:`MEMORY_COLUMNS`
        then ``terms``, ``embedder`` and ``embedding`` (bytes or ``None``)."""
        with self._reading() as connection:
            rows = connection.execute(self._sql(
                f"SELECT {MEMORY_COLUMNS}, terms, embedder, embedding FROM memories "
                f"WHERE user_id = ? AND superseded_by IS NULL ORDER BY {self._row_order} DESC LIMIT ?"),
                (user_id, max(int(limit), 0))).fetchall()
        return [(*row[:12], None if row[12] is None else bytes(row[12])) for row in rows]

    def memory_state(self, user_id: str) -> tuple[int, int]:
        """``(changes, removals)`` of the user's memories: the first grows whenever a memory
        is added, superseded or deleted, the second when one is superseded or deleted (so a
        reader that saw only the first grow knows that memories were only added). The second
        starts at a random number for each new user, so a user deleted and made again under
        the same id shows other removals than before, as if theirs had all been removed. One
        row read, however many memories the user has; ``(0, 0)`` for an unknown user."""
        with self._reading() as connection:
            row = connection.execute(self._sql(
                "SELECT memory_version, memory_removals FROM users WHERE user_id = ?"), (user_id,)).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def searchable_memories_after(self, user_id: str, after: int, limit: int) -> list[tuple[Any, ...]]:
        """:meth:`searchable_memories` written after place ``after`` in the order (newest
        first), each with its place appended."""
        with self._reading() as connection:
            rows = connection.execute(self._sql(
                f"SELECT {MEMORY_COLUMNS}, terms, embedder, embedding, {self._row_order} FROM memories "
                f"WHERE user_id = ? AND superseded_by IS NULL AND {self._row_order} > ? "
                f"ORDER BY {self._row_order} DESC LIMIT ?"), (user_id, int(after), max(int(limit), 0))).fetchall()
        return [(*row[:12], None if row[12] is None else bytes(row[12]), int(row[13])) for row in rows]

    def memory_history(self, user_id: str) -> list[tuple[str, str, str | None, str | None, str]]:
        """``(memory_id, event, related_memory_id, source_message_id, at)`` of the user's memories, oldest first."""
        with self._reading() as connection:
            return [(row[0], row[1], row[2], row[3], row[4]) for row in connection.execute(self._sql(
                "SELECT memory_id, event, related_memory_id, source_message_id, at FROM memory_history "
                "WHERE user_id = ? ORDER BY event_id"), (user_id,))]

    def delete_memory(self, user_id: str, memory_id: str) -> list[str]:
        """Delete the memory, the earlier versions it superseded, and their history; return
        the ids deleted (empty when the user holds no such memory)."""
        with self.transaction() as connection:
            if connection.execute(self._sql("SELECT 1 FROM memories WHERE user_id = ? AND memory_id = ?"),
                                  (user_id, memory_id)).fetchone() is None:
                return []
            chain = [memory_id]
            frontier = [memory_id]
            while frontier:
                marks = ",".join("?" * len(frontier))
                frontier = [row[0] for row in connection.execute(self._sql(
                    f"SELECT memory_id FROM memories WHERE user_id = ? AND superseded_by IN ({marks})"),
                    (user_id, *frontier))]
                chain.extend(frontier)
            for start in range(0, len(chain), 500):
                part = chain[start:start + 500]
                marks = ",".join("?" * len(part))
                connection.execute(self._sql(
                    f"DELETE FROM memory_history WHERE user_id = ? AND related_memory_id IN ({marks})"),
                    (user_id, *part))
                connection.execute(self._sql(f"DELETE FROM memories WHERE user_id = ? AND memory_id IN ({marks})"),
                                   (user_id, *part))
            self._memories_changed(connection, user_id, removed=True)
        return chain
