"""An index of documents that come and go one at a time (a user's conversation as it grows,
their memories as they change), searched by BM25 and, with vectors, by cosine, at a cost
that does not grow with the number of documents held: adding, replacing or removing a
document costs its own terms; a BM25 query costs the postings of its terms; a dense query
one matrix-vector product.

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


class _Postings:
    """One term's postings: rows and term counts in numpy arrays, appended to; a removed
    document's entry is marked dead (count 0) and the arrays are compacted when half are."""

    __slots__ = ("counts", "dead", "rows", "size")

    def __init__(self) -> None:
        self.rows = np.zeros(4, dtype=np.int64)
        self.counts = np.zeros(4, dtype=np.float64)
        self.size = self.dead = 0

    def __len__(self) -> int:
        return self.size - self.dead

    def add(self, row: int, count: int) -> int:
        """Add an entry; its position."""
        if self.size == len(self.rows):
            self.rows = np.concatenate([self.rows, np.zeros(len(self.rows), dtype=np.int64)])
            self.counts = np.concatenate([self.counts, np.zeros(len(self.counts), dtype=np.float64)])
        self.rows[self.size], self.counts[self.size] = row, count
        self.size += 1
        return self.size - 1

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        rows, counts = self.rows[:self.size], self.counts[:self.size]
        if not self.dead:
            return rows, counts
        keep = counts > 0
        return rows[keep], counts[keep]


