"""Hybrid retrieval: BM25 and dense rankings fused by reciprocal rank
(:func:`tailor.retrieval.fusion.reciprocal_rank_fusion`)."""

from __future__ import annotations

import numpy as np

from tailor.embeddings.base import Embedder
from tailor.profiles.base import ProfileStore
from tailor.retrieval.base import DocumentFn, check_k, rank_array, record_text, top_k
from tailor.retrieval.bm25 import BM25Retriever
from tailor.retrieval.dense import DenseRetriever
from tailor.retrieval.fusion import RRF_CONSTANT, reciprocal_rank_fusion
from tailor.types import Profile, RetrievalHit


class HybridRetriever:
    """Reciprocal-rank fusion of :class:`BM25Retriever` and :class:`DenseRetriever`.

    Every record is in the dense ranking (all have a similarity); only records sharing a
    term with the query (BM25 score above 0) are in the BM25 ranking, since ranking the
    rest would reward them for their place in the profile. Ranks break ties by profile
    order, and so do equal fused scores. Hit scores are the fused scores. ``depth`` cuts
    each ranking before fusing (``None``: the whole profile).
    """

    name = "hybrid"

    def __init__(self, embedder: Embedder, store: ProfileStore | None = None, *, document: DocumentFn = record_text,
                 k_rrf: float = RRF_CONSTANT, depth: int | None = None, cache_size: int = 64) -> None:
        if not k_rrf >= 0:
            raise ValueError(f"k_rrf must be a non-negative number, got {k_rrf!r}")
        self.k_rrf = float(k_rrf)
        self.depth = depth
        self.bm25 = BM25Retriever(document=document, cache_size=cache_size)
        self.dense = DenseRetriever(embedder, store, document=document, cache_size=cache_size)

    def scores(self, query: str, profile: Profile) -> np.ndarray:
        """The fused score of every record in ``profile``."""
        if not profile.records:
            return np.zeros(0)
        sparse = np.asarray(self.bm25.scores(query, profile), dtype=np.float64)
        dense = np.asarray(self.dense.scores(query, profile), dtype=np.float64)
        n = len(profile.records)
        sparse_order = top_k(sparse, int(np.count_nonzero(sparse > 0)))
        dense_order = top_k(dense, n)
        fused = np.zeros(n)
        pairs = reciprocal_rank_fusion([sparse_order.tolist(), dense_order.tolist()], depth=self.depth,
                                       constant=self.k_rrf)
        for index, score in pairs:
            fused[index] = score
        return fused

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        check_k(k)
        if k == 0 or not profile.records:
            return []
        # Beyond ``depth`` a record is in no ranking: it has no fused score and is not a hit.
        return [hit for hit in rank_array(profile.records, self.scores(query, profile), k) if hit.score > 0]
