"""What only the ONNX Runtime GenAI backend has: its conversion and its directory spec.

The tiny model (tests/conftest.py) is converted by the real model builder in float32
(tests/backends/conftest.py); the contract it shares with the OpenVINO engine, against the
transformers one token for token, is checked in tests/backends/test_local_engines.py. The
default model's int4/int8 copies are checked in tests/backends/test_default_model.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.backends.test_local_engines import REQUESTS

pytest.importorskip("onnxruntime_genai")


def test_conversion_is_atomic_and_records_its_source(onnx_dir: Path, tiny_model_dir_wide_heads: Path) -> None:
    source = json.loads((onnx_dir / "SOURCE.json").read_text(encoding="utf-8"))
    assert source == {"source": str(tiny_model_dir_wide_heads), "precision": "fp32"}
    assert (onnx_dir / "genai_config.json").exists()
    assert not [p for p in onnx_dir.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_load_backend_takes_an_onnx_directory(onnx_dir: Path) -> None:
    from tailor.backends import load_backend

    with pytest.raises(ValueError, match="onnx:/path"):
        load_backend("onnx")
    # The directory holds the tokenizer files the builder copied, so no tokenizer path is needed.
    backend = load_backend(f"onnx:{onnx_dir}")
    assert backend.engine == "onnxruntime-genai"
    assert backend.generate([REQUESTS[2]])[0].tokens <= 5
