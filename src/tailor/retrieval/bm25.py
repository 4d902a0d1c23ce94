"""Sparse retrieval: the one tokenizer and the one BM25 (``bm25s``) of tailor.

:func:`tokenize` makes the terms of every text tailor searches (profile records, memories,
episodes, the server's stored indexes). :class:`BM25Index` is a corpus compiled by
``bm25s`` (Lucene BM25, k1=1.5, b=0.75): its precomputed term-document scores can be kept
as bytes (the server stores one per user) and score a query in microseconds.
:class:`BM25Retriever` ranks one user's records with it, building and caching the index
of a profile on first use.
"""

from __future__ import annotations

import logging
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from tailor.retrieval.retriever import DocumentFn, as_hits, check_k, rank_array, record_text, same_records
from tailor.types import HistoryRecord, Profile, RetrievalHit

if TYPE_CHECKING:
    from tailor.retrieval.stored import StoredIndexes

# bm25s logs every index build at DEBUG level through its own handler; one per user is noise.
logging.getLogger("bm25s").setLevel(logging.WARNING)

# bm25s's tokenizer defaults: tests check that tokenize() splits exactly as bm25s.tokenize does.
_split = re.compile(r"(?u)\b\w\w+\b").findall
_STOP_WORDS = frozenset(STOPWORDS_EN)
_local = threading.local()
_record_id = attrgetter("id")
# A corpus whose documents all lack terms: bm25s refuses it, so each gets this token, which
# no query has (only then: beside real documents it would lengthen the average document).
_PLACEHOLDER = "\x00"
_MAGIC = b"bm25s\x01"
_HEADER = struct.Struct("<iiq")  # documents, terms, stored scores
_OLD_HEADER = struct.Struct("<iii")  # the numpy postings the server stored before bm25s


def _stemmer() -> Any:
    # PyStemmer objects are not thread-safe: one per thread.
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer  # PyStemmer, a core dependency

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def tokenize(texts: Sequence[str], *, stem: bool = True) -> list[list[str]]:
    """Each text's BM25 terms, exactly as ``bm25s.tokenize`` makes them: lower-cased words
    of two or more characters, English stop words dropped, Snowball stems (unless
    ``stem`` is false). Done here directly because ``bm25s.tokenize`` rebuilds its stop
    word set per text and builds a vocabulary that is not needed."""
    words = [[word for word in _split(text.lower()) if word not in _STOP_WORDS] for text in texts]
    if not stem:
        return words
    unique = list(dict.fromkeys(word for document in words for word in document))
    stems = dict(zip(unique, _stemmer().stemWords(unique)))
    return [[stems[word] for word in document] for document in words]


