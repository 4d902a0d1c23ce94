"""A persistent BM25 index of each user's records, so a request never re-reads a profile.

Two tables in the profile store's file, both under its derived data rule::

    serve_record_terms(user_id, record_id, terms)        -- one row per record: its tokens
        -> records(user_id, record_id) ON DELETE CASCADE; a trigger drops the row when the
           record's fields change
    serve_record_index(user_id, profile_version, build_id, record_ids, vocabulary, arrays)
        -> users(user_id) ON DELETE CASCADE; the user's compiled postings

Writes through the server refresh the index in the same transaction as the records, so an
acknowledged batch is searchable at once. Records written by other means (``tailor
ingest``, the store's API) are noticed through the store's ``profile_version`` and
indexed on the user's next request: only their new records are tokenized, then the user's
postings are recompiled. Compiled indexes are cached in memory by ``build_id``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections import OrderedDict

from tailor.memory.lexical import LexicalIndex, compile_index, tokenize
from tailor.profiles.sqlite import SQLiteProfileStore
from tailor.types import HistoryRecord

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS serve_record_terms (
        user_id TEXT NOT NULL,
        record_id TEXT NOT NULL,
        terms TEXT NOT NULL,
        PRIMARY KEY (user_id, record_id),
        FOREIGN KEY (user_id, record_id) REFERENCES records(user_id, record_id) ON DELETE CASCADE
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS serve_record_index (
        user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        profile_version INTEGER NOT NULL,
        build_id TEXT NOT NULL,
        record_ids TEXT NOT NULL,
        vocabulary TEXT NOT NULL,
        arrays BLOB NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS serve_record_terms_stale AFTER UPDATE OF fields ON records
        WHEN old.fields IS NOT new.fields
    BEGIN
        DELETE FROM serve_record_terms WHERE user_id = old.user_id AND record_id = old.record_id;
    END""",
)

_STATE = ("SELECT u.profile_version, i.profile_version, i.build_id FROM users u "
          "LEFT JOIN serve_record_index i ON i.user_id = u.user_id WHERE u.user_id = ?")


