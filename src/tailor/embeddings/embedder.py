"""The embedder contract: texts in, L2-normalized float32 rows out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors, so that a dot product is a cosine similarity.

    ``name`` is a stable id of the model and its settings: a profile store keeps vectors
    under it, so two embedders with the same name must give the same vectors. ``dim`` is
    the vectors' dimension.
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A ``(len(texts), dim)`` float32 matrix of L2-normalized rows (a row of zeros
        where a text has nothing to embed)."""
        ...


def check_texts(texts: object, where: str) -> list[str]:
    """``texts`` as a list of strings; a lone string is refused (it would embed per character)."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise TypeError(f"{where}: texts must be a sequence of strings, got {type(texts).__name__}")
    checked = list(texts)
    for index, text in enumerate(checked):
        if not isinstance(text, str):
            raise TypeError(f"{where}: texts[{index}] is a {type(text).__name__}, expected str")
    return checked


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """A float32 copy of ``matrix`` with each row scaled to unit length; all-zero rows stay zero."""
    matrix = np.array(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix
