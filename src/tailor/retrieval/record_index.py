"""A persistent BM25 index of each user's records, so a served request never re-reads a
profile (the ``bm25`` and ``recency`` rankings of :class:`~tailor.retrieval.stored.StoredIndexes`).

Two tables of the profile store (SQLite or PostgreSQL; declared with its schema, under its
derived data rule), read and written through store methods::

    serve_record_terms(user_id, record_id, terms)        -- one row per record: its tokens
        -> records(user_id, record_id) ON DELETE CASCADE; a trigger drops the row when the
           record's fields change
    serve_record_index(user_id, profile_version, build_id, record_ids, vocabulary, arrays)
        -> users(user_id) ON DELETE CASCADE; the user's compiled postings

Writes through the server refresh the index in the same transaction as the records, so an
acknowledged batch is searchable at once. Records written by other means (the store's
Python API, such as ``add_records``, or another server process) are noticed through the store's
``profile_version`` and indexed on the user's next request: only their new records are
tokenized, then the user's postings are recompiled. Compiled indexes are cached in memory
by ``build_id``, which every request reads from the store, so a process never serves an
index older than what another process wrote.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict

from tailor.retrieval.bm25 import BM25Index, tokenize
from tailor.store import SQLProfileStore
from tailor.types import HistoryRecord


class RecordIndex:
    """BM25 and recency over one user's records at a time, backed by the store's file."""

    def __init__(self, store: SQLProfileStore, *, cache_size: int = 256) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be non-negative, got {cache_size}")
        self.store = store
        self._cache: OrderedDict[str, tuple[str, BM25Index]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # -- writes -------------------------------------------------------------------------------

    def refresh(self, user_id: str) -> bool:
        """Bring the user's index up to date with their records; return whether it changed.

        Inside an open :meth:`~tailor.store.SQLProfileStore.transaction` it joins it (so
        records and index commit together). Unknown users are ignored.
        """
        with self.store.transaction():
            return self._refresh(user_id) is not None

    def _refresh(self, user_id: str) -> str | None:
        """The new build id, or ``None`` when the user is unknown or the index was fresh
        (call inside a store transaction)."""
        state = self.store.record_index_state(user_id)
        if state is None or state[0] == state[1]:
            return None
        missing = self.store.records_without_terms(user_id)
        if missing:
            # What CHAT_TASK.document(record) reads: every non-empty field, in order.
            texts = [" ".join(value for value in record.fields.values() if value) for record in missing]
            self.store.put_record_terms(user_id, {record.id: " ".join(tokens)
                                                  for record, tokens in zip(missing, tokenize(texts))})
        rows = self.store.record_terms(user_id)
        index = BM25Index.build([row[0] for row in rows], [row[1].split() for row in rows])
        build_id = uuid.uuid4().hex
        self.store.put_record_index(user_id, state[0], build_id, index.ids, index.vocabulary, index.arrays_bytes())
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
        state = self.store.record_index_state(user_id)  # a read: no write lock on the hot path
        if state is None:
            return None
        build_id = state[2]
        if state[0] != state[1]:
            with self.store.transaction():
                state = self.store.record_index_state(user_id)  # again, under the write lock
                if state is None:
                    return None
                build_id = self._refresh(user_id) or state[2]
        if not tokens:
            return []
        index = self._cached(user_id, build_id)
        if index is None:
            stored = self.store.get_record_index(user_id)
            if stored is None:
                return None  # deleted meanwhile
            build_id, ids, vocabulary, arrays = stored
            index = BM25Index.from_parts(ids, vocabulary, arrays)
            self._remember(user_id, build_id, index)
        return [index.ids[position] for position, _ in index.top(tokens, k)]

    def records(self, user_id: str, ids: list[str]) -> list[HistoryRecord]:
        """The user's records of these ids, in this order (ids no longer held are left out)."""
        return self.store.records_by_id(user_id, ids)

    def recent(self, user_id: str, k: int) -> list[HistoryRecord] | None:
        """The user's ``k`` most recent records (latest date first, undated last, later
        additions first among equals), as :class:`~tailor.retrieval.simple.RecencyRetriever`
        orders them; ``None`` when the store does not hold the user."""
        return self.store.recent_records(user_id, k)

    def _cached(self, user_id: str, build_id: str | None) -> BM25Index | None:
        with self._lock:
            entry = self._cache.get(user_id)
            if entry is None or entry[0] != build_id:
                return None
            self._cache.move_to_end(user_id)
            return entry[1]

    def _remember(self, user_id: str, build_id: str, index: BM25Index) -> None:
        if self._cache_size == 0:
            return
        with self._lock:
            self._cache[user_id] = (build_id, index)
            self._cache.move_to_end(user_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)


__all__ = ["RecordIndex"]
