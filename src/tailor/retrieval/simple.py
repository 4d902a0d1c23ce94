"""The LaMP paper's non-semantic baselines: the most recent items, and random items."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tailor.retrieval.retriever import as_hits, check_k
from tailor.store.contract import UnknownUserError
from tailor.types import HistoryRecord, Profile, RetrievalHit

if TYPE_CHECKING:
    from tailor.retrieval.stored import StoredIndexes


def recency_order(records: Sequence[HistoryRecord]) -> list[int]:
    """Indices of ``records``, most recent first: latest ``date`` first, undated records
    last, and among equal dates the record added later first."""
    return sorted(range(len(records)), key=lambda i: (records[i].date is not None, records[i].date or "", i),
                  reverse=True)


class RecencyRetriever:
    """The ``k`` most recent records: latest ``date`` first; records without a date count
    as oldest; among equal dates, the record added later to the profile comes first. With
    ``indexes`` (``tailor serve``) the store orders the user's records the same way."""

    name = "recency"

    def __init__(self, *, indexes: StoredIndexes | None = None) -> None:
        self.indexes = indexes

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        check_k(k)
        if self.indexes is not None:
            recent = self.indexes.index.recent(profile.user_id, k)
            if recent is None:
                raise UnknownUserError(profile.user_id)
            return as_hits(recent)
        records = profile.records
        return [RetrievalHit(record=records[i], score=float(len(records) - rank), rank=rank)
                for rank, i in enumerate(recency_order(records)[:k])]


class RandomRetriever:
    """``k`` records drawn at random, reproducibly: the draw depends on the seed, the user
    and the query, so reruns and resumed runs pick the same items."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        check_k(k)
        digest = hashlib.sha256(f"{self.seed}\x00{profile.user_id}\x00{query}".encode()).digest()
        generator = random.Random(int.from_bytes(digest[:8], "big"))
        picked = generator.sample(range(len(profile.records)), min(k, len(profile.records)))
        return [RetrievalHit(record=profile.records[i], score=0.0, rank=rank) for rank, i in enumerate(picked)]
