"""Retrievers over one user's records: ``bm25``, ``recency``, ``random``."""

from __future__ import annotations

from tailor.registry import Registry
from tailor.retrieval.base import Retriever, RetrievalHit, rank, record_text

RETRIEVERS = Registry(
    "retriever",
    {
        "bm25": "tailor.retrieval.bm25:BM25Retriever",
        "recency": "tailor.retrieval.simple:RecencyRetriever",
        "random": "tailor.retrieval.simple:RandomRetriever",
    },
    group="tailor.retrievers",
)

__all__ = ["RETRIEVERS", "RetrievalHit", "Retriever", "rank", "record_text"]
