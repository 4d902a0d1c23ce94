"""The llama.cpp backend: an optional extra, never installed in CI.

Without ``llama_cpp`` only the missing-extra error is tested; with it, the default
model's GGUF file is run for real.
"""

from __future__ import annotations

import importlib.util
import math

import pytest

from tailor.backends import load_backend
from tailor.registry import MissingExtraError
from tailor.types import GenerationRequest

HAS_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None


@pytest.mark.skipif(HAS_LLAMA_CPP, reason="llama_cpp is installed")
def test_without_the_extra_loading_names_it() -> None:
    with pytest.raises(MissingExtraError, match=r"pip install 'tailor-llm\[llamacpp\]'"):
        load_backend("llamacpp:/models/any.gguf")
    with pytest.raises(MissingExtraError, match=r"tailor-llm\[llamacpp\]"):
        load_backend("llamacpp")


@pytest.mark.model
def test_the_default_gguf_generates_and_scores() -> None:
    pytest.importorskip("llama_cpp")
    backend = load_backend("llamacpp", n_ctx=1024)
    ask = ({"role": "user", "content": "Is the sky blue? Answer yes or no."},)
    [free, scored] = backend.generate([
        GenerationRequest(messages=ask, max_new_tokens=8, stop=("\n",)),
        GenerationRequest(messages=ask, max_new_tokens=8, candidates=("yes", "no")),
    ])
    assert free.text and "\n" not in free.text and 0 < free.tokens <= 8
    assert scored.text in ("yes", "no")
    assert scored.scores is not None and all(math.isfinite(v) and v < 0 for v in scored.scores.values())
    assert backend.count_tokens("hello world") >= 2
