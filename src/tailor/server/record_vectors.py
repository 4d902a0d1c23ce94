"""Dense search over one user's records, for the ``dense`` and ``hybrid`` serving methods.

Record vectors live in the profile store (``record_embeddings``, under the embedder's
name), so they are computed once per record, go with the user when the user is deleted
(cascade), and are shared with ``tailor eval``'s dense retriever when the embedder is the
same. Records written through the server are embedded before their batch commits and
stored in the same transaction; records written by other means (the store's API,
``tailor ingest``) are embedded on the user's next request.

Each user's unit-length matrix is compiled into one row of ``serve_record_matrix`` (under
the derived data rule: it cascades with the user) and cached in memory, both keyed by the
store's ``profile_version``: a request costs one query embedding and one matrix-vector
product, plus one blob read when the user is not in the memory cache (reading the
vectors row by row costs about five times as much at 1,000 records).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from tailor.embeddings.base import Embedder
from tailor.memory.search import reciprocal_rank_fusion
from tailor.profiles.base import UnknownUserError
from tailor.profiles.sqlite import SQLiteProfileStore
from tailor.tasks.chat import CHAT_TASK
from tailor.types import HistoryRecord

SCHEMA = """CREATE TABLE IF NOT EXISTS serve_record_matrix (
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    profile_version INTEGER NOT NULL,
    record_ids TEXT NOT NULL,
    dim INTEGER NOT NULL,
    matrix BLOB NOT NULL,
    PRIMARY KEY (user_id, model)
)"""
_VERSION = "SELECT profile_version FROM users WHERE user_id = ?"
_MISSING = ("SELECT r.record_id, r.fields, r.date FROM records r LEFT JOIN record_embeddings e "
            "ON e.user_id = r.user_id AND e.record_id = r.record_id AND e.model = ? "
            "WHERE r.user_id = ? AND e.record_id IS NULL ORDER BY r.position")


class RecordVectors:
    """Cosine top-``k`` within one user's records, with vectors kept in the store."""

    def __init__(self, store: SQLiteProfileStore, embedder: Embedder, *, cache_size: int = 256) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be non-negative, got {cache_size}")
        self.store = store
        self.embedder = embedder
        self.model = embedder.name
        self._cache: OrderedDict[str, tuple[int, list[str], np.ndarray]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        with store.transaction() as connection:
            connection.execute(SCHEMA)

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
        query_vector = self.embedder.embed([query])[0]
        similarities = matrix @ np.asarray(query_vector, dtype=np.float32)
        order = np.argsort(-similarities, kind="stable")[:k]
        return [ids[int(i)] for i in order]

    def forget(self, user_id: str) -> None:
        with self._lock:
            self._cache.pop(user_id, None)

    def _load(self, user_id: str) -> tuple[list[str], np.ndarray] | None:
        with self.store.transaction() as connection:
            row = connection.execute(_VERSION, (user_id,)).fetchone()
            if row is None:
                return None
            version = int(row[0])
            compiled = connection.execute(
                "SELECT profile_version, record_ids, dim, matrix FROM serve_record_matrix WHERE user_id = ? "
                "AND model = ?", (user_id, self.model)).fetchone()
            if compiled is not None and compiled[0] == version:
                ids = json.loads(compiled[1])
                matrix = np.frombuffer(compiled[3], dtype="<f4").reshape(len(ids), compiled[2])
                self._remember(user_id, version, ids, matrix)
                return ids, matrix
            missing = [HistoryRecord(record_id, json.loads(fields), date) for record_id, fields, date
                       in connection.execute(_MISSING, (self.model, user_id)).fetchall()]
        if missing:
            # Embedded outside the transaction (a model call must not hold the store's write
            # lock), stored inside one; a record deleted meanwhile is skipped.
            vectors = self.vectors_for(missing)
            with self.store.transaction() as connection:
                if connection.execute(_VERSION, (user_id,)).fetchone() is None:
                    return None
                held = {r[0] for r in connection.execute("SELECT record_id FROM records WHERE user_id = ?",
                                                         (user_id,))}
                self.store_vectors(user_id, {i: v for i, v in vectors.items() if i in held})
        with self.store.transaction() as connection:
            row = connection.execute(_VERSION, (user_id,)).fetchone()
            if row is None:
                return None
            version = int(row[0])
            ids, matrix = self.store.get_embeddings(user_id, self.model)
            if len(ids):
                norms = np.linalg.norm(matrix, axis=1, keepdims=True)
                matrix = (matrix / np.where(norms > 0, norms, 1.0)).astype("<f4")
            connection.execute(
                "INSERT OR REPLACE INTO serve_record_matrix VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, self.model, version, json.dumps(ids, ensure_ascii=False),
                 int(matrix.shape[1]) if len(ids) else 0, matrix.tobytes()))
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


def fuse_rankings(rankings: Sequence[Sequence[str] | None], k: int) -> list[str] | None:
    """Reciprocal-rank fusion of id rankings (each best first) into the top ``k`` ids;
    ``None`` when any ranking is ``None`` (the user is unknown)."""
    if any(ranking is None for ranking in rankings):
        return None
    positions: dict[str, int] = {}
    numbered = []
    for ranking in rankings:
        numbered.append([positions.setdefault(i, len(positions)) for i in ranking or ()])
    ids = list(positions)
    return [ids[item] for item, _ in reciprocal_rank_fusion(numbered)[:k]]


__all__ = ["SCHEMA", "RecordVectors", "fuse_rankings"]
