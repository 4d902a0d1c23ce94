"""Sparse retrieval: BM25 over one user's records, with the ``bm25s`` package."""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from operator import attrgetter
from typing import Any

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from tailor.retrieval.base import DocumentFn, check_k, rank_array, record_text, same_records
from tailor.types import HistoryRecord, Profile, RetrievalHit

# bm25s logs every index build at DEBUG level through its own handler; one per user is noise.
logging.getLogger("bm25s").setLevel(logging.WARNING)


# bm25s's tokenizer defaults: tests check that tokenize() splits exactly as bm25s.tokenize does.
_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_STOP_WORDS = frozenset(STOPWORDS_EN)
_record_id = attrgetter("id")

# A cached index: the records it was built from, the bm25s index, its vocabulary.
_Entry = tuple[tuple[HistoryRecord, ...], Any, dict[str, int]]


class BM25Retriever:
    """BM25 (Lucene variant, k1=1.5, b=0.75) over a user's records.

    Text is lower-cased, split into words of two or more characters, stripped of English
    stop words and stemmed (Snowball English). An index per user is built on first query
    and kept in a small LRU cache keyed by the user and their record ids, and checked
    against the records themselves (identity, then equality), so a changed profile (a
    record added, removed, or replaced under the same id) gets a fresh index while a
    repeated query against the same profile re-reads nothing.
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
        self._cache: OrderedDict[tuple[str, tuple[str, ...]], _Entry] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._split = re.compile(_TOKEN_PATTERN).findall

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        """Each text's terms: bm25s's tokenizer (lower-case, words of 2+ characters, no
        English stop words, Snowball stems), without its per-call overhead (it rebuilds the
        stop word set for every text, and builds a vocabulary we do not use)."""
        words = [[word for word in self._split(text.lower()) if word not in _STOP_WORDS] for text in texts]
        if self._stemmer is None:
            return words
        unique = list({word: None for document in words for word in document})
        stems = dict(zip(unique, self._stemmer.stemWords(unique)))
        return [[stems[word] for word in document] for document in words]

    def query_terms(self, query: str) -> list[str]:
        """``tokenize([query])[0]``: the terms of one query."""
        return self.tokenize([query])[0]

    def _index(self, profile: Profile) -> tuple[Any, dict[str, int]]:
        records = profile.records
        key = (profile.user_id, tuple(map(_record_id, records)))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and same_records(cached[0], records):
                self._cache.move_to_end(key)
                return cached[1], cached[2]
        corpus = self.tokenize([self.document(r) for r in records])
        # bm25s refuses an all-empty corpus; a placeholder token keeps such a profile searchable (all scores 0).
        # Only then: a placeholder beside real documents would lengthen the average document and skew every score.
        if not any(corpus):
            corpus = [["\x00"] for _ in corpus]
        index = bm25s.BM25(k1=self.k1, b=self.b)
        index.index(corpus, show_progress=False)
        vocabulary = dict(index.vocab_dict)
        with self._lock:
            self._cache[key] = (records, index, vocabulary)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return index, vocabulary

    def scores(self, query: str, profile: Profile) -> np.ndarray:
        """BM25 score of every record in ``profile`` for ``query``."""
        if not profile.records:
            return np.zeros(0)
        index, vocabulary = self._index(profile)
        terms = [t for t in self.query_terms(query) if t in vocabulary]
        if not terms:
            return np.zeros(len(profile.records))
        return np.asarray(index.get_scores(terms), dtype=float)

    def retrieve(self, query: str, profile: Profile, k: int) -> list[RetrievalHit]:
        check_k(k)
        if k == 0 or not profile.records:
            return []
        return rank_array(profile.records, self.scores(query, profile), k)