class BM25Index:
    """Documents ``ids`` compiled by ``bm25s``: for term ``vocabulary[t]``, the documents
    ``indices[indptr[t]:indptr[t + 1]]`` score ``data[...]`` (bm25s's eager index)."""

    def __init__(self, ids: Sequence[str], vocabulary: Sequence[str], data: np.ndarray, indices: np.ndarray,
                 indptr: np.ndarray) -> None:
        self.ids = tuple(ids)
        self.vocabulary = tuple(vocabulary)
        self.data, self.indices, self.indptr = data, indices, indptr
        self._positions = {term: position for position, term in enumerate(self.vocabulary)}

    @classmethod
    def build(cls, ids: Sequence[str], token_lists: Sequence[Sequence[str]], *, k1: float = 1.5,
              b: float = 0.75) -> BM25Index:
        """The index of documents ``ids`` whose terms are ``token_lists``."""
        if len(ids) != len(token_lists):
            raise ValueError(f"BM25Index.build: {len(ids)} ids but {len(token_lists)} token lists")
        if not ids:
            return cls((), (), np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(1, np.int64))
        corpus = [list(tokens) for tokens in token_lists]
        if not any(corpus):
            corpus = [[_PLACEHOLDER] for _ in corpus]
        index = bm25s.BM25(k1=k1, b=b)
        index.index(corpus, show_progress=False)
        scores = index.scores
        # bm25s's vocabulary ends with "", a term of no document and without scores.
        vocabulary = [""] * (len(scores["indptr"]) - 1)
        for term, position in index.vocab_dict.items():
            if position < len(vocabulary):
                vocabulary[position] = term
        return cls(ids, vocabulary, np.asarray(scores["data"]), np.asarray(scores["indices"]),
                   np.asarray(scores["indptr"]))

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """The BM25 score of every document; a term repeated in the query counts each time."""
        known = [self._positions[token] for token in query_tokens if token in self._positions]
        if not known or not self.ids:
            return np.zeros(len(self.ids))
        scores = bm25s.BM25._compute_relevance_from_scores(
            self.data, self.indptr, self.indices, len(self.ids), np.asarray(known, dtype=np.int64), np.float32)
        return np.asarray(scores, dtype=np.float64)

    def top(self, query_tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Up to ``k`` (document index, score) pairs with a positive score, best first, ties
        in corpus order."""
        if k <= 0:
            return []
        scores = self.scores(query_tokens)
        matched = np.flatnonzero(scores > 0)
        order = matched[np.argsort(-scores[matched], kind="stable")][:k]
        return [(int(i), float(scores[i])) for i in order]

    # -- bytes -------------------------------------------------------------------------------

    def arrays_bytes(self) -> bytes:
        """The score arrays as one little-endian blob (ids and vocabulary are kept apart)."""
        header = _MAGIC + _HEADER.pack(len(self.ids), len(self.vocabulary), int(self.data.size))
        return header + b"".join((np.ascontiguousarray(self.data, dtype="<f4").tobytes(),
                                  np.ascontiguousarray(self.indices, dtype="<i4").tobytes(),
                                  np.ascontiguousarray(self.indptr, dtype="<i8").tobytes()))

    @classmethod
    def from_parts(cls, ids: Sequence[str], vocabulary: Sequence[str], blob: bytes) -> BM25Index:
        """The index :meth:`arrays_bytes` wrote. A blob of the earlier numpy postings
        (which the server stored before) is read too, and compiled again."""
        if not blob.startswith(_MAGIC):
            return cls._from_postings(ids, vocabulary, blob)
        documents, terms, stored = _HEADER.unpack_from(blob, len(_MAGIC))
        if documents != len(ids) or terms != len(vocabulary):
            raise ValueError("BM25 index blob does not match its ids and vocabulary")
        offset = len(_MAGIC) + _HEADER.size
        data = np.frombuffer(blob, dtype="<f4", count=stored, offset=offset)
        indices = np.frombuffer(blob, dtype="<i4", count=stored, offset=offset + 4 * stored)
        indptr = np.frombuffer(blob, dtype="<i8", count=terms + 1, offset=offset + 8 * stored)
        return cls(ids, vocabulary, data, indices, indptr)

    @classmethod
    def _from_postings(cls, ids: Sequence[str], vocabulary: Sequence[str], blob: bytes) -> BM25Index:
        documents, terms, postings = _OLD_HEADER.unpack_from(blob)
        if documents != len(ids) or terms != len(vocabulary):
            raise ValueError("BM25 index blob does not match its ids and vocabulary")
        offset = _OLD_HEADER.size + 4 * documents  # the document lengths are not needed
        offsets = np.frombuffer(blob, dtype="<i4", count=terms + 1, offset=offset)
        offset += 4 * (terms + 1)
        holders = np.frombuffer(blob, dtype="<i4", count=postings, offset=offset)
        counts = np.frombuffer(blob, dtype="<i4", count=postings, offset=offset + 4 * postings)
        token_lists: list[list[str]] = [[] for _ in ids]
        for term_index, term in enumerate(vocabulary):
            for position in range(int(offsets[term_index]), int(offsets[term_index + 1])):
                token_lists[int(holders[position])].extend([term] * int(counts[position]))
        return cls.build(ids, token_lists)


# A cached index: the records it was built from, and their index.
_Entry = tuple[tuple[HistoryRecord, ...], BM25Index]


class BM25Retriever:
    """BM25 (Lucene variant, k1=1.5, b=0.75) over a user's records, with :func:`tokenize`'s
    terms.

    An index per user is built on first query and kept in a small LRU cache keyed by the
    user and their record ids, and checked against the records themselves (identity, then
    equality), so a changed profile (a record added, removed, or replaced under the same
    id) gets a fresh index while a repeated query against the same profile re-reads
    nothing. ``k`` is always filled: records that share no term with the query follow the
    matching ones, in profile order.

    With ``indexes`` (``tailor serve``) the user's compiled index is read from the store
    (:class:`~tailor.retrieval.record_index.RecordIndex`: the same terms and BM25, default
    ``k1``, ``b`` and stemming) and only ``profile.user_id`` is read from the profile.
    """

    name = "bm25"

    def __init__(self, document: DocumentFn = record_text, *, k1: float = 1.5, b: float = 0.75,
                 stem: bool = True, cache_size: int = 128, indexes: StoredIndexes | None = None) -> None:
        self.document = document
        self.k1, self.b, self.stem = k1, b, stem
        self.indexes = indexes
        self._cache: OrderedDict[tuple[str, tuple[str, ...]], _Entry] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        """:func:`tokenize` with this retriever's stemming."""
        return tokenize(texts, stem=self.stem)

    def query_terms(self, query: str) -> list[str]:
        """``tokenize([query])[0]``: the terms of one query."""
        return self.tokenize([query])[0]

    def _index(self, profile: Profile) -> tuple[BM25Index]:
        records = profile.records
        key = (profile.user_id, tuple(map(_record_id, records)))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and same_records(cached[0], records):
                self._cache.move_to_end(key)
                return (cached[1],)
        index = BM25Index.build(key[1], self.tokenize([self.document(r) for r in records]), k1=self.k1, b=self.b)
        with self._lock:
            self._cache[key] = (records, index)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return (index,)

    def scores(self, query: str, profile: Profile) -> np.ndarray:
        """BM25 score of every record in ``profile`` for ``query``."""
        if not profile.records:
            return np.zeros(0)
        return self._index(profile)[0].scores(self.query_terms(query))

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        check_k(k)
        if self.indexes is not None:
            return self._stored(query, profile.user_id, k)
        if k == 0 or not profile.records:
            return []
        return rank_array(profile.records, self.scores(query, profile), k)

    def _stored(self, query: str, user_id: str, k: int) -> list[RetrievalHit]:
        assert self.indexes is not None  # the caller checked
        hits = self.indexes.hits(user_id, self.indexes.index.rank(user_id, query, k))
        if len(hits) >= k:
            return hits
        # As over a profile, k is filled with the records that share no term, in profile
        # order; fewer than k matched, so the first 2k - 1 records hold enough of them.
        records = [hit.record for hit in hits]
        chosen = {record.id for record in records}
        rest = [r for r in self.indexes.first_records(user_id, 2 * k - 1) if r.id not in chosen]
        return as_hits(records + rest[:k - len(records)])


__all__ = ["BM25Index", "BM25Retriever", "tokenize"]
