"""Per-user memory, the survey's memory-based retrieval: facts about a user, found in their
conversations (statements picked by code, judged by the LLM, written as facts by code),
kept with their source and history, and searched (BM25 + dense, fused by rank) when the
user writes again.

What makes it safe to run on a live service, where mem0-style memories tend to go wrong:
the model can only propose facts, never delete; duplicates are dropped by normalized
value; a contradicted fact is superseded (kept, marked, with history), decided by code
on the fact's key; and every read and write names one ``user_id``.
"""

from tailor.memory.extraction import FactExtractor
from tailor.memory.facts import EXTRACTION_INSTRUCTION, Fact, parse_facts
from tailor.memory.search import TextEmbedder, hybrid_rank, reciprocal_rank_fusion
from tailor.memory.store import Memory, MemoryStore
from tailor.memory.worker import ExtractionWorker

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
