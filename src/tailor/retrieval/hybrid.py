"""Hybrid retrieval: BM25 and dense rankings fused by reciprocal rank
(:func:`tailor.retrieval.fusion.reciprocal_rank_fusion`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tailor.embeddings.embedder import Embedder
from tailor.retrieval.bm25 import BM25Retriever
from tailor.retrieval.dense import DenseRetriever
from tailor.retrieval.fusion import RRF_CONSTANT, fuse, reciprocal_rank_fusion
from tailor.retrieval.retriever import DocumentFn, check_k, record_text, top_k
from tailor.store.contract import ProfileStore
from tailor.types import Profile, RetrievalHit

if TYPE_CHECKING:
    from tailor.retrieval.stored import StoredIndexes

_EVERY_RECORD = 1 << 30
HYBRID_DEPTH: int | None = None
"""How deep each ranking goes before fusion, in ``tailor eval`` and ``tailor serve`` alike:
the whole profile (every record is in the dense ranking)."""


class HybridRetriever:
    """Reciprocal-rank fusion of :class:`DenseRetriever` and :class:`BM25Retriever`.

    Every record is in the dense ranking (all have a similarity); only records sharing a
    term with the query (BM25 score above 0) are in the BM25 ranking, since ranking the
    rest would reward them for their place in the profile. Each ranking breaks its ties by
    profile order; equal fused scores go to the record the dense ranking places higher
    (:func:`~tailor.retrieval.fusion.reciprocal_rank_fusion` keeps first-seen order, and
    the dense ranking comes first), which is how ``tailor serve`` fuses its stored
    rankings too. Hit scores are the fused scores. ``depth`` cuts each ranking before
    fusing (``None``: the whole profile); beyond it a record is in no ranking and no hit.

    With ``indexes`` (``tailor serve``) both rankings are read from the store's per-user
    indexes (the stored dense ranking first, as here) and fused the same way.
    """

    name = "hybrid"

    def __init__(self, embedder: Embedder, store: ProfileStore | None = None, *, document: DocumentFn = record_text,
                 k_rrf: float = RRF_CONSTANT, depth: int | None = HYBRID_DEPTH, cache_size: int = 64,
                 indexes: StoredIndexes | None = None) -> None:
        if not k_rrf >= 0:
            raise ValueError(f"k_rrf must be a non-negative number, got {k_rrf!r}")
        if indexes is not None:
            indexes.require_vectors(self.name)
        self.indexes = indexes
        self.k_rrf = float(k_rrf)
        self.depth = depth
        self.bm25 = BM25Retriever(document=document, cache_size=cache_size)
        self.dense = DenseRetriever(embedder, store, document=document, cache_size=cache_size)

    def fused(self, query: str, profile: Profile) -> list[tuple[int, float]]:
        """(record index, fused score) of every fused record, best first."""
        if not profile.records:
            return []
        sparse = np.asarray(self.bm25.scores(query, profile), dtype=np.float64)
        dense = np.asarray(self.dense.scores(query, profile), dtype=np.float64)
        rankings = [top_k(dense, len(dense)).tolist(), top_k(sparse, int(np.count_nonzero(sparse > 0))).tolist()]
        return reciprocal_rank_fusion(rankings, depth=self.depth, constant=self.k_rrf)

    def scores(self, query: str, profile: Profile) -> np.ndarray:
        """The fused score of every record in ``profile`` (0 for a record in no ranking)."""
        fused = np.zeros(len(profile.records))
        for index, score in self.fused(query, profile):
            fused[index] = score
        return fused

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        check_k(k)
        if self.indexes is not None:
            return self._stored(query, profile.user_id, k)
        if k == 0:
            return []
        return [RetrievalHit(record=profile.records[index], score=score, rank=rank)
                for rank, (index, score) in enumerate(self.fused(query, profile)[:k])]

    def _stored(self, query: str, user_id: str, k: int) -> list[RetrievalHit]:
        assert self.indexes is not None  # the caller checked
        reach = self.depth if self.depth is not None else _EVERY_RECORD
        dense = self.indexes.require_vectors(self.name).rank(user_id, query, reach)
        sparse = self.indexes.index.rank(user_id, query, reach)
        ids = None if dense is None or sparse is None else fuse([dense, sparse], k, depth=self.depth,
                                                                 constant=self.k_rrf)
        return self.indexes.hits(user_id, ids)
