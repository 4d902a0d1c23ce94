"""What only the OpenVINO backend has: its export, its int8 weights, its own errors and the
prefix a batch shares.

The tiny model (tests/conftest.py) is exported by tailor's own OpenVINO export in float32 and
int8 (tests/backends/conftest.py); the contract it shares with the ONNX engine, against the
transformers one token for token, is checked in tests/backends/test_local_engines.py. The
default model's OpenVINO copies are checked in tests/backends/test_default_model.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.backends.test_local_engines import REQUESTS, ask

from tailor.types import GenerationRequest

pytest.importorskip("openvino")


def test_export_is_atomic_and_records_its_source(openvino_dirs: dict[str, Path], tiny_model_dir: Path) -> None:
    for precision, folder in openvino_dirs.items():
        source = json.loads((folder / "SOURCE.json").read_text(encoding="utf-8"))
        assert source["source"] == str(tiny_model_dir) and source["precision"] == precision
        assert (folder / "openvino_model.xml").exists() and (folder / "tokenizer.json").exists()
    assert not [p for p in openvino_dirs["fp32"].parent.iterdir() if p.name.startswith(".")]  # no staging left
    # int8 weights take about a quarter of the float32 file.
    assert (openvino_dirs["int8"] / "openvino_model.bin").stat().st_size < 0.5 * (
        openvino_dirs["fp32"] / "openvino_model.bin").stat().st_size


def test_int8_weights_stay_close_to_float32(openvino_dirs: dict[str, Path],
                                            openvino_engines: tuple[Any, Any]) -> None:
    from tailor.backends.openvino import OpenVINOBackend

    fp32, _ = openvino_engines
    int8 = OpenVINOBackend(str(openvino_dirs["int8"]), batch_size=4)
    request = ask("Which is it?", candidates=("Paris", "a banana split", "Tokyo"))
    close, exact = int8.generate([request])[0], fp32.generate([request])[0]
    assert close.scores is not None and exact.scores is not None
    for candidate in request.candidates or ():
        assert abs(close.scores[candidate] - exact.scores[candidate]) < 0.5, candidate
    assert all(r.tokens > 0 for r in int8.generate(REQUESTS))


def test_export_errors_say_what_is_wrong(tmp_path: Path) -> None:
    from tailor.backends.openvino import convert_to_openvino

    with pytest.raises(ValueError, match="precision"):
        convert_to_openvino(tmp_path, tmp_path / "out", precision="int4")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="no config.json"):
        convert_to_openvino(tmp_path, tmp_path / "out", precision="fp32")
    assert not (tmp_path / "out").exists()


def test_load_backend_takes_an_openvino_directory(openvino_dirs: dict[str, Path]) -> None:
    from tailor.backends import load_backend

    with pytest.raises(ValueError, match="openvino:/path"):
        load_backend("openvino")
    backend = load_backend(f"openvino:{openvino_dirs['int8']}", batch_size=2)
    assert backend.engine == "openvino"
    assert backend.generate([REQUESTS[2]])[0].tokens <= 5


def test_a_prefix_the_batch_shares_runs_once_with_the_same_outputs(openvino_engines: tuple[Any, Any]) -> None:
    fast, reference = openvino_engines
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