class LiveIndex:
    """Documents by key, each with its BM25 terms and (when ``dim`` is given) a unit vector."""

    def __init__(self, dim: int | None = None, *, k1: float = 1.5, b: float = 0.75) -> None:
        self.dim, self.k1, self.b = dim, k1, b
        self._row: dict[Any, int] = {}  # document key -> its row
        self._keys: list[Any] = []  # row -> key (_GONE once removed)
        self._lengths = np.zeros(64, dtype=np.float64)  # row -> number of terms
        self._live = np.zeros(64, dtype=bool)  # row -> held
        self._matrix = np.zeros((64, dim or 0), dtype=np.float32)  # row -> vector
        self._terms: dict[int, dict[str, int]] = {}  # row -> term -> position in the term's postings
        self._postings: dict[str, _Postings] = {}
        self._total = 0

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, key: object) -> bool:
        return key in self._row

    def keys(self) -> list[Any]:
        """The documents' keys, in row order."""
        return [key for key in self._keys if key is not _GONE]

    def key(self, row: int) -> Any:
        return self._keys[row]

    # -- writes -------------------------------------------------------------------------------

    def put(self, key: Any, tokens: Sequence[str], vector: np.ndarray | None = None) -> None:
        """Add the document ``key`` (in a new, last row), or replace it (in its row)."""
        if (vector is None) != (self.dim is None):
            raise ValueError("a vector is given exactly when the index keeps them (dim)")
        row = self._row.get(key)
        if row is None:
            row = self._row[key] = len(self._keys)
            self._keys.append(key)
            if row >= len(self._lengths):
                self._grow(2 * len(self._lengths))
        else:
            self._unindex(row)
        counts: dict[str, int] = {}
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
        positions: dict[str, int] = {}
        for term, count in counts.items():
            postings = self._postings.get(term)
            if postings is None:
                postings = self._postings[term] = _Postings()
            positions[term] = postings.add(row, count)
        self._terms[row] = positions
        self._live[row] = True
        self._lengths[row] = len(tokens)
        self._total += len(tokens)
        if vector is not None:
            self._matrix[row] = vector

    def remove(self, key: Any) -> None:
        row = self._row.pop(key, None)
        if row is None:
            return
        self._unindex(row)
        self._keys[row] = _GONE
        self._live[row] = False
        self._lengths[row] = 0
        if self.dim:
            self._matrix[row] = 0.0
        if len(self._keys) > 2 * max(len(self._row), 64):  # many removed: renumber the rows, same order
            self._compact()

    def _grow(self, size: int) -> None:
        lengths, live = np.zeros(size, dtype=np.float64), np.zeros(size, dtype=bool)
        lengths[:len(self._lengths)], live[:len(self._live)] = self._lengths, self._live
        matrix = np.zeros((size, self.dim or 0), dtype=np.float32)
        matrix[:len(self._matrix)] = self._matrix
        self._lengths, self._live, self._matrix = lengths, live, matrix

    def _unindex(self, row: int) -> None:
        for term, position in self._terms.pop(row, {}).items():
            postings = self._postings[term]
            postings.counts[position] = 0.0
            postings.dead += 1
            if not len(postings):
                del self._postings[term]
            elif postings.dead * 2 > postings.size:
                self._compact_postings(term, postings)
        self._total -= int(self._lengths[row])

    def _compact_postings(self, term: str, postings: _Postings) -> None:
        rows, counts = postings.live()
        fresh = _Postings()
        for row, count in zip(rows.tolist(), counts.tolist()):
            self._terms[row][term] = fresh.add(row, int(count))
        self._postings[term] = fresh

    def _compact(self) -> None:
        live = [row for row, key in enumerate(self._keys) if key is not _GONE]
        renumber = {old: new for new, old in enumerate(live)}
        size = max(64, 2 * len(live))
        lengths, held = np.zeros(size, dtype=np.float64), np.zeros(size, dtype=bool)
        lengths[:len(live)], held[:len(live)] = self._lengths[live], True
        matrix = np.zeros((size, self.dim or 0), dtype=np.float32)
        matrix[:len(live)] = self._matrix[live]
        self._keys = [self._keys[row] for row in live]
        self._lengths, self._live, self._matrix = lengths, held, matrix
        terms = {renumber[row]: {term: 0 for term in positions} for row, positions in self._terms.items()}
        self._row = {key: renumber[row] for key, row in self._row.items()}
        postings_of = self._postings
        self._terms, self._postings = terms, {}
        for term, postings in postings_of.items():
            fresh = self._postings[term] = _Postings()
            rows, counts = postings.live()
            for row, count in zip(rows.tolist(), counts.tolist()):
                self._terms[renumber[row]][term] = fresh.add(renumber[row], int(count))

    # -- BM25 -----------------------------------------------------------------------------------

    def _bm25(self, query_tokens: Sequence[str]) -> np.ndarray:
        """Every row's BM25 score (float32; 0 for a row that shares no term, or is gone)."""
        scores = np.zeros(len(self._keys), dtype=np.float32)
        n = len(self._row)
        if not n or not self._total:
            return scores
        average = np.float64(self._total) / n
        for token in query_tokens:  # in order, repeats counted each time, as bm25s sums them
            postings = self._postings.get(token)
            if postings is None:
                continue
            df = len(postings)
            idf = np.float32(math.log(1 + (n - df + 0.5) / (df + 0.5)))
            where, tf = postings.live()
            tfc = tf / (self.k1 * ((1 - self.b) + self.b * self._lengths[where] / average) + tf)
            scores[where] += (np.float64(idf) * tfc).astype(np.float32)
        return scores

    def scores(self, query_tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The documents' rows in order and their BM25 scores (float32, as
        :meth:`~tailor.retrieval.bm25.BM25Index.scores` before its float64 copy)."""
        rows = np.flatnonzero(self._live[:len(self._keys)])
        return rows, self._bm25(query_tokens)[rows]

    def ranked(self, query_tokens: Sequence[str], *, ties: Ties = "earlier") -> tuple[np.ndarray, np.ndarray]:
        """The rows of the documents that share a term with the query, best first (ties to
        the earlier row, or the later), and their scores."""
        scores = self._bm25(query_tokens)
        rows = np.flatnonzero(scores > 0)  # an IDF is always positive: a shared term scores
        return self._order(rows, scores[rows], ties)

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
        rows, scores = self._order(matched, scores_all[matched], ties)
        return [(self._keys[int(row)], float(score)) for row, score in zip(rows[:k], scores[:k])]

    # -- vectors --------------------------------------------------------------------------------

    def similarities(self, query_vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows held (ascending) and their cosine similarity to ``query_vector``."""
        if not self.dim:
            raise ValueError("this index keeps no vectors")
        held = len(self._keys)
        everything = self._matrix[:held] @ np.asarray(query_vector, dtype=np.float32)
        rows = np.flatnonzero(self._live[:held])
        return rows, everything[rows]


__all__ = ["LiveIndex", "Ties"]
