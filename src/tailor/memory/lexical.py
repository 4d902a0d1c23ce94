"""Former home of a second BM25; memory and the server now use :mod:`tailor.retrieval.bm25`.

These names remain only for ``server/record_index.py`` and ``memory/store.py`` until they
import from :mod:`tailor.retrieval.bm25` directly; nothing here computes anything.
"""

from __future__ import annotations

from tailor.retrieval.bm25 import BM25Index, tokenize

LexicalIndex = BM25Index
compile_index = BM25Index.build

__all__ = ["LexicalIndex", "compile_index", "tokenize"]
