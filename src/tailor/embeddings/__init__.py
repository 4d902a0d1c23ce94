"""Text embedders: ``minilm`` (all-MiniLM-L6-v2, offline, the ``dense`` extra) and
``hashing`` (numpy only, for tests), and the ingestion step that stores record vectors.

``load_embedder(name)`` builds an embedder once per process and hands out the same one
after, so several retrievers (``dense``, ``hybrid``, ``recency+dense``) share one model.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tailor.registry import Registry

if TYPE_CHECKING:
    from tailor.embeddings.embedder import Embedder, normalize_rows
    from tailor.embeddings.ingest import EmbedReport, embed_profiles

EMBEDDERS = Registry(
    "embedder",
    {
        "minilm": "tailor.embeddings.minilm:MiniLMEmbedder",
        "hashing": "tailor.embeddings.hashing:HashingEmbedder",
    },
    group="tailor.embedders",
    extras={"minilm": "dense"},
)

DEFAULT_EMBEDDER = "minilm"

TRAINED_METADATA = "tailor-retriever.json"
"""The file beside a trained retriever's weights (``tailor train-retriever``): the name its
vectors are stored under, and what it was trained on."""

_loaded: dict[str, Embedder] = {}
_loading = threading.Lock()


def load_embedder(name: str = DEFAULT_EMBEDDER, **options: Any) -> Embedder:
    """The embedder registered as ``name``, built on first use and reused after.

    With ``options`` (constructor keyword arguments) a fresh embedder is built each time.
    """
    if options:
        return EMBEDDERS.load(name)(**options)  # type: ignore[no-any-return]
    with _loading:  # a model loads once even when threads ask for it together
        if name not in _loaded:
            _loaded[name] = EMBEDDERS.load(name)()
        return _loaded[name]


def load_embedder_folder(path: str) -> Embedder:
    """The embedder in the folder ``path`` (a retriever ``tailor train-retriever`` wrote), built
    on first use and reused after; its vectors are stored under the name its metadata gives."""
    import json
    from pathlib import Path

    folder = Path(path).expanduser()
    metadata = folder / TRAINED_METADATA
    if not metadata.is_file():
        raise ValueError(f"{path} is not a retriever trained by tailor train-retriever (no {TRAINED_METADATA} "
                         "in it)")
    key = f"folder:{folder.resolve()}"
    with _loading:
        if key not in _loaded:
            name = str(json.loads(metadata.read_text(encoding="utf-8"))["name"])
            _loaded[key] = EMBEDDERS.load("minilm")(model_path=folder, name=name)
        return _loaded[key]


def __getattr__(name: str) -> Any:
    # Imported on first use: listing embedders loads no numpy.
    if name in ("Embedder", "normalize_rows"):
        from tailor.embeddings import embedder as base

        return getattr(base, name)
    if name in ("EmbedReport", "embed_profiles"):
        from tailor.embeddings import ingest

        return getattr(ingest, name)
    raise AttributeError(f"module 'tailor.embeddings' has no attribute {name!r}")


__all__ = ["DEFAULT_EMBEDDER", "EMBEDDERS", "TRAINED_METADATA", "EmbedReport", "Embedder", "embed_profiles", "load_embedder",
           "load_embedder_folder", "normalize_rows"]
