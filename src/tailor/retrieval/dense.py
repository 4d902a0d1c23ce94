"""Dense retrieval: cosine similarity between the query and one user's record embeddings.

``dense`` ranks the whole profile; ``recency+dense`` ranks only the most recent records.
Record vectors come from the profile store when one is given (those missing are computed
and stored, so each record is embedded once, ever), or are computed from the profile
handed in. Either way they are kept in a small LRU cache per profile, so repeated queries
against the same profile cost one query embedding and one matrix-vector product.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from tailor.embeddings.embedder import Embedder
from tailor.retrieval.retriever import DocumentFn, check_k, rank_array, record_text, same_records, top_k
from tailor.retrieval.simple import recency_order
from tailor.store.contract import ProfileStore, UnknownUserError
from tailor.types import HistoryRecord, Profile, RetrievalHit

if TYPE_CHECKING:
    from tailor.retrieval.stored import StoredIndexes

logger = logging.getLogger(__name__)


def similarity_order(matrix: np.ndarray, query_vector: np.ndarray, k: int | None = None) -> np.ndarray:
    """Row indices of ``matrix`` (unit vectors) by cosine similarity to ``query_vector``,
    best first, ties to the earlier row: the one dense ranking (records, memories, stored
    vectors). ``k``: how many (``None``: all)."""
    if not len(matrix):
        return np.zeros(0, dtype=np.intp)
    similarities = np.asarray(matrix, dtype=np.float32) @ np.asarray(query_vector, dtype=np.float32)
    return top_k(similarities, len(similarities) if k is None else k)


class DenseRetriever:
    """Cosine top-``k`` within the user's own records, with vectors from ``embedder``.

    With a ``store``, vectors are read from it under ``embedder.name`` and the missing ones
    are computed and written back; the profile handed to :meth:`retrieve` should then be
    the store's (a vector is trusted to belong to the stored text of its record id).
    ``document`` chooses the text embedded for a record and must match the one used at
    ingestion (:func:`tailor.embeddings.embed_profiles`). Ties go to the earlier record.

    With ``indexes`` (``tailor serve``) the user's unit vectors are read from the store
    (:class:`~tailor.retrieval.record_vectors.RecordVectors`, the same embedder and ranking)
    and only ``profile.user_id`` is read from the profile.
    """

    name = "dense"

    def __init__(self, embedder: Embedder, store: ProfileStore | None = None, *,
                 document: DocumentFn = record_text, cache_size: int = 64, cache_bytes: int = 256 << 20,
                 indexes: StoredIndexes | None = None) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        if indexes is not None:
            indexes.require_vectors(self.name)
        self.indexes = indexes
        self.embedder = embedder
        self.store = store
        self.document = document
        self._cache: OrderedDict[tuple[str, tuple[str, ...]], tuple[tuple[HistoryRecord, ...], np.ndarray]] = (
            OrderedDict())
        # Bounded in profiles and in bytes: 64 profiles of 10,000 MiniLM vectors would hold 1 GB.
        self._cache_size = cache_size
        self._cache_bytes = cache_bytes
        self._held_bytes = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.embedder!r}, store={self.store!r})"

    # -- record vectors ---------------------------------------------------------------------

    def matrix(self, profile: Profile) -> np.ndarray:
        """The unit vectors of ``profile``'s records, one row each, in profile order."""
        records = profile.records
        key = (profile.user_id, tuple(record.id for record in records))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and same_records(cached[0], records):
                self._cache.move_to_end(key)
                return cached[1]
        matrix = self._compute(profile)
        with self._lock:
            replaced = self._cache.pop(key, None)
            if replaced is not None:
                self._held_bytes -= replaced[1].nbytes
            self._cache[key] = (records, matrix)
            self._held_bytes += matrix.nbytes
            # The newest entry always stays, however large: the caller is about to use it.
            while len(self._cache) > 1 and (len(self._cache) > self._cache_size or
                                            self._held_bytes > self._cache_bytes):
                self._held_bytes -= self._cache.popitem(last=False)[1][1].nbytes
        return matrix

    def _compute(self, profile: Profile) -> np.ndarray:
        records, model, dim = profile.records, self.embedder.name, self.embedder.dim
        rows: list[np.ndarray | None] = [None] * len(records)
        store = self.store
        if store is not None:
            try:
                ids, stored = store.get_embeddings(profile.user_id, model)
            except UnknownUserError:
                store, ids, stored = None, [], np.zeros((0, 0), dtype=np.float32)
            if stored.shape[1:] == (dim,):
                position = {record_id: row for row, record_id in enumerate(ids)}
                for i, record in enumerate(records):
                    row = position.get(record.id)
                    if row is not None:
                        rows[i] = stored[row]
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            vectors = self.embedder.embed([self.document(records[i]) for i in missing])
            for i, vector in zip(missing, vectors):
                rows[i] = vector
            if store is not None:
                try:
                    store.put_embeddings(profile.user_id, model, {records[i].id: v for i, v in zip(missing, vectors)})
                except ValueError as error:  # a profile that is not the store's: use the vectors, keep none
                    logger.debug("not storing vectors for %s: %s", profile.user_id, error)
        if not rows:
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([row for row in rows if row is not None]).astype(np.float32, copy=False)

    # -- queries -------------------------------------------------------------------------------

    def embed_query(self, query: str) -> np.ndarray:
        vector: np.ndarray = self.embedder.embed([query])[0]
        return vector

    def scores(self, query: str, profile: Profile) -> np.ndarray:
        """Cosine similarity of every record in ``profile`` to ``query``."""
        if not profile.records:
            return np.zeros(0, dtype=np.float32)
        return self.matrix(profile) @ self.embed_query(query)

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        check_k(k)
        if self.indexes is not None:
            vectors = self.indexes.require_vectors(self.name)
            return self.indexes.hits(profile.user_id, vectors.rank(profile.user_id, query, k))
        if k == 0 or not profile.records:
            return []
        return rank_array(profile.records, self.scores(query, profile), k)

    def retrieve_by_vector(self, query_vector: np.ndarray, profile: Profile, k: int) -> list[RetrievalHit]:
        """:meth:`retrieve` for a query already embedded (by this retriever's embedder), so
        that a batch of queries can be embedded at once."""
        check_k(k)
        if k == 0 or not profile.records:
            return []
        vector = np.asarray(query_vector, dtype=np.float32)
        if vector.shape != (self.embedder.dim,):
            raise ValueError(f"query_vector must have shape ({self.embedder.dim},), got {vector.shape}")
        return rank_array(profile.records, self.matrix(profile) @ vector, k)


class RecencyDenseRetriever:
    """The ``window`` most recent records (see :class:`~tailor.retrieval.simple.RecencyRetriever`),
    re-ranked by cosine similarity to the query.

    ``window=None`` takes ``max(4 * k, 20)`` records: enough to choose from, few enough
    that old items cannot crowd out recent ones. Scores are cosine similarities; ties go
    to the earlier record in the profile.
    """

    name = "recency+dense"

    def __init__(self, embedder: Embedder, store: ProfileStore | None = None, *, window: int | None = None,
                 document: DocumentFn = record_text, cache_size: int = 64) -> None:
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise ValueError(f"window must be a positive integer or None, got {window!r}")
        self.window = window
        self.dense = DenseRetriever(embedder, store, document=document, cache_size=cache_size)

    def window_for(self, k: int) -> int:
        return self.window if self.window is not None else max(4 * k, 20)

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        check_k(k)
        if k == 0 or not profile.records:
            return []
        # Back in profile order, so that equal similarities go to the earlier record.
        recent = sorted(recency_order(profile.records)[:self.window_for(k)])
        window = Profile(profile.user_id, tuple(profile.records[i] for i in recent), profile.attributes)
        return rank_array(window.records, self.dense.scores(query, window), k)
