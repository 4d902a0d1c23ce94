"""Retrievers' rankings read from a store's per-user indexes instead of a loaded profile:
what a served request retrieves with, so that it never reads a user's whole profile and
still ranks exactly as ``tailor eval``'s retrievers do (``tests/server/test_same_prompt.py``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from tailor.retrieval.base import Retriever
from tailor.retrieval.fusion import fuse
from tailor.retrieval.record_index import RecordIndex
from tailor.retrieval.record_vectors import RecordVectors
from tailor.store.contract import ProfileStore, UnknownUserError
from tailor.types import HistoryRecord, Profile, RetrievalHit

STORED_RETRIEVALS = ("bm25", "dense", "hybrid", "recency")
"""The retrievals whose ranking a store's indexes hold."""
VECTOR_RETRIEVALS = ("dense", "hybrid")
"""The stored retrievals that read record vectors (:class:`RecordVectors`, an embedder)."""
_EVERY_RECORD = 1 << 30
_FIRSTS_KEPT = 16  # records kept per user for BM25's fill
_FIRSTS_USERS = 4096


class StoredRetriever:
    """A retriever's ranking read from the server's stored per-user indexes instead of a
    loaded profile: ``bm25`` (:class:`RecordIndex`, the same tokens and BM25; like
    :class:`~tailor.retrieval.bm25.BM25Retriever`, ``k`` is filled with records that share
    no term, in profile order), ``dense`` (:class:`RecordVectors`, cosine over the same
    embedder), ``hybrid`` (both fused by
    :func:`~tailor.retrieval.fusion.fuse` at the library retriever's ``depth``) and
    ``recency``. Any other retriever (``random``, ``recency+dense``, one from an entry
    point) is run on the user's profile, read from the store. Only ``profile.user_id`` is
    read: the profile handed in may be empty."""

    def __init__(self, name: str, store: ProfileStore, index: RecordIndex, *, vectors: RecordVectors | None = None,
                 library: Retriever | None = None, depth: int | None = None) -> None:
        if name in VECTOR_RETRIEVALS and vectors is None:
            raise ValueError(f"retrieval {name} needs record vectors (an embedder)")
        if name not in STORED_RETRIEVALS and library is None:
            raise ValueError(f"retrieval {name} has no stored index; pass the library retriever")
        self.name, self.store, self.index, self.vectors = name, store, index, vectors
        self.library, self.depth = library, depth
        self._firsts: OrderedDict[str, tuple[int, tuple[HistoryRecord, ...], bool]] = OrderedDict()
        self._lock = threading.Lock()

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        user_id = profile.user_id
        records: list[HistoryRecord] | None
        if self.name == "recency":
            records = self.index.recent(user_id, k)
        elif self.name in STORED_RETRIEVALS:
            ids = self._rank(user_id, query, k)
            records = None if ids is None else self.index.records(user_id, ids)
            if self.name == "bm25" and records is not None and len(records) < k:
                # BM25Retriever fills k with the records that share no term, in profile order;
                # fewer than k matched, so the first 2k - 1 records hold enough of them.
                chosen = {record.id for record in records}
                rest = [r for r in self._first_records(user_id, 2 * k - 1) if r.id not in chosen]
                records += rest[:k - len(records)]
        else:
            assert self.library is not None  # checked in __init__
            return self.library.retrieve(query, self.store.get_profile(user_id), k)
        if records is None:
            raise UnknownUserError(user_id)
        return [RetrievalHit(record=record, score=0.0, rank=rank) for rank, record in enumerate(records)]

    def _first_records(self, user_id: str, n: int) -> tuple[HistoryRecord, ...]:
        """The user's first ``n`` records in profile order, cached per profile version (a
        message that shares no word with a large profile would read it whole each time)."""
        version = self.store.profile_version(user_id)
        with self._lock:
            cached = self._firsts.get(user_id)
            if cached is not None and cached[0] == version and (len(cached[1]) >= n or cached[2]):
                self._firsts.move_to_end(user_id)
                return cached[1][:n]
        records = self.store.get_profile(user_id).records
        kept = records[:max(n, _FIRSTS_KEPT)]
        with self._lock:
            self._firsts[user_id] = (version, kept, len(kept) == len(records))
            self._firsts.move_to_end(user_id)
            while len(self._firsts) > _FIRSTS_USERS:
                self._firsts.popitem(last=False)
        return kept[:n]

    def _rank(self, user_id: str, query: str, k: int) -> list[str] | None:
        if self.name == "bm25":
            return self.index.rank(user_id, query, k)
        assert self.vectors is not None  # checked in __init__
        if self.name == "dense":
            return self.vectors.rank(user_id, query, k)
        reach = self.depth if self.depth is not None else _EVERY_RECORD
        # Dense first, as HybridRetriever fuses: equal fused scores go to the closer record.
        dense, sparse = self.vectors.rank(user_id, query, reach), self.index.rank(user_id, query, reach)
        if dense is None or sparse is None:
            return None
        return fuse([dense, sparse], k, depth=self.depth)


__all__ = ["STORED_RETRIEVALS", "VECTOR_RETRIEVALS", "StoredRetriever"]
