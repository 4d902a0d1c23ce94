"""Hybrid search over a handful of texts: BM25 and dense similarity, fused by rank.

Reciprocal-rank fusion (Cormack et al., 2009) adds ``1 / (60 + rank)`` over the rankings an
item appears in; it needs no score calibration between BM25 (unbounded) and cosine
similarity (-1..1), which is why it is the usual way to combine them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from tailor.retrieval.bm25 import BM25Index
from tailor.retrieval.dense import similarity_order
from tailor.retrieval.fusion import RRF_CONSTANT, reciprocal_rank_fusion


@runtime_checkable
class TextEmbedder(Protocol):
    """What memory search needs of an embedder (see :mod:`tailor.embeddings`): a stable
    ``name`` and unit-length float32 rows for texts."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def hybrid_rank(query_tokens: Sequence[str], token_lists: Sequence[Sequence[str]], *, k: int,
                query_vector: np.ndarray | None = None, vectors: np.ndarray | None = None) -> list[tuple[int, float]]:
    """Up to ``k`` (index, fused score) pairs over the documents.

    BM25 ranks only the documents that share a token with the query; the dense ranking,
    when vectors are given, ranks every document, so a short corpus always fills ``k``
    (with the documents closest in meaning when none matches a word).
    """
    if k <= 0 or not token_lists:
        return []
    ids = [str(i) for i in range(len(token_lists))]
    lexical = [index for index, _ in BM25Index.build(ids, token_lists).top(query_tokens, len(ids))]
    rankings: list[list[int]] = [lexical]
    if query_vector is not None and vectors is not None and len(vectors):
        rankings.append(similarity_order(vectors, query_vector).tolist())
    return reciprocal_rank_fusion(rankings)[:k]


__all__ = ["RRF_CONSTANT", "TextEmbedder", "hybrid_rank", "reciprocal_rank_fusion"]
