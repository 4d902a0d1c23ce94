"""The shipped hashing embedder: deterministic, normalized, and ranking meaningfully."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tailor.embeddings import EMBEDDERS, Embedder, load_embedder
from tailor.embeddings.hashing import HashingEmbedder
from tailor.registry import UnknownNameError


def test_satisfies_the_protocol_with_a_stable_name() -> None:
    embedder = HashingEmbedder(dim=64)
    assert isinstance(embedder, Embedder)
    assert embedder.dim == 64 and embedder.name == "hashing-v1-64"
    assert HashingEmbedder().name != embedder.name  # the dimension changes the vectors, so the name


def test_rows_are_unit_float32_and_empty_text_is_zero() -> None:
    matrix = HashingEmbedder().embed(["Volunteers planted trees", "the", ""])
    assert matrix.dtype == np.float32 and matrix.shape == (3, 256)
    assert np.linalg.norm(matrix[0]) == pytest.approx(1.0, abs=1e-6)
    assert not matrix[1].any() and not matrix[2].any()  # stop words only, and nothing at all
    assert HashingEmbedder().embed([]).shape == (0, 256)


def test_texts_sharing_words_are_closer_than_unrelated_texts() -> None:
    embedder = HashingEmbedder()
    query, related, stemmed, unrelated = embedder.embed([
        "volunteers planted trees along the river",
        "river volunteers planted new trees",
        "volunteer planting of a tree",
        "quarterly earnings beat market expectations",
    ])
    assert query @ related > query @ stemmed > query @ unrelated
    assert abs(query @ unrelated) < 0.2


def test_vectors_do_not_depend_on_the_process_or_the_batch() -> None:
    texts = ["Volunteers planted trees", "stock markets fell"]
    here = HashingEmbedder().embed(texts)
    assert np.array_equal(HashingEmbedder().embed(texts[1:])[0], here[1])
    code = ("import json, sys\nfrom tailor.embeddings.hashing import HashingEmbedder\n"
            "print(json.dumps(HashingEmbedder().embed(json.loads(sys.argv[1])).tolist()))")
    for seed in ("1", "2"):
        result = subprocess.run([sys.executable, "-c", code, json.dumps(texts)], capture_output=True, text=True,
                                check=True, timeout=60, env={**os.environ, "PYTHONHASHSEED": seed})
        assert np.array_equal(np.asarray(json.loads(result.stdout), dtype=np.float32), here)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="dim"):
        HashingEmbedder(dim=0)
    with pytest.raises(TypeError, match="sequence of strings"):
        HashingEmbedder().embed("one string")  # would embed per character
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        HashingEmbedder().embed(["ok", 3])  # type: ignore[list-item]


def test_registry_and_cached_factory() -> None:
    assert {"hashing", "minilm"} <= set(EMBEDDERS.names())
    assert load_embedder("hashing") is load_embedder("hashing")
    assert load_embedder("hashing", dim=32).dim == 32
    with pytest.raises(UnknownNameError, match="hashing, minilm"):
        load_embedder("word2vec")
