"""Which base model an adapter belongs to.

A LoRA delta or a soft-prompt projector only means something on top of the exact weights
it was trained against. The identity kept beside every adapter is the model directory, a
hash of its ``config.json`` and of its ``SOURCE`` file (the GGUF file the default model
was converted from), and a short fingerprint of both that loaders compare.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tailor.registry import require

__all__ = ["base_model_identity", "check_same_base"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def base_model_identity(model_dir: str | os.PathLike[str]) -> dict[str, str]:
    """``{"name", "path", "config_sha256", "source", "fingerprint"}`` of a model directory."""
    directory = Path(model_dir)
    config = directory / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{directory} holds no config.json; is it a model directory?")
    config_hash = _sha256(config)
    source_file = directory / "SOURCE"
    source = source_file.read_text(encoding="utf-8").strip() if source_file.is_file() else ""
    fingerprint = hashlib.sha256(f"{config_hash}\n{source}\n{_sha256(source_file)}".encode()).hexdigest()[:16]
    return {"name": directory.name, "path": str(directory.resolve()), "config_sha256": config_hash,
            "source": source, "fingerprint": fingerprint}


def check_same_base(adapter: str, stored: dict[str, str] | None, running: dict[str, str]) -> None:
    """Raise ValueError when an adapter was trained on another base model than ``running``."""
    if not stored or stored.get("fingerprint") != running.get("fingerprint"):
        trained = (stored or {}).get("path", "an unknown model")
        raise ValueError(
            f"adapter {adapter} was trained on {trained} (fingerprint {(stored or {}).get('fingerprint')}), "
            f"but the backend runs {running.get('path')} (fingerprint {running.get('fingerprint')}); "
            "retrain it with tailor train-adapter on this model"
        )


@dataclass(frozen=True)
class FrozenBase:
    """A base model loaded for training on top of it: every weight frozen, in eval mode."""

    torch: Any
    model_dir: Path
    identity: dict[str, str]
    tokenizer: Any
    model: Any


def load_frozen_base(model_dir: str | os.PathLike[str], *, threads: int | None = None) -> FrozenBase:
    """The model and tokenizer of ``model_dir`` (float32, weights frozen) with its identity."""
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    if threads:
        torch.set_num_threads(threads)
    directory = Path(model_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, dtype=torch.float32)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return FrozenBase(torch, directory, base_model_identity(directory), tokenizer, model)
