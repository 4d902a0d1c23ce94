"""The ONNX Runtime GenAI backend against the transformers one, on the same tiny random Llama.

The tiny model (tests/conftest.py) is converted by the real model builder in float32, so
both engines must agree token for token; the default model's int4/int8 copies are
checked in tests/backends/test_default_model.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from tests.backends.streams import drain

from tailor.types import GenerationRequest

pytest.importorskip("onnxruntime_genai")


@pytest.fixture(scope="module")
def onnx_dir(tiny_model_dir_wide_heads: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tailor.backends.onnx import convert_to_onnx

    target = tmp_path_factory.mktemp("tiny-onnx") / "model"
    convert_to_onnx(tiny_model_dir_wide_heads, target, precision="fp32")
    return target


@pytest.fixture(scope="module")
def engines(tiny_model_dir_wide_heads: Path, onnx_dir: Path) -> tuple[Any, Any]:
    from tailor.backends.hf import TransformersBackend
    from tailor.backends.onnx import OnnxGenAIBackend

    return (OnnxGenAIBackend(str(onnx_dir), tokenizer_path=str(tiny_model_dir_wide_heads), batch_size=4),
            TransformersBackend(str(tiny_model_dir_wide_heads), batch_size=4))


def ask(text: str, **options: Any) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},), **options)


REQUESTS = [
    ask("Name a fruit that is yellow.", max_new_tokens=12),
    ask("Write a headline about a volcano eruption in Iceland that closed every airport for a week.",
        max_new_tokens=16),
    ask("hi", max_new_tokens=5),
]


def test_conversion_is_atomic_and_records_its_source(onnx_dir: Path, tiny_model_dir_wide_heads: Path) -> None:
    source = json.loads((onnx_dir / "SOURCE.json").read_text(encoding="utf-8"))
    assert source == {"source": str(tiny_model_dir_wide_heads), "precision": "fp32"}
    assert (onnx_dir / "genai_config.json").exists()
    assert not [p for p in onnx_dir.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_greedy_texts_equal_the_transformers_engine(engines: tuple[Any, Any]) -> None:
    onnx, reference = engines
    assert [r.text for r in onnx.generate(REQUESTS)] == [r.text for r in reference.generate(REQUESTS)]
    assert [r.tokens for r in onnx.generate(REQUESTS)] == [r.tokens for r in reference.generate(REQUESTS)]


def test_batches_give_the_texts_of_single_requests_in_request_order(engines: tuple[Any, Any]) -> None:
    onnx, _ = engines
    batched = onnx.generate(REQUESTS)
    alone = [onnx.generate([r])[0] for r in REQUESTS]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert onnx.generate(REQUESTS) == batched  # deterministic


def test_token_limit_and_stop_strings(engines: tuple[Any, Any]) -> None:
    onnx, _ = engines
    free = onnx.generate([ask("Tell me a story.", max_new_tokens=20)])[0]
    assert 0 < free.tokens <= 20
    # Stop at a piece of the free text: the reply ends right before it.
    words = free.text.split()
    marker = words[len(words) // 2] if len(words) > 2 else None
    if marker is None:
        pytest.skip("the random model wrote too little to cut")
    cut = onnx.generate([ask("Tell me a story.", max_new_tokens=20, stop=(marker,))])[0]
    assert marker not in cut.text
    assert free.text.startswith(cut.text)
    assert cut.tokens <= free.tokens


def test_candidate_scores_equal_the_transformers_engine(engines: tuple[Any, Any]) -> None:
    onnx, reference = engines
    request = ask("Which is it?", candidates=("Paris", "a banana split", "Tokyo", "5"))
    mine, theirs = onnx.generate([request])[0], reference.generate([request])[0]
    assert mine.scores is not None and theirs.scores is not None
    assert set(mine.scores) == set(request.candidates or ())
    for candidate, score in theirs.scores.items():
        assert math.isclose(mine.scores[candidate], score, abs_tol=1e-3), candidate
    assert mine.text == theirs.text
    # Mixed with free-text requests, each gets its own kind of answer in its place.
    mixed = onnx.generate([REQUESTS[0], request, REQUESTS[2]])
    assert mixed[1].scores == mine.scores and mixed[0].scores is None and mixed[2].scores is None


def test_stream_joins_to_the_generated_text(engines: tuple[Any, Any]) -> None:
    onnx, _ = engines
    request = ask("Write a headline about a volcano eruption in Iceland.", max_new_tokens=16)
    pieces, result = drain(onnx.stream(request))
    assert "".join(pieces) == result.text == onnx.generate([request])[0].text
    with pytest.raises(ValueError, match="scored"):
        next(onnx.stream(ask("x", candidates=("a", "b"))))


def test_counts_tokens_with_the_source_tokenizer(engines: tuple[Any, Any]) -> None:
    onnx, reference = engines
    for text in ("", "hello world", "Generate a subject for the following commit message: fix it"):
        assert onnx.count_tokens(text) == reference.count_tokens(text)


def test_bad_arguments_say_what_is_wrong(onnx_dir: Path, tiny_model_dir_wide_heads: Path, tmp_path: Path) -> None:
    from tailor.backends.onnx import OnnxGenAIBackend

    with pytest.raises(FileNotFoundError, match="genai_config.json"):
        OnnxGenAIBackend(str(tmp_path))
    with pytest.raises(ValueError, match="batch_size"):
        OnnxGenAIBackend(str(onnx_dir), tokenizer_path=str(tiny_model_dir_wide_heads), batch_size=0)
    with pytest.raises(ValueError, match="threads"):
        OnnxGenAIBackend(str(onnx_dir), tokenizer_path=str(tiny_model_dir_wide_heads), threads=0)
    backend = OnnxGenAIBackend(str(onnx_dir), tokenizer_path=str(tiny_model_dir_wide_heads))
    with pytest.raises(ValueError, match="lora"):
        backend.generate(REQUESTS[:1], lora=["someone"])


def test_load_backend_takes_an_onnx_directory(onnx_dir: Path) -> None:
    from tailor.backends import load_backend

    with pytest.raises(ValueError, match="onnx:/path"):
        load_backend("onnx")
    # The directory holds the tokenizer files the builder copied, so no tokenizer path is needed.
    backend = load_backend(f"onnx:{onnx_dir}")
    assert backend.engine == "onnxruntime-genai"
    assert backend.generate([REQUESTS[2]])[0].tokens <= 5
