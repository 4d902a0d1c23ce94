"""The OpenVINO backend against the transformers one, on the same tiny random Llama.

The tiny model (tests/conftest.py) is exported by tailor's own OpenVINO export in float32,
so both engines must agree token for token; its int8 export must stay close. The default
model's OpenVINO copies are checked in tests/backends/test_default_model.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from tests.backends.streams import drain

from tailor.types import GenerationRequest

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tailor.backends.openvino import convert_to_openvino

    folder = tmp_path_factory.mktemp("tiny-openvino")
    for precision in ("fp32", "int8"):
        convert_to_openvino(tiny_model_dir, folder / precision, precision=precision)  # type: ignore[arg-type]
    return {"fp32": folder / "fp32", "int8": folder / "int8"}


@pytest.fixture(scope="module")
def engines(tiny_model_dir: Path, exported: dict[str, Path]) -> tuple[Any, Any]:
    from tailor.backends.hf import TransformersBackend
    from tailor.backends.openvino import OpenVINOBackend

    return OpenVINOBackend(str(exported["fp32"]), batch_size=4), TransformersBackend(str(tiny_model_dir), batch_size=4)


def ask(text: str, **options: Any) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},), **options)


REQUESTS = [
    ask("Name a fruit that is yellow.", max_new_tokens=12),
    ask("Write a headline about a volcano eruption in Iceland that closed every airport for a week.",
        max_new_tokens=16),
    ask("hi", max_new_tokens=5),
]


def test_export_is_atomic_and_records_its_source(exported: dict[str, Path], tiny_model_dir: Path) -> None:
    for precision, folder in exported.items():
        source = json.loads((folder / "SOURCE.json").read_text(encoding="utf-8"))
        assert source["source"] == str(tiny_model_dir) and source["precision"] == precision
        assert (folder / "openvino_model.xml").exists() and (folder / "tokenizer.json").exists()
    assert not [p for p in exported["fp32"].parent.iterdir() if p.name.startswith(".")]  # no staging left
    # int8 weights take about a quarter of the float32 file.
    assert (exported["int8"] / "openvino_model.bin").stat().st_size < 0.5 * (
        exported["fp32"] / "openvino_model.bin").stat().st_size


def test_greedy_texts_equal_the_transformers_engine(engines: tuple[Any, Any]) -> None:
    fast, reference = engines
    mine, theirs = fast.generate(REQUESTS), reference.generate(REQUESTS)
    assert [r.text for r in mine] == [r.text for r in theirs]
    assert [r.tokens for r in mine] == [r.tokens for r in theirs]


def test_batches_give_the_texts_of_single_requests_in_request_order(engines: tuple[Any, Any]) -> None:
    fast, _ = engines
    batched = fast.generate(REQUESTS)
    alone = [fast.generate([r])[0] for r in REQUESTS]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert fast.generate(REQUESTS) == batched  # deterministic
    assert [r.text for r in fast.generate(REQUESTS[::-1])] == [r.text for r in batched][::-1]


def test_token_limit_and_stop_strings(engines: tuple[Any, Any]) -> None:
    fast, _ = engines
    free = fast.generate([ask("Tell me a story.", max_new_tokens=20)])[0]
    assert 0 < free.tokens <= 20
    words = free.text.split()
    if len(words) < 3:
        pytest.skip("the random model wrote too little to cut")
    marker = words[len(words) // 2]
    cut = fast.generate([ask("Tell me a story.", max_new_tokens=20, stop=(marker,))])[0]
    assert marker not in cut.text
    assert free.text.startswith(cut.text)
    assert cut.tokens <= free.tokens


def test_candidate_scores_equal_the_transformers_engine(engines: tuple[Any, Any]) -> None:
    fast, reference = engines
    # Candidates of one and of several tokens: the prompt's cache is put back between them.
    request = ask("Which is it?", candidates=("Paris", "a banana split", "Tokyo", "5", "a banana"))
    mine, theirs = fast.generate([request])[0], reference.generate([request])[0]
    assert mine.scores is not None and theirs.scores is not None
    assert set(mine.scores) == set(request.candidates or ())
    for candidate, score in theirs.scores.items():
        assert math.isclose(mine.scores[candidate], score, abs_tol=1e-3), candidate
    assert mine.text == theirs.text
    mixed = fast.generate([REQUESTS[0], request, REQUESTS[2]])
    assert mixed[1].scores == mine.scores and mixed[0].scores is None and mixed[2].scores is None
    assert mixed[0].text == fast.generate([REQUESTS[0]])[0].text


def test_int8_weights_stay_close_to_float32(exported: dict[str, Path], engines: tuple[Any, Any]) -> None:
    from tailor.backends.openvino import OpenVINOBackend

    fp32, _ = engines
    int8 = OpenVINOBackend(str(exported["int8"]), batch_size=4)
    request = ask("Which is it?", candidates=("Paris", "a banana split", "Tokyo"))
    close, exact = int8.generate([request])[0], fp32.generate([request])[0]
    assert close.scores is not None and exact.scores is not None
    for candidate in request.candidates or ():
        assert abs(close.scores[candidate] - exact.scores[candidate]) < 0.5, candidate
    assert all(r.tokens > 0 for r in int8.generate(REQUESTS))


def test_stream_joins_to_the_generated_text(engines: tuple[Any, Any]) -> None:
    fast, _ = engines
    request = ask("Write a headline about a volcano eruption in Iceland.", max_new_tokens=16)
    pieces, result = drain(fast.stream(request))
    assert "".join(pieces) == result.text == fast.generate([request])[0].text
    with pytest.raises(ValueError, match="scored"):
        next(fast.stream(ask("x", candidates=("a", "b"))))
    # Closing a stream early frees the engine for the next request.
    early = fast.stream(request)
    next(early)
    early.close()
    assert fast.generate([request])[0].text == result.text


def test_counts_tokens_with_the_source_tokenizer(engines: tuple[Any, Any]) -> None:
    fast, reference = engines
    for text in ("", "hello world", "Generate a subject for the following commit message: fix it"):
        assert fast.count_tokens(text) == reference.count_tokens(text)


def test_bad_arguments_say_what_is_wrong(exported: dict[str, Path], tmp_path: Path) -> None:
    from tailor.backends.openvino import OpenVINOBackend, convert_to_openvino

    with pytest.raises(FileNotFoundError, match="openvino_model.xml"):
        OpenVINOBackend(str(tmp_path))
    with pytest.raises(ValueError, match="batch_size"):
        OpenVINOBackend(str(exported["fp32"]), batch_size=0)
    with pytest.raises(ValueError, match="threads"):
        OpenVINOBackend(str(exported["fp32"]), threads=0)
    with pytest.raises(ValueError, match="precision"):
        convert_to_openvino(tmp_path, tmp_path / "out", precision="int4")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="no config.json"):
        convert_to_openvino(tmp_path, tmp_path / "out", precision="fp32")
    assert not (tmp_path / "out").exists()
    backend = OpenVINOBackend(str(exported["fp32"]))
    with pytest.raises(ValueError, match="lora"):
        backend.generate(REQUESTS[:1], lora=["someone"])


def test_load_backend_takes_an_openvino_directory(exported: dict[str, Path]) -> None:
    from tailor.backends import load_backend

    with pytest.raises(ValueError, match="openvino:/path"):
        load_backend("openvino")
    backend = load_backend(f"openvino:{exported['int8']}", batch_size=2)
    assert backend.engine == "openvino"
    assert backend.generate([REQUESTS[2]])[0].tokens <= 5


def test_a_prefix_the_batch_shares_runs_once_with_the_same_outputs(engines: tuple[Any, Any]) -> None:
    fast, reference = engines
    system = {"role": "system", "content": "You write short headlines for a local newspaper, in plain words, "
                                           "without quotes, and never more than ten words."}
    requests = [GenerationRequest(messages=(system, {"role": "user", "content": text}), max_new_tokens=10)
                for text in ("A fire at the bakery.", "The mayor resigned after a long dispute over the budget.", "Snow")]
    prompts = [fast.prompt_ids(r) for r in requests]
    assert fast.min_shared_prefix == 0 and fast._shared_prefix(prompts) == 0  # off by default
    whole = fast.generate(requests)
    try:
        fast.min_shared_prefix = 16
        assert fast._shared_prefix(prompts) >= 16
        shared = fast.generate(requests)
    finally:
        fast.min_shared_prefix = type(fast).min_shared_prefix
    assert shared == whole
    assert [r.text for r in shared] == [r.text for r in reference.generate(requests)]
