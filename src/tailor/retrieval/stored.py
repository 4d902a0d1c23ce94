"""Where a served request's rankings come from: a store's per-user indexes instead of a
loaded profile, so that a request never reads a user's whole profile.

A retriever that can rank from them takes ``indexes`` (a :class:`StoredIndexes`) in its
constructor and, when given one, ranks the user named by ``profile.user_id`` through it
(``bm25``: :class:`~tailor.retrieval.record_index.RecordIndex`, the same tokens and BM25;
``dense``: :class:`~tailor.retrieval.record_vectors.RecordVectors`, cosine over the same
embedder; ``hybrid``: both, fused as the library fuses; ``recency``: the store's order), with
the same ranking as over the loaded profile (``tests/server/test_same_prompt.py`` checks
it). Any other retriever is wrapped in :class:`ProfileReadingRetriever`, which reads the
user's profile from the store for it. Which is which is the retriever's constructor, not a
list kept here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from tailor.retrieval.record_index import RecordIndex
from tailor.retrieval.record_vectors import RecordVectors
from tailor.retrieval.retriever import Retriever, as_hits
from tailor.store import SQLProfileStore
from tailor.store.contract import UnknownUserError
from tailor.types import HistoryRecord, Profile, RetrievalHit

_FIRSTS_KEPT = 16  # records kept per user for BM25's fill
_FIRSTS_USERS = 4096


@dataclass
class StoredIndexes:
    """A served store's per-user indexes: BM25 terms and recency (``index``) and, with an
    embedder, unit vectors (``vectors``)."""

    store: SQLProfileStore
    index: RecordIndex
    vectors: RecordVectors | None = None
    _firsts: OrderedDict[str, tuple[int, tuple[HistoryRecord, ...], bool]] = field(
        default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def require_vectors(self, retriever: str) -> RecordVectors:
        if self.vectors is None:
            raise ValueError(f"retrieval {retriever} needs record vectors (an embedder)")
        return self.vectors

    def hits(self, user_id: str, ids: Sequence[str] | None) -> list[RetrievalHit]:
        """The user's records of ``ids``, in this order, as hits; an unknown user
        (``ids`` is ``None``) is an :class:`~tailor.store.contract.UnknownUserError`."""
        if ids is None:
            raise UnknownUserError(user_id)
        return as_hits(self.index.records(user_id, list(ids)))

    def first_records(self, user_id: str, n: int) -> tuple[HistoryRecord, ...]:
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

    def forget(self, user_id: str) -> None:
        """Drop what is cached of the user (their rows go with them by cascade)."""
        with self._lock:
            self._firsts.pop(user_id, None)
        self.index.forget(user_id)
        if self.vectors is not None:
            self.vectors.forget(user_id)


class ProfileReadingRetriever:
    """``retriever`` handed the user's whole profile, read from ``store`` (for a retriever
    that has no stored ranking: only ``profile.user_id`` of the profile given is read)."""

    def __init__(self, retriever: Retriever, store: SQLProfileStore) -> None:
        self.name, self.retriever, self.store = retriever.name, retriever, store

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        return self.retriever.retrieve(query, self.store.get_profile(profile.user_id), k)


__all__ = ["ProfileReadingRetriever", "StoredIndexes"]
