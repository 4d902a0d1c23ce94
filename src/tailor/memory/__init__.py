"""Per-user memory, the survey's memory-based retrieval: facts about a user, found in their
conversations (statements picked by code, judged by the LLM, written as facts by code),
kept with their source and history, and searched (BM25 + dense, fused by rank) when the
user writes again.

What makes it safe to run on a live service, where mem0-style memories tend to go wrong:
the model can only propose facts, never delete; duplicates are dropped by normalized
value; a contradicted fact is superseded (kept, marked, with history), decided by code
on the fact's key; and every read and write names one ``user_id``.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use, so that a light part (facts, extraction) does not load the search
# stack (bm25s, numpy) with the package.
_WHERE = {
    "FactExtractor": "tailor.memory.extraction", "EXTRACTION_INSTRUCTION": "tailor.memory.facts",
    "Fact": "tailor.memory.facts", "parse_facts": "tailor.memory.facts", "TextEmbedder": "tailor.memory.search",
    "hybrid_rank": "tailor.memory.search", "reciprocal_rank_fusion": "tailor.memory.search",
    "Memory": "tailor.memory.store", "MemoryStore": "tailor.memory.store", "ExtractionWorker": "tailor.memory.worker",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'tailor.memory' has no attribute {name!r}")


__all__ = [
    "EXTRACTION_INSTRUCTION",
    "ExtractionWorker",
    "Fact",
    "FactExtractor",
    "Memory",
    "MemoryStore",
    "TextEmbedder",
    "hybrid_rank",
    "parse_facts",
    "reciprocal_rank_fusion",
]
