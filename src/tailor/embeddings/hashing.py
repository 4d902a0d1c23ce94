"""A hashing embedder: deterministic, numpy only, and good enough to rank by.

Each text becomes a bag of features, its words and the character trigrams of each word,
hashed into ``dim`` buckets with a sign (the "hashing trick"); counts are dampened
(``1 + log tf``) and the vector is L2-normalized. Texts that share words share buckets,
so they come out closer than unrelated texts; trigrams add credit for shared stems
("planted" and "planting"). The hash is BLAKE2b, not Python's ``hash()``, which is salted
per process and would give different vectors in every run.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from tailor.embeddings.embedder import check_texts

_WORD = re.compile(r"\w+")
# Frequent function words: left in, any two English texts would look alike.
_STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "he", "her", "his",
    "i", "in", "is", "it", "its", "of", "on", "or", "our", "she", "so", "that", "the", "their", "them",
    "they", "this", "to", "was", "we", "were", "what", "when", "which", "who", "will", "with", "you", "your"
})
_TRIGRAM_WEIGHT = 0.5


class HashingEmbedder:
    """Words and character trigrams hashed into ``dim`` signed buckets (the test embedder)."""

    def __init__(self, dim: int = 256) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 8:
            raise ValueError(f"HashingEmbedder: dim must be an integer of at least 8, got {dim!r}")
        self.dim = dim
        # The name carries every setting that changes the vectors: a store keys vectors by it.
        self.name = f"hashing-v1-{dim}"
        self._bucket = lru_cache(maxsize=1 << 16)(self._hash)

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim})"

    def _hash(self, feature: str) -> tuple[int, float]:
        digest = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
        return digest % self.dim, 1.0 if (digest >> 63) & 1 else -1.0

    def features(self, text: str) -> Counter[str]:
        """The weighted features of one text: ``w:word`` (weight 1) and ``c:tri`` (weight 0.5)."""
        counts: Counter[str] = Counter()
        for word in _WORD.findall(text.lower()):
            if word in _STOP_WORDS:
                continue
            counts["w:" + word] += 1
            padded = f"#{word}#"
            for start in range(len(padded) - 2):
                counts["c:" + padded[start:start + 3]] += 1
        return counts

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A ``(len(texts), dim)`` float32 matrix of L2-normalized rows."""
        checked = check_texts(texts, "HashingEmbedder.embed")
        matrix = np.zeros((len(checked), self.dim), dtype=np.float64)
        for row, text in enumerate(checked):
            for feature, count in self.features(text).items():
                bucket, sign = self._bucket(feature)
                weight = 1.0 if feature.startswith("w:") else _TRIGRAM_WEIGHT
                matrix[row, bucket] += sign * weight * (1.0 + math.log(count))
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        np.divide(matrix, norms, out=matrix, where=norms > 0)
        return matrix.astype(np.float32)
