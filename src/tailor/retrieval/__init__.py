"""Retrievers over one user's records: ``bm25``, ``recency``, ``random``, ``dense``, ``hybrid``
(BM25 and dense fused by reciprocal rank) and ``recency+dense`` (recent records re-ranked by
similarity). The dense ones take an embedder (:mod:`tailor.embeddings`) and, optionally, a
profile store that keeps the record vectors.

Each registered retriever is a retrieval method (:data:`tailor.methods.METHODS`). A
retriever is built with the keyword arguments its constructor names among ``embedder``,
``store``, ``document`` (the task's indexed text), ``seed`` and ``indexes``: one that takes
``indexes`` ranks from a store's per-user indexes when it is given them (``tailor serve``,
:class:`~tailor.retrieval.stored.StoredIndexes`); any other is handed the user's profile,
read from the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tailor.registry import Registry

if TYPE_CHECKING:
    from tailor.retrieval.retriever import RetrievalHit, Retriever, rank, record_text

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
    helps={
        "bm25": "the user's records that share the most words with the input (BM25)",
        "recency": "the user's most recent records",
        "random": "records drawn at random (a control)",
        "dense": "the user's records closest in meaning to the input (all-MiniLM-L6-v2 embeddings)",
        "hybrid": "bm25 and dense fused by reciprocal rank",
        "recency+dense": "the most recent records, re-ranked by dense similarity",
    },
)



def __getattr__(name: str) -> Any:
    # The contract's names, imported on first use: listing retrievers loads no numpy.
    if name in ("RetrievalHit", "Retriever", "rank", "record_text"):
        from tailor.retrieval import retriever as base

        return getattr(base, name)
    raise AttributeError(f"module 'tailor.retrieval' has no attribute {name!r}")


__all__ = ["RETRIEVERS", "RetrievalHit", "Retriever", "rank", "record_text"]
