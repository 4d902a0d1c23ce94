"""The retriever contract: ranked hits for a query within ONE user's profile.

A retriever is handed a single :class:`~tailor.types.Profile`, so it cannot read another
user's records by construction. Ties are broken by the records' order in the profile
(earlier first), so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

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


def check_k(k: int) -> None:
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")


def rank(records: Sequence[HistoryRecord], scores: Sequence[float], k: int) -> list[RetrievalHit]:
    """The ``k`` best records by score, ties in profile order."""
    order = sorted(range(len(records)), key=lambda i: (-scores[i], i))[:k]
    return [RetrievalHit(record=records[i], score=float(scores[i]), rank=r) for r, i in enumerate(order)]
