"""Retrievers over one user's records: ``bm25``, ``recency``, ``random``, ``dense``, ``hybrid``
(BM25 and dense fused by reciprocal rank) and ``recency+dense`` (recent records re-ranked by
similarity). The dense ones take an embedder (:mod:`tailor.embeddings`) and, optionally, a
profile store that keeps the record vectors."""

from __future__ import annotations

from tailor.registry import Registry
from tailor.retrieval.base import RetrievalHit, Retriever, rank, record_text

RETRIEVERS = Registry(
    "retriever",
    {
        "bm25": "tailor.retrieval.bm25:BM25Retriever",
        "recency": "tailor.retrieval.simple:RecencyRetriever",
        "random": "tailor.retrieval.simple:RandomRetriever",
        "dense": "tailor.retrieval.dense:DenseRetriever",
        "hybrid": "tailor.retrieval.hybrid:HybridRetriever",
        "recency+dense": "tailor.retrieval.dense:RecencyDenseRetriever",
    },
    group="tailor.retrievers",
)

__all__ = ["RETRIEVERS", "RetrievalHit", "Retriever", "rank", "record_text"]
