"""BM25 over one user's small corpus, compiled once and scored in microseconds.

:class:`~tailor.retrieval.bm25.BM25Retriever` builds a ``bm25s`` index per user on the
fly, which costs tens of milliseconds for a thousand records: fine offline, too slow on
a live request for a user whose index is not cached. Here the tokens of each text are
computed once (at write time) and a user's corpus is compiled into postings arrays that
can be stored as bytes and scored with numpy.

Tokens and scores match ``BM25Retriever`` exactly (same tokenizer: lower-cased words of
two or more characters, English stop words removed, Snowball stemming; Lucene BM25 with
k1=1.5, b=0.75), so serving ranks a profile as the offline evaluation does.
"""

from __future__ import annotations

import bisect
import math
import re
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from bm25s.stopwords import STOPWORDS_EN

_local = threading.local()
_split = re.compile(r"(?u)\b\w\w+\b").findall  # bm25s's token pattern
_STOP_WORDS = frozenset(STOPWORDS_EN)
_HEADER = struct.Struct("<iii")


def _stemmer() -> Any:
    # PyStemmer objects are not thread-safe: one per thread.
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer  # PyStemmer, a core dependency

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Each text's BM25 tokens, exactly as ``bm25s.tokenize`` (and so
    :class:`~tailor.retrieval.bm25.BM25Retriever`) makes them: lower-cased words of two or
    more characters, English stop words dropped, Snowball stems. Done here directly because
    ``bm25s.tokenize`` rebuilds its stop word set per text and builds a vocabulary we do not
    need, which made it the slowest part of indexing a profile."""
    words = [[word for word in _split(text.lower()) if word not in _STOP_WORDS] for text in texts]
    unique = list(dict.fromkeys(word for document in words for word in document))
    stems = dict(zip(unique, _stemmer().stemWords(unique)))
    return [[stems[word] for word in document] for document in words]


@dataclass(frozen=True)
class LexicalIndex:
    """Postings of a corpus: for the i-th term of the sorted ``vocabulary``, the documents
    ``documents[offsets[i]:offsets[i + 1]]`` hold it ``frequencies[...]`` times."""

    ids: tuple[str, ...]
    vocabulary: tuple[str, ...]
    lengths: np.ndarray
    offsets: np.ndarray
    documents: np.ndarray
    frequencies: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query_tokens: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> np.ndarray:
        """The BM25 score of every document; a token repeated in the query counts each time."""
        count = len(self.ids)
        scores = np.zeros(count, dtype=np.float64)
        if count == 0:
            return scores
        average = float(self.lengths.mean())
        if average <= 0:
            return scores
        norms = k1 * (1.0 - b + b * self.lengths / average)
        for token in query_tokens:
            position = bisect.bisect_left(self.vocabulary, token)
            if position == len(self.vocabulary) or self.vocabulary[position] != token:
                continue
            start, end = int(self.offsets[position]), int(self.offsets[position + 1])
            documents = self.documents[start:end]
            frequencies = self.frequencies[start:end]
            frequency = end - start
            idf = math.log(1.0 + (count - frequency + 0.5) / (frequency + 0.5))
            scores[documents] += idf * frequencies / (frequencies + norms[documents])
        return scores

    def top(self, query_tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Up to ``k`` (document index, score) pairs with a positive score, best first,
        ties in corpus order."""
        if k <= 0:
            return []
        scores = self.scores(query_tokens)
        matched = np.flatnonzero(scores > 0)
        if matched.size == 0:
            return []
        order = matched[np.argsort(-scores[matched], kind="stable")][:k]
        return [(int(i), float(scores[i])) for i in order]

    # -- bytes -------------------------------------------------------------------------------

    def arrays_bytes(self) -> bytes:
        """The numeric arrays as one little-endian blob (ids and vocabulary are kept apart)."""
        header = _HEADER.pack(len(self.ids), len(self.vocabulary), int(self.documents.size))
        parts = (self.lengths, self.offsets, self.documents, self.frequencies)
        return header + b"".join(np.ascontiguousarray(a, dtype="<i4").tobytes() for a in parts)

    @classmethod
    def from_parts(cls, ids: Sequence[str], vocabulary: Sequence[str], blob: bytes) -> LexicalIndex:
        documents_count, terms_count, postings = _HEADER.unpack_from(blob)
        if documents_count != len(ids) or terms_count != len(vocabulary):
            raise ValueError("lexical index blob does not match its ids and vocabulary")
        sizes = (documents_count, terms_count + 1, postings, postings)
        arrays = []
        offset = _HEADER.size
        for size in sizes:
            arrays.append(np.frombuffer(blob, dtype="<i4", count=size, offset=offset))
            offset += 4 * size
        return cls(tuple(ids), tuple(vocabulary), *arrays)


def compile_index(ids: Sequence[str], token_lists: Sequence[Sequence[str]]) -> LexicalIndex:
    """The postings of documents ``ids`` whose tokens are ``token_lists``."""
    if len(ids) != len(token_lists):
        raise ValueError(f"compile_index: {len(ids)} ids but {len(token_lists)} token lists")
    count = len(ids)
    lengths = np.fromiter((len(tokens) for tokens in token_lists), dtype=np.int64, count=count)
    flat = [token for tokens in token_lists for token in tokens]
    vocabulary = sorted(set(flat))
    position = {token: index for index, token in enumerate(vocabulary)}
    terms = np.fromiter((position[token] for token in flat), dtype=np.int64, count=len(flat))
    documents = np.repeat(np.arange(count, dtype=np.int64), lengths)
    # One key per (term, document) occurrence; unique keys, sorted, are the postings in
    # term order then document order, and their counts the term frequencies.
    pairs, frequencies = np.unique(terms * max(count, 1) + documents, return_counts=True)
    pair_terms = pairs // max(count, 1)
    offsets = np.searchsorted(pair_terms, np.arange(len(vocabulary) + 1))
    return LexicalIndex(
        ids=tuple(ids),
        vocabulary=tuple(vocabulary),
        lengths=lengths.astype(np.int32),
        offsets=offsets.astype(np.int32),
        documents=(pairs % max(count, 1)).astype(np.int32),
        frequencies=frequencies.astype(np.int32),
    )


__all__ = ["LexicalIndex", "compile_index", "tokenize"]
