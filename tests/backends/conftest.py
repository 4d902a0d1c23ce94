"""The tiny random Llama converted for the two step-driven local engines (ONNX Runtime GenAI, OpenVINO).

Converted once a session, and the engines on them built once, because both the shared contract
suite (test_local_engines.py) and each engine's own tests (test_onnx_backend.py,
test_openvino_backend.py) use them. Each fixture skips when its engine's runtime is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def onnx_dir(tiny_model_dir_wide_heads: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wide-headed tiny model converted to ONNX in float32 by the real model builder."""
    pytest.importorskip("onnxruntime_genai")
    from tailor.backends.onnx import convert_to_onnx

    target = tmp_path_factory.mktemp("tiny-onnx") / "model"
    convert_to_onnx(tiny_model_dir_wide_heads, target, precision="fp32")
    return target


@pytest.fixture(scope="session")
def onnx_engines(tiny_model_dir_wide_heads: Path, onnx_dir: Path) -> tuple[Any, Any]:
    """The ONNX engine on :func:`onnx_dir` and the transformers engine on its source."""
    from tailor.backends.hf import TransformersBackend
    from tailor.backends.onnx import OnnxGenAIBackend

    return (OnnxGenAIBackend(str(onnx_dir), tokenizer_path=str(tiny_model_dir_wide_heads), batch_size=4),
            TransformersBackend(str(tiny_model_dir_wide_heads), batch_size=4))


@pytest.fixture(scope="session")
def openvino_dirs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny model exported by tailor's OpenVINO export, in float32 and in int8."""
    pytest.importorskip("openvino")
    from tailor.backends.openvino import convert_to_openvino

    folder = tmp_path_factory.mktemp("tiny-openvino")
    for precision in ("fp32", "int8"):
        convert_to_openvino(tiny_model_dir, folder / precision, precision=precision)  # type: ignore[arg-type]
    return {"fp32": folder / "fp32", "int8": folder / "int8"}


@pytest.fixture(scope="session")
def openvino_engines(tiny_model_dir: Path, openvino_dirs: dict[str, Path]) -> tuple[Any, Any]:
    """The OpenVINO engine on the float32 export and the transformers engine on its source."""
    from tailor.backends.hf import TransformersBackend
    from tailor.backends.openvino import OpenVINOBackend

    return (OpenVINOBackend(str(openvino_dirs["fp32"]), batch_size=4),
            TransformersBackend(str(tiny_model_dir), batch_size=4))
