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


def fused_top(lexical: np.ndarray, dense: np.ndarray, dense_scores: np.ndarray, k: int, *, dense_first: bool,
              later_first: bool) -> np.ndarray:
    """The rows of :func:`~tailor.retrieval.fusion.reciprocal_rank_fusion`'s ``k`` best over a
    lexical ranking (``lexical``: matched rows, best first) and a dense ranking of every row
    (``dense`` rows, ``dense_scores`` their similarities; ranked best first, ties to the
    earlier row, or the later with ``later_first``), computed with numpy over the rows rather
    than item by item: the same fused scores, and equal ones in the order the items were
    first seen (the dense ranking's first when ``dense_first``)."""
    if not len(dense) and not len(lexical):
        return np.zeros(0, dtype=np.int64)
    ascending = bool(np.all(dense[1:] > dense[:-1]))
    if ascending:  # the usual case: one stable sort by score keeps ties in row order
        if later_first:
            order = len(dense) - 1 - np.argsort(-dense_scores[::-1], kind="stable")
        else:
            order = np.argsort(-dense_scores, kind="stable")
    else:
        order = np.lexsort((-dense if later_first else dense, -dense_scores))  # positions in `dense`, best first
    ranked = dense[order]
    if ascending:
        at = np.minimum(np.searchsorted(dense, lexical), max(len(dense) - 1, 0))
        covered = bool(len(dense)) and bool(np.all(dense[at] == lexical))
    else:
        covered = False
    if covered:
        rows = dense  # every matched row has a vector (the usual case): no union to build
        dense_rank = np.empty(len(rows), dtype=np.int64)
        dense_rank[order] = np.arange(len(order))
        lexical_at = at
    else:
        rows = np.unique(np.concatenate([ranked, lexical]))
        dense_rank = np.full(len(rows), -1, dtype=np.int64)
        dense_rank[np.searchsorted(rows, ranked)] = np.arange(len(ranked))
        lexical_at = np.searchsorted(rows, lexical)
    lexical_rank = np.full(len(rows), -1, dtype=np.int64)
    lexical_rank[lexical_at] = np.arange(len(lexical))
    in_dense, in_lexical = dense_rank >= 0, lexical_rank >= 0
    # Two terms at most per item: their sum is the same in either order (IEEE addition commutes).
    fused = np.where(in_dense, 1.0 / (RRF_CONSTANT + dense_rank + 1), 0.0)
    fused += np.where(in_lexical, 1.0 / (RRF_CONSTANT + lexical_rank + 1), 0.0)
    first = (dense_rank, lexical_rank) if dense_first else (lexical_rank, dense_rank)
    lead = in_dense if dense_first else in_lexical
    lead_rank, follow_rank = first
    # First seen: the lead ranking's items in its order, then the others in the other's.
    seen = np.where(lead, lead_rank, len(rows) + follow_rank)
    if len(rows) > k:  # only the items scoring at least the k-th best can be among the k
        candidates = np.flatnonzero(fused >= np.partition(fused, len(fused) - k)[len(fused) - k])
        return rows[candidates[np.lexsort((seen[candidates], -fused[candidates]))[:k]]]
    return rows[np.lexsort((seen, -fused))[:k]]

__all__ = ["RRF_CONSTANT", "TextEmbedder", "fused_top", "hybrid_rank", "reciprocal_rank_fusion"]
