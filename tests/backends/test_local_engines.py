"""The contract of the step-driven local engines (ONNX Runtime GenAI and OpenVINO, both on
tailor.backends.local.LocalEngine), each against the transformers engine on the same tiny random Llama.

Every test runs once per engine ("onnx", "openvino"). The tiny model (tests/conftest.py) is
converted in float32 (tests/backends/conftest.py), so each engine must agree with the
transformers one token for token. What only one engine has (its conversion, int8, its own
errors, OpenVINO's shared prefix) is checked in test_onnx_backend.py and test_openvino_backend.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.backends.streams import drain

from tailor.types import GenerationRequest


def ask(text: str, **options: Any) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},), **options)


REQUESTS = [
    ask("Name a fruit that is yellow.", max_new_tokens=12),
    ask("Write a headline about a volcano eruption in Iceland that closed every airport for a week.",
        max_new_tokens=16),
    ask("hi", max_new_tokens=5),
]


@dataclass(frozen=True)
class Engine:
    """One local engine under test, its transformers reference, and how to build another like it."""

    name: str  # the test id: "onnx" or "openvino"
    fast: Any
    reference: Any
    backend: type  # the engine's class
    directory: Path  # the float32 model it runs
    model_file: str  # the file a model directory must hold for it
    options: dict[str, Any] = field(default_factory=dict)  # what it needs besides the directory


@pytest.fixture(scope="module", params=[pytest.param("onnx", id="onnx"), pytest.param("openvino", id="openvino")])
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "onnx":
        onnx_dir: Path = request.getfixturevalue("onnx_dir")
        fast, reference = request.getfixturevalue("onnx_engines")
        source: Path = request.getfixturevalue("tiny_model_dir_wide_heads")
        return Engine("onnx", fast, reference, type(fast), onnx_dir, "genai_config.json",
                      {"tokenizer_path": str(source)})
    directories: dict[str, Path] = request.getfixturevalue("openvino_dirs")
    fast, reference = request.getfixturevalue("openvino_engines")
    return Engine("openvino", fast, reference, type(fast), directories["fp32"], "openvino_model.xml")


def test_greedy_texts_equal_the_transformers_engine(engine: Engine) -> None:
    mine, theirs = engine.fast.generate(REQUESTS), engine.reference.generate(REQUESTS)
    assert [r.text for r in mine] == [r.text for r in theirs]
    assert [r.tokens for r in mine] == [r.tokens for r in theirs]


def test_batches_give_the_texts_of_single_requests_in_request_order(engine: Engine) -> None:
    fast = engine.fast
    batched = fast.generate(REQUESTS)
    alone = [fast.generate([r])[0] for r in REQUESTS]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert fast.generate(REQUESTS) == batched  # deterministic
    assert [r.text for r in fast.generate(REQUESTS[::-1])] == [r.text for r in batched][::-1]


def test_token_limit_and_stop_strings(engine: Engine) -> None:
    fast = engine.fast
    free = fast.generate([ask("Tell me a story.", max_new_tokens=20)])[0]
    assert 0 < free.tokens <= 20
    # Stop at a piece of the free text: the reply ends right before it.
    words = free.text.split()
    if len(words) < 3:
        pytest.skip("the random model wrote too little to cut")
    marker = words[len(words) // 2]
    cut = fast.generate([ask("Tell me a story.", max_new_tokens=20, stop=(marker,))])[0]
    assert marker not in cut.text
    assert free.text.startswith(cut.text)
    assert cut.tokens <= free.tokens


@pytest.mark.parametrize("candidates", [
    pytest.param(("Paris", "a banana split", "Tokyo", "5"), id="four"),
    # Candidates of one and of several tokens, one the start of another: the prompt's cache is
    # put back between them.
    pytest.param(("Paris", "a banana split", "Tokyo", "5", "a banana"), id="with-a-prefix"),
])
def test_candidate_scores_equal_the_transformers_engine(engine: Engine, candidates: tuple[str, ...]) -> None:
    fast, reference = engine.fast, engine.reference
    request = ask("Which is it?", candidates=candidates)
    mine, theirs = fast.generate([request])[0], reference.generate([request])[0]
    assert mine.scores is not None and theirs.scores is not None
    assert set(mine.scores) == set(request.candidates or ())
    for candidate, score in theirs.scores.items():
        assert math.isclose(mine.scores[candidate], score, abs_tol=1e-3), candidate
    assert mine.text == theirs.text
    # Mixed with free-text requests, each gets its own kind of answer in its place.
    mixed = fast.generate([REQUESTS[0], request, REQUESTS[2]])
    assert mixed[1].scores == mine.scores and mixed[0].scores is None and mixed[2].scores is None
    assert mixed[0].text == fast.generate([REQUESTS[0]])[0].text


def test_stream_joins_to_the_generated_text(engine: Engine) -> None:
    fast = engine.fast
    request = ask("Write a headline about a volcano eruption in Iceland.", max_new_tokens=16)
    pieces, result = drain(fast.stream(request))
    assert "".join(pieces) == result.text == fast.generate([request])[0].text
    with pytest.raises(ValueError, match="scored"):
        next(fast.stream(ask("x", candidates=("a", "b"))))
    # Closing a stream early frees the engine for the next request. The OpenVINO engine's tiny model
    # writes text, so its stream stops after a first piece; the ONNX engine's tiny model replies with
    # tokens that decode to no text, so its stream has no piece to stop after and just ends.
    if engine.name == "openvino":
        assert pieces
    early = fast.stream(request)
    assert (next(early, None) is not None) == bool(pieces)
    early.close()
    assert fast.generate([request])[0].text == result.text


def test_counts_tokens_with_the_source_tokenizer(engine: Engine) -> None:
    for text in ("", "hello world", "Generate a subject for the following commit message: fix it"):
        assert engine.fast.count_tokens(text) == engine.reference.count_tokens(text)


def test_bad_arguments_say_what_is_wrong(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=engine.model_file):
        engine.backend(str(tmp_path))
    with pytest.raises(ValueError, match="batch_size"):
        engine.backend(str(engine.directory), **engine.options, batch_size=0)
    with pytest.raises(ValueError, match="threads"):
        engine.backend(str(engine.directory), **engine.options, threads=0)
    backend = engine.backend(str(engine.directory), **engine.options)
    with pytest.raises(ValueError, match="lora"):
        backend.generate(REQUESTS[:1], lora=["someone"])