class RecordIndex:
    """BM25 and recency over one user's records at a time, backed by the store's file."""

    def __init__(self, store: SQLiteProfileStore, *, cache_size: int = 256) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be non-negative, got {cache_size}")
        self.store = store
        self._cache: OrderedDict[str, tuple[str, LexicalIndex]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        with store.transaction() as connection:
            for statement in SCHEMA:
                connection.execute(statement)

    # -- writes -------------------------------------------------------------------------------

    def refresh(self, user_id: str, connection: sqlite3.Connection | None = None) -> bool:
        """Bring the user's index up to date with their records; return whether it changed.

        Pass the connection of an open :meth:`SQLiteProfileStore.transaction` to refresh
        within it (so records and index commit together). Unknown users are ignored.
        """
        if connection is not None:
            return self._refresh(connection, user_id) is not None
        with self.store.transaction() as own:
            return self._refresh(own, user_id) is not None

    def _refresh(self, connection: sqlite3.Connection, user_id: str) -> str | None:
        """The new build id, or ``None`` when the user is unknown or the index was fresh."""
        row = connection.execute(_STATE, (user_id,)).fetchone()
        if row is None or row[0] == row[1]:
            return None
        version = row[0]
        missing = connection.execute(
            "SELECT r.record_id, r.fields FROM records r LEFT JOIN serve_record_terms t "
            "ON t.user_id = r.user_id AND t.record_id = r.record_id WHERE r.user_id = ? AND t.record_id IS NULL",
            (user_id,)).fetchall()
        if missing:
            # What CHAT_TASK.document(record) reads: every non-empty field, in order.
            texts = [" ".join(value for value in json.loads(fields).values() if value) for _, fields in missing]
            connection.executemany(
                "INSERT OR REPLACE INTO serve_record_terms (user_id, record_id, terms) VALUES (?, ?, ?)",
                [(user_id, record_id, " ".join(tokens)) for (record_id, _), tokens in zip(missing, tokenize(texts))])
        rows = connection.execute(
            "SELECT r.record_id, t.terms FROM records r JOIN serve_record_terms t "
            "ON t.user_id = r.user_id AND t.record_id = r.record_id WHERE r.user_id = ? ORDER BY r.position",
            (user_id,)).fetchall()
        index = compile_index([row[0] for row in rows], [row[1].split() for row in rows])
        build_id = uuid.uuid4().hex
        connection.execute(
            "INSERT OR REPLACE INTO serve_record_index VALUES (?, ?, ?, ?, ?, ?)",
            (user_id, version, build_id, json.dumps(index.ids, ensure_ascii=False),
             json.dumps(index.vocabulary, ensure_ascii=False), index.arrays_bytes()))
        return build_id

    def forget(self, user_id: str) -> None:
        """Drop the user's cached index (the tables go with the user by cascade)."""
        with self._lock:
            self._cache.pop(user_id, None)

    # -- reads ----------------------------------------------------------------------------------

    def search(self, user_id: str, query: str, k: int) -> list[HistoryRecord] | None:
        """Up to ``k`` of the user's records that share words with ``query``, best first;
        ``None`` when the store does not hold the user."""
        ids = self.rank(user_id, query, k)
        return None if ids is None else self.records(user_id, ids)

    def rank(self, user_id: str, query: str, k: int) -> list[str] | None:
        """The ids of up to ``k`` of the user's records that share words with ``query``,
        best first; ``None`` when the store does not hold the user."""
        tokens = tokenize([query])[0] if k > 0 else []
        with self.store.transaction() as connection:
            row = connection.execute(_STATE, (user_id,)).fetchone()
            if row is None:
                return None
            build_id = row[2] if row[0] == row[1] else self._refresh(connection, user_id)
            if not tokens:
                return []
            index = self._cached(user_id, build_id)
            if index is None:
                stored = connection.execute(
                    "SELECT build_id, record_ids, vocabulary, arrays FROM serve_record_index WHERE user_id = ?",
                    (user_id,)).fetchone()
                build_id = stored[0]
                index = LexicalIndex.from_parts(json.loads(stored[1]), json.loads(stored[2]), stored[3])
                self._remember(user_id, build_id, index)
            return [index.ids[position] for position, _ in index.top(tokens, k)]

    def records(self, user_id: str, ids: list[str]) -> list[HistoryRecord]:
        """The user's records of these ids, in this order (ids no longer held are left out)."""
        if not ids:
            return []
        with self.store.transaction() as connection:
            return self._records(connection, user_id, ids)

    def recent(self, user_id: str, k: int) -> list[HistoryRecord] | None:
        """The user's ``k`` most recent records (latest date first, undated last, later
        additions first among equals), as :class:`~tailor.retrieval.simple.RecencyRetriever`
        orders them; ``None`` when the store does not hold the user."""
        with self.store.transaction() as connection:
            if connection.execute("SELECT 1 FROM users WHERE user_id = ?", (user_id,)).fetchone() is None:
                return None
            rows = connection.execute(
                "SELECT record_id, fields, date FROM records WHERE user_id = ? "
                "ORDER BY date IS NOT NULL DESC, date DESC, position DESC LIMIT ?", (user_id, max(k, 0))).fetchall()
        return [HistoryRecord(record_id, json.loads(fields), date) for record_id, fields, date in rows]

    @staticmethod
    def _records(connection: sqlite3.Connection, user_id: str, ids: list[str]) -> list[HistoryRecord]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = {row[0]: row for row in connection.execute(
            f"SELECT record_id, fields, date FROM records WHERE user_id = ? AND record_id IN ({marks})",
            (user_id, *ids))}
        return [HistoryRecord(i, json.loads(rows[i][1]), rows[i][2]) for i in ids if i in rows]

    def _cached(self, user_id: str, build_id: str | None) -> LexicalIndex | None:
        with self._lock:
            entry = self._cache.get(user_id)
            if entry is None or entry[0] != build_id:
                return None
            self._cache.move_to_end(user_id)
            return entry[1]

    def _remember(self, user_id: str, build_id: str, index: LexicalIndex) -> None:
        if self._cache_size == 0:
            return
        with self._lock:
            self._cache[user_id] = (build_id, index)
            self._cache.move_to_end(user_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)


__all__ = ["SCHEMA", "RecordIndex"]
