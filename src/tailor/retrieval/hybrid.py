"""Hybrid retrieval: BM25 and dense rankings fused by reciprocal rank (RRF).

Cormack, Clarke and Büttcher (SIGIR 2009): a record's fused score is the sum, over the
rankings that retrieved it, of ``1 / (k_rrf + rank)`` with ranks counted from 1. The
constant ``k_rrf = 60`` is the paper's: it damps the weight of the very top ranks, so a
record that both rankings place fairly high beats one that only one ranking places first.
Fusing ranks rather than scores needs no calibration between BM25's unbounded scores and
cosine similarities.
"""

from __future__ import annotations

import numpy as np

from tailor.embeddings.base import Embedder
from tailor.profiles.base import ProfileStore
from tailor.retrieval.base import DocumentFn, check_k, rank_array, rank_positions, record_text
from tailor.retrieval.bm25 import BM25Retriever
from tailor.retrieval.dense import DenseRetriever
from tailor.types import Profile, RetrievalHit


class HybridRetriever:
    """Reciprocal-rank fusion of :class:`BM25Retriever` and :class:`DenseRetriever`.

    Every record is in the dense ranking (all have a similarity); only records sharing a
    term with the query (BM25 score above 0) are in the BM25 ranking, since ranking the
    rest would reward them for their place in the profile. Ranks break ties by profile
    order, and so do equal fused scores. Hit scores are the fused scores.
    """

    name = "hybrid"

    def __init__(self, embedder: Embedder, store: ProfileStore | None = None, *, document: DocumentFn = record_text,
                 k_rrf: float = 60.0, cache_size: int = 64) -> None:
        if not k_rrf >= 0:
            raise ValueError(f"k_rrf must be a non-negative number, got {k_rrf!r}")
        self.k_rrf = float(k_rrf)
        self.bm25 = BM25Retriever(document=document, cache_size=cache_size)
        self.dense = DenseRetriever(embedder, store, document=document, cache_size=cache_size)

    def scores(self, query: str, profile: Profile) -> np.ndarray:
        """The fused score of every record in ``profile``."""
        if not profile.records:
            return np.zeros(0)
        sparse = np.asarray(self.bm25.scores(query, profile), dtype=np.float64)
        dense = np.asarray(self.dense.scores(query, profile), dtype=np.float64)
        fused = 1.0 / (self.k_rrf + rank_positions(dense))
        fused += np.where(sparse > 0, 1.0 / (self.k_rrf + rank_positions(sparse)), 0.0)
        return fused

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        check_k(k)
        if k == 0 or not profile.records:
            return []
        return rank_array(profile.records, self.scores(query, profile), k)
