"""The retriever contract: ranked hits for a query within ONE user's profile.

A retriever is handed a single :class:`~tailor.types.Profile`, so it cannot read another
user's records by construction. Ties are broken by the records' order in the profile
(earlier first), so results are deterministic.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from tailor.types import HistoryRecord, Profile, RetrievalHit

DocumentFn = Callable[[HistoryRecord], str]


def record_text(record: HistoryRecord) -> str:
    """The default document text: every field of the record."""
    return record.text()


@runtime_checkable
class Retriever(Protocol):
    name: str

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        """At most ``k`` of ``profile``'s records, best first."""
        ...


def same_records(cached: Sequence[HistoryRecord], given: Sequence[HistoryRecord]) -> bool:
    """Whether an index or vectors built for ``cached`` still serve ``given``.

    Identity first, so a caller that reuses its profile pays almost nothing; equality
    second, so a record replaced under the same id (new text) is never served stale data.
    """
    if len(cached) != len(given):
        return False
    return all(map(operator.is_, cached, given)) or all(a is b or a == b for a, b in zip(cached, given))


def check_k(k: int) -> None:
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")


def as_hits(records: Sequence[HistoryRecord]) -> list[RetrievalHit]:
    """``records``, best first, as hits without scores (a ranking read from a stored index)."""
    return [RetrievalHit(record=record, score=0.0, rank=rank) for rank, record in enumerate(records)]


def rank(records: Sequence[HistoryRecord], scores: Sequence[float], k: int) -> list[RetrievalHit]:
    """The ``k`` best records by score, ties in profile order."""
    order = sorted(range(len(records)), key=lambda i: (-scores[i], i))[:k]
    return [RetrievalHit(record=records[i], score=float(scores[i]), rank=r) for r, i in enumerate(order)]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best ``scores``, best first, ties in profile order (lower index
    first): the same order as :func:`rank`, in numpy, for large profiles."""
    n = len(scores)
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.intp)
    if k < n:
        # Keep every index that ties with the k-th best, so the tie-break below sees them all.
        kth = np.partition(scores, n - k)[n - k]
        candidates = np.flatnonzero(scores >= kth)
    else:
        candidates = np.arange(n)
    order = candidates[np.lexsort((candidates, -scores[candidates]))]
    return order[:k]


def rank_array(records: Sequence[HistoryRecord], scores: np.ndarray, k: int) -> list[RetrievalHit]:
    """:func:`rank` for a numpy score vector."""
    return [RetrievalHit(record=records[i], score=float(scores[i]), rank=r) for r, i in enumerate(top_k(scores, k))]


def rank_positions(scores: np.ndarray) -> np.ndarray:
    """Each record's 1-based rank under ``scores`` (best = 1, ties in profile order)."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    positions = np.empty(len(scores), dtype=np.int64)
    positions[order] = np.arange(1, len(scores) + 1)
    return positions
