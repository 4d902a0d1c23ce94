"""Dense search over one user's records kept in the store, for the stored ``dense`` and
``hybrid`` rankings (:class:`~tailor.retrieval.stored.StoredIndexes`).

Record vectors live in the profile store (``record_embeddings``, under the embedder's
name), so they are computed once per record, go with the user when the user is deleted
(cascade), and are shared with ``tailor eval``'s dense retriever when the embedder is the
same. Records written through the server are embedded before their batch commits and
stored in the same transaction; records written by other means (the store's Python API,
such as ``add_records`` or :func:`tailor.store.ingest_examples`) are embedded on the user's
next request.

Each user's unit-length matrix is compiled into one row of ``serve_record_matrix`` (under
the derived data rule: it cascades with the user) and cached in memory, both keyed by the
store's ``profile_version``, which every request reads from the store (so a process never
serves a matrix older than another process's writes): a request costs one query embedding
and one matrix-vector product, plus one blob read when the user is not in the memory cache
(reading the vectors row by row costs about five times as much at 1,000 records). All of
it goes through store methods, on SQLite or PostgreSQL alike.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from tailor.embeddings.embedder import Embedder
from tailor.retrieval.dense import similarity_order
from tailor.store import SQLProfileStore
from tailor.store.contract import UnknownUserError
from tailor.tasks.chat import CHAT_TASK
from tailor.types import HistoryRecord


class RecordVectors:
    """Cosine top-``k`` within one user's records, with vectors kept in the store."""

    def __init__(self, store: SQLProfileStore, embedder: Embedder, *, cache_size: int = 256) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be non-negative, got {cache_size}")
        self.store = store
        self.embedder = embedder
        self.model = embedder.name
        self._cache: OrderedDict[str, tuple[int, list[str], np.ndarray]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def vectors_for(self, records: Sequence[HistoryRecord]) -> dict[str, np.ndarray]:
        """Unit vectors of ``records`` by id, computed outside any transaction (the caller
        stores them with :meth:`store` inside its own)."""
        if not records:
            return {}
        matrix = self.embedder.embed([CHAT_TASK.document(record) for record in records])
        return {record.id: row for record, row in zip(records, matrix)}

    def store_vectors(self, user_id: str, vectors: dict[str, np.ndarray]) -> None:
        """Keep ``vectors`` for the user's records (joins an open store transaction)."""
        if vectors:
            self.store.put_embeddings(user_id, self.model, vectors)

    def rank(self, user_id: str, query: str, k: int) -> list[str] | None:
        """The ids of the user's ``k`` records closest to ``query``, best first (ties go to
        the earlier record); ``None`` when the store does not hold the user."""
        try:
            version = self.store.profile_version(user_id)  # a read: no write lock on the hot path
        except UnknownUserError:
            return None
        if k <= 0:
            return []
        entry = self._cached(user_id, version)
        if entry is None:
            entry = self._load(user_id)
            if entry is None:
                return None
        ids, matrix = entry
        if not ids:
            return []
        return [ids[int(i)] for i in similarity_order(matrix, self.embedder.embed([query])[0], k)]

    def forget(self, user_id: str) -> None:
        with self._lock:
            self._cache.pop(user_id, None)

    def _version(self, user_id: str) -> int | None:
        try:
            return self.store.profile_version(user_id)
        except UnknownUserError:
            return None

    def _load(self, user_id: str) -> tuple[list[str], np.ndarray] | None:
        with self.store.transaction():
            version = self._version(user_id)
            if version is None:
                return None
            compiled = self.store.get_record_matrix(user_id, self.model)
            if compiled is not None and compiled[0] == version:
                _, ids, dim, blob = compiled
                matrix = np.frombuffer(blob, dtype="<f4").reshape(len(ids), dim)
                self._remember(user_id, version, ids, matrix)
                return ids, matrix
            missing = self.store.records_without_embeddings(user_id, self.model)
        if missing:
            # Embedded outside the transaction (a model call must not hold the store's write
            # lock), stored inside one; a record deleted meanwhile is skipped.
            vectors = self.vectors_for(missing)
            with self.store.transaction():
                if self._version(user_id) is None:
                    return None
                held = set(self.store.record_ids(user_id))
                self.store_vectors(user_id, {i: v for i, v in vectors.items() if i in held})
        with self.store.transaction():
            version = self._version(user_id)
            if version is None:
                return None
            ids, matrix = self.store.get_embeddings(user_id, self.model)
            if len(ids):
                norms = np.linalg.norm(matrix, axis=1, keepdims=True)
                matrix = (matrix / np.where(norms > 0, norms, 1.0)).astype("<f4")
            self.store.put_record_matrix(user_id, self.model, version, ids,
                                         int(matrix.shape[1]) if len(ids) else 0, matrix.tobytes())
        self._remember(user_id, version, ids, matrix)
        return ids, matrix

    def _cached(self, user_id: str, version: int) -> tuple[list[str], np.ndarray] | None:
        with self._lock:
            entry = self._cache.get(user_id)
            if entry is None or entry[0] != version:
                return None
            self._cache.move_to_end(user_id)
            return entry[1], entry[2]

    def _remember(self, user_id: str, version: int, ids: list[str], matrix: np.ndarray) -> None:
        if self._cache_size == 0:
            return
        with self._lock:
            self._cache[user_id] = (version, ids, matrix)
            self._cache.move_to_end(user_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)


__all__ = ["RecordVectors"]
