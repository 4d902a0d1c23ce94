"""An index of documents that come and go one at a time (a user's conversation as it grows,
their memories as they change), searched by BM25 and, with vectors, by cosine, at a cost
that does not grow with the number of documents held: adding, replacing or removing a
document costs a count per term of it; a BM25 query costs the postings of its terms; a
dense query one matrix-vector product.

Its BM25 is :class:`~tailor.retrieval.bm25.BM25Index`'s (bm25s's Lucene BM25) for the same
documents in the same order, to the bit: each term's score per document is computed as
bm25s computes it (the IDF in float32, the term-frequency part in float64, the product
stored in float32) and a query's terms are summed in float32 in the query's order
(``tests/memory/test_live_indexes.py`` compares the two). Each document has a row; rows
follow the order the documents were first added in, and a replaced one keeps its row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

Ties = Literal["earlier", "later"]
_GONE = object()  # the key of a removed document's row


def _kept(entries: np.ndarray, size: int, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """A term's entries (rows of ``[row, count, version]``) where ``mask`` (over the first
    ``size``) holds, in an array with room for as many again; and their number."""
    kept = int(mask.sum())
    fresh = np.zeros((max(4, 2 * kept), 3), dtype=np.int64)
    fresh[:kept] = entries[:size][mask]
    return fresh, kept


class LiveIndex:
    """Documents by key, each with its BM25 terms and (when ``dim`` is given) a unit vector.

    A document's row numbers it for good (rows grow as documents are added); the arrays
    hold the rows from the oldest one still held, so when the oldest documents go (a window
    that slides, the common case) the arrays slide past them at the cost of a copy.
    Replacing or removing a document costs a count per term of it, whatever the number of
    documents: its old postings die with its row's version. Only removals in the middle
    that leave more gaps than documents renumber the rows (:meth:`_compact`), in numpy."""

    def __init__(self, dim: int | None = None, *, k1: float = 1.5, b: float = 0.75) -> None:
        self.dim, self.k1, self.b = dim, k1, b
        self._row: dict[Any, int] = {}  # document key -> its row
        self._base = 0  # the row of slot 0
        self._keys: list[Any] = []  # slot -> key (_GONE once removed)
        self._lengths = np.zeros(64, dtype=np.float64)  # slot -> number of terms
        self._live = np.zeros(64, dtype=bool)  # slot -> held
        self._versions = np.zeros(64, dtype=np.int64)  # slot -> version of its document's postings
        self._matrix = np.zeros((64, dim or 0), dtype=np.float32)  # slot -> vector
        self._terms: dict[int, tuple[str, ...]] = {}  # row -> its document's distinct terms
        # A term's postings: rows of [row, count, version] in one array, appended to, and how
        # many are written and live. An entry is live while its row holds the version it was
        # written at (a row's version changes when its document is replaced or removed), so
        # removing a document touches no posting; the live count is the term's document
        # frequency, and the dead entries are dropped in one numpy step when they are the
        # most. Plain dicts of arrays and ints: Python's garbage collector skips them.
        self._entries: dict[str, np.ndarray] = {}
        self._written: dict[str, int] = {}
        self._alive: dict[str, int] = {}
        self._total = 0
        self._gaps = 0  # slots of removed documents

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, key: object) -> bool:
        return key in self._row

    def keys(self) -> list[Any]:
        """The documents' keys, in row order."""
        return [key for key in self._keys if key is not _GONE]

    def key(self, row: int) -> Any:
        return self._keys[row - self._base]

    # -- writes -------------------------------------------------------------------------------

    def put(self, key: Any, tokens: Sequence[str], vector: np.ndarray | None = None) -> None:
        """Add the document ``key`` (in a new, last row), or replace it (in its row)."""
        if (vector is None) != (self.dim is None):
            raise ValueError("a vector is given exactly when the index keeps them (dim)")
        row = self._row.get(key)
        if row is None:
            slot = len(self._keys)
            row = self._row[key] = self._base + slot
            self._keys.append(key)
            if slot >= len(self._lengths):
                self._resize(0, 2 * len(self._lengths))
        else:
            slot = row - self._base
            self._unindex(row)
        counts: dict[str, int] = {}
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
        version = int(self._versions[slot])
        entries_of, written_of, alive_of = self._entries, self._written, self._alive
        for term, count in counts.items():
            entries = entries_of.get(term)
            if entries is None:
                entries = entries_of[term] = np.zeros((4, 3), dtype=np.int64)
                written_of[term] = alive_of[term] = 0
            at = written_of[term]
            if at == len(entries):  # full: drop the dead when they are the most, else twice the room
                mask = self._alive_mask(term) if 2 * alive_of[term] <= at else np.ones(at, dtype=bool)
                entries, at = _kept(entries, at, mask)
                entries_of[term] = entries
            entries[at] = (row, count, version)
            written_of[term] = at + 1
            alive_of[term] += 1
        self._terms[row] = tuple(counts)
        self._live[slot] = True
        self._lengths[slot] = len(tokens)
        self._total += len(tokens)
        if vector is not None:
            self._matrix[slot] = vector

    def remove(self, key: Any) -> None:
        row = self._row.pop(key, None)
        if row is None:
            return
        self._unindex(row)
        slot = row - self._base
        self._keys[slot] = _GONE
        self._live[slot] = False
        self._lengths[slot] = 0
        if self.dim:
            self._matrix[slot] = 0.0
        self._gaps += 1
        if self._gaps > max(len(self._row), 64):
            self._drop_gaps()

    def _unindex(self, row: int) -> None:
        """Retire the postings of the document in ``row``: its version changes, its terms count one less."""
        slot = row - self._base
        self._versions[slot] += 1
        alive_of = self._alive
        for term in self._terms.pop(row, ()):
            alive_of[term] -= 1
            if not alive_of[term]:
                del alive_of[term], self._entries[term], self._written[term]
        self._total -= int(self._lengths[slot])

    def _alive_mask(self, term: str) -> np.ndarray:
        """Which of ``term``'s written entries are live (their row is held at the version they were written at)."""
        entries = self._entries[term][:self._written[term]]
        slots = entries[:, 0] - self._base
        held = slots >= 0  # rows the arrays slid past are gone
        current = np.full(len(entries), -1, dtype=np.int64)
        current[held] = self._versions[slots[held]]
        return np.asarray(current == entries[:, 2])

    def _live_entries(self, term: str) -> np.ndarray:
        """``term``'s live entries (dropping the dead ones for good when they are the most)."""
        written, alive = self._written[term], self._alive[term]
        entries = self._entries[term][:written]
        if alive == written:
            return entries
        mask = self._alive_mask(term)
        if 2 * alive <= written:
            self._entries[term], self._written[term] = _kept(self._entries[term], written, mask)
            return self._entries[term][:alive]
        return entries[mask]

    def _resize(self, start: int, size: int) -> None:
        """Keep the slots from ``start`` on, in arrays of ``size``."""
        held = min(len(self._keys), len(self._lengths)) - start
        lengths, live = np.zeros(size, dtype=np.float64), np.zeros(size, dtype=bool)
        versions = np.zeros(size, dtype=np.int64)
        lengths[:held], live[:held] = self._lengths[start:start + held], self._live[start:start + held]
        versions[:held] = self._versions[start:start + held]
        matrix = np.zeros((size, self.dim or 0), dtype=np.float32)
        matrix[:held] = self._matrix[start:start + held]
        self._lengths, self._live, self._versions, self._matrix = lengths, live, versions, matrix

    def _drop_gaps(self) -> None:
        """Slide past the removed documents at the front; renumber when the gaps are elsewhere."""
        front = 0
        while front < len(self._keys) and self._keys[front] is _GONE:
            front += 1
        if front:
            self._resize(front, max(64, 2 * (len(self._keys) - front)))
            self._keys = self._keys[front:]
            self._base += front
            self._gaps -= front
        if self._gaps > max(len(self._row), 64):
            self._compact()

    def _compact(self) -> None:
        """Renumber the documents held from row 0, in the same order."""
        held = np.array([slot for slot, key in enumerate(self._keys) if key is not _GONE], dtype=np.int64)
        renumber = np.full(len(self._keys), -1, dtype=np.int64)
        renumber[held] = np.arange(len(held))
        for term in list(self._entries):
            entries, kept = _kept(self._entries[term], self._written[term], self._alive_mask(term))
            entries[:kept, 0] = renumber[entries[:kept, 0] - self._base]
            self._entries[term], self._written[term] = entries, kept
        self._terms = {int(renumber[row - self._base]): terms for row, terms in self._terms.items()}
        self._row = {key: int(renumber[row - self._base]) for key, row in self._row.items()}
        size = max(64, 2 * len(held))
        lengths, live, versions = np.zeros(size), np.zeros(size, dtype=bool), np.zeros(size, dtype=np.int64)
        lengths[:len(held)], live[:len(held)] = self._lengths[held], True
        versions[:len(held)] = self._versions[held]
        matrix = np.zeros((size, self.dim or 0), dtype=np.float32)
        matrix[:len(held)] = self._matrix[held]
        self._keys = [self._keys[int(slot)] for slot in held]
        self._lengths, self._live, self._versions, self._matrix = lengths, live, versions, matrix
        self._base, self._gaps = 0, 0

    # -- BM25 -----------------------------------------------------------------------------------

    def _bm25(self, query_tokens: Sequence[str]) -> np.ndarray:
        """Every slot's BM25 score (float32; 0 for a document that shares no term, or is gone)."""
        scores = np.zeros(len(self._keys), dtype=np.float32)
        n = len(self._row)
        if not n or not self._total:
            return scores
        average = np.float64(self._total) / n
        found = [token for token in query_tokens if token in self._alive]
        if not found:
            return scores
        # Each slot's length part of the term-frequency denominator, once per query.
        lengths = self.k1 * ((1 - self.b) + self.b * self._lengths[:len(self._keys)] / average)
        for token in found:  # in order, repeats counted each time, as bm25s sums them
            df = self._alive[token]
            idf = np.float32(math.log(1 + (n - df + 0.5) / (df + 0.5)))
            entries = self._live_entries(token)
            where, tf = entries[:, 0] - self._base, entries[:, 1].astype(np.float64)
            tfc = tf / (lengths[where] + tf)
            scores[where] += (np.float64(idf) * tfc).astype(np.float32)
        return scores

    def scores(self, query_tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The documents' rows in order and their BM25 scores (float32, as
        :meth:`~tailor.retrieval.bm25.BM25Index.scores` before its float64 copy)."""
        slots = np.flatnonzero(self._live[:len(self._keys)])
        return slots + self._base, self._bm25(query_tokens)[slots]

    def ranked(self, query_tokens: Sequence[str], *, ties: Ties = "earlier") -> tuple[np.ndarray, np.ndarray]:
        """The rows of the documents that share a term with the query, best first (ties to
        the earlier row, or the later), and their scores."""
        scores = self._bm25(query_tokens)
        slots = np.flatnonzero(scores > 0)  # an IDF is always positive: a shared term scores
        rows, ordered = self._order(slots, scores[slots], ties)
        return rows + self._base, ordered

    @staticmethod
    def _order(rows: np.ndarray, scores: np.ndarray, ties: Ties) -> tuple[np.ndarray, np.ndarray]:
        """``rows`` (ascending) and their ``scores``, best first, ties to the earlier row or the later."""
        if ties == "earlier":  # a stable sort by score keeps tied rows in order
            order = np.argsort(-scores, kind="stable")
        else:
            order = len(rows) - 1 - np.argsort(-scores[::-1], kind="stable")
        return rows[order], scores[order]

    def top(self, query_tokens: Sequence[str], k: int, *, ties: Ties = "earlier") -> list[tuple[Any, float]]:
        """Up to ``k`` (document key, score) pairs with a positive score, best first."""
        if k <= 0:
            return []
        scores_all = self._bm25(query_tokens)
        matched = np.flatnonzero(scores_all > 0)
        if len(matched) > k:  # only rows scoring at least the k-th best can be among the k
            cut = np.partition(scores_all[matched], len(matched) - k)[len(matched) - k]
            matched = matched[scores_all[matched] >= cut]
        slots, scores = self._order(matched, scores_all[matched], ties)
        return [(self._keys[int(slot)], float(score)) for slot, score in zip(slots[:k], scores[:k])]

    # -- vectors --------------------------------------------------------------------------------

    def similarities(self, query_vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows held (ascending) and their cosine similarity to ``query_vector``."""
        if not self.dim:
            raise ValueError("this index keeps no vectors")
        held = len(self._keys)
        everything = self._matrix[:held] @ np.asarray(query_vector, dtype=np.float32)
        slots = np.flatnonzero(self._live[:held])
        return slots + self._base, everything[slots]


__all__ = ["LiveIndex", "Ties"]
