"""Reciprocal-rank fusion (RRF): the one way tailor combines rankings.

Cormack, Clarke and Büttcher (SIGIR 2009): an item's fused score is the sum, over the
rankings that hold it, of ``1 / (constant + rank)`` with ranks counted from 1. The
constant 60 is the paper's: it damps the weight of the very top ranks, so an item that
several rankings place fairly high beats one that a single ranking places first. Fusing
ranks rather than scores needs no calibration between BM25's unbounded scores and cosine
similarities.

``depth`` cuts every ranking to its first ``depth`` items before fusing (``None`` fuses
them whole). A stored index that only returns its top items is fused exactly like a
ranking of the whole profile when both are cut at the same depth, which is why the depth
is a parameter of the one function rather than a property of where a ranking came from.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

RRF_CONSTANT = 60.0

Item = TypeVar("Item", bound=Hashable)


def reciprocal_rank_fusion(rankings: Iterable[Sequence[Item]], *, depth: int | None = None,
                           constant: float = RRF_CONSTANT) -> list[tuple[Item, float]]:
    """Every item of ``rankings`` (each best first, items unique within one ranking) with
    its fused score, best first; equal scores keep the order in which items were first
    seen (ranking by ranking).

    ``depth``: how many items of each ranking take part (``None``: all of them).
    ``constant``: RRF's ``k``, non-negative.
    """
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 0):
        raise ValueError(f"depth must be a non-negative integer or None, got {depth!r}")
    if not constant >= 0:
        raise ValueError(f"constant must be a non-negative number, got {constant!r}")
    fused: dict[Item, float] = {}
    for ranking in rankings:
        kept = ranking if depth is None else ranking[:depth]
        for position, item in enumerate(kept, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (constant + position)
    return sorted(fused.items(), key=lambda pair: -pair[1])  # sorted() is stable: first seen wins ties


def fuse(rankings: Iterable[Sequence[Item]], k: int, *, depth: int | None = None,
         constant: float = RRF_CONSTANT) -> list[Item]:
    """The ``k`` best items of :func:`reciprocal_rank_fusion`, without their scores."""
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    return [item for item, _ in reciprocal_rank_fusion(rankings, depth=depth, constant=constant)[:k]]


__all__ = ["RRF_CONSTANT", "fuse", "reciprocal_rank_fusion"]
