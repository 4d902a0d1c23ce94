"""Sparse retrieval: BM25 over one user's records, with the ``bm25s`` package."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

import bm25s
import numpy as np

from tailor.retrieval.base import DocumentFn, check_k, rank, record_text
from tailor.types import Profile, RetrievalHit

# bm25s logs every index build at DEBUG level through its own handler; one per user is noise.
logging.getLogger("bm25s").setLevel(logging.WARNING)


class BM25Retriever:
    """BM25 (Lucene variant, k1=1.5, b=0.75) over a user's records.

    Text is lower-cased, split into words of two or more characters, stripped of English
    stop words and stemmed (Snowball English). An index per user is built on first query
    and kept in a small LRU cache keyed by the user and the indexed text of their records,
    so a changed profile (a record added, removed, or replaced under the same id) gets a
    fresh index.
    """

    name = "bm25"

    def __init__(self, document: DocumentFn = record_text, *, k1: float = 1.5, b: float = 0.75,
                 stem: bool = True, cache_size: int = 128) -> None:
        self.document = document
        self.k1, self.b = k1, b
        self._stemmer: Any = None
        if stem:
            import Stemmer  # PyStemmer, a core dependency

            self._stemmer = Stemmer.Stemmer("english")
        self._cache: OrderedDict[tuple[str, int], tuple[tuple[str, ...], Any, dict[str, int]]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        tokens: list[list[str]] = bm25s.tokenize(
            texts, stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False
        )
        return tokens

    def _index(self, profile: Profile) -> tuple[Any, dict[str, int]]:
        # Keyed by text, not record ids: a store replaces a record under its id, and an index of the old text is stale.
        documents = tuple(self.document(r) for r in profile.records)
        key = (profile.user_id, hash(documents))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == documents:
                self._cache.move_to_end(key)
                return cached[1], cached[2]
        corpus = self.tokenize(list(documents))
        # bm25s refuses an all-empty corpus; a placeholder token keeps such a profile searchable (all scores 0).
        # Only then: a placeholder beside real documents would lengthen the average document and skew every score.
        if not any(corpus):
            corpus = [["\x00"] for _ in corpus]
        index = bm25s.BM25(k1=self.k1, b=self.b)
        index.index(corpus, show_progress=False)
        vocabulary = dict(index.vocab_dict)
        with self._lock:
            self._cache[key] = (documents, index, vocabulary)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return index, vocabulary

    def scores(self, query: str, profile: Profile) -> np.ndarray:
        """BM25 score of every record in ``profile`` for ``query``."""
        if not profile.records:
            return np.zeros(0)
        index, vocabulary = self._index(profile)
        terms = [t for t in self.tokenize([query])[0] if t in vocabulary]
        if not terms:
            return np.zeros(len(profile.records))
        return np.asarray(index.get_scores(terms), dtype=float)

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        check_k(k)
        if k == 0 or not profile.records:
            return []
        return rank(profile.records, list(self.scores(query, profile)), k)
