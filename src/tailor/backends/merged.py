"""Adapters shared by many users, merged into the weights of the fast engine's model.

A global or persona adapter serves every user who has no adapter of their own, so the fast
engine runs it as a model of its own: the float32 weights plus the adapter's update
(``W + scaling * B @ A`` in every adapted layer), exported for OpenVINO like the default
model (int8 weights where the CPU has int8 dot-product instructions) and kept under
``$TAILOR_HOME/models/merged/``, named by the adapter's content digest, so it is made once
(about a minute) and reused by every later run. A user's own adapter is not merged (one
export per user would cost more than it saves): it is applied at run time by one model
for every adapter of its layout (:mod:`tailor.backends.openvino_lora`).

:class:`KeptByName` keeps what a backend has made by name (compiled models, merged or with
LoRA inputs; loaded adapters), the most recently used few in memory.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailor.backends.model_files import tailor_home
from tailor.registry import require

if TYPE_CHECKING:
    from tailor.adapters.lora import LoRAWeights
    from tailor.adapters.runtime import LoRAChoice

logger = logging.getLogger(__name__)

__all__ = ["KeptByName", "merge_into", "merged_openvino_dir"]

_LOCK = threading.Lock()


def merge_into(model: Any, weights: LoRAWeights) -> int:
    """Add ``weights``' update to ``model``'s float32 weights in place; the number of layers changed.

    Every adapted module must exist in ``model`` with the adapter's shapes (an adapter of
    another model is refused, naming the module)."""
    torch = require("torch", "hf")
    changed = 0
    with torch.no_grad():
        for module in weights.modules():
            try:
                layer = model.get_submodule(module)
            except AttributeError as error:
                raise ValueError(f"the adapter changes {module!r}, which the model does not have") from error
            delta = weights.delta(module).to(layer.weight.dtype)
            if tuple(delta.shape) != tuple(layer.weight.shape):
                raise ValueError(f"the adapter's update of {module!r} is {tuple(delta.shape)}, the model's weight "
                                 f"{tuple(layer.weight.shape)}: an adapter of another model")
            layer.weight.add_(delta)
            changed += 1
    return changed


def merged_openvino_dir(source: Path, choice: LoRAChoice, precision: str) -> Path:
    """The OpenVINO export of the model in ``source`` with ``choice``'s adapter merged in,
    made on first use (in a staging folder renamed into place when complete)."""
    from tailor.backends.openvino import exported_once

    digest = hashlib.sha256(f"{source.resolve()}\n{choice.name}".encode()).hexdigest()[:20]
    return exported_once(tailor_home() / "models" / "merged" / f"{digest}-{precision}", _LOCK,
                         lambda target: _merge_and_export(source, choice, precision, target))


def _merge_and_export(source: Path, choice: LoRAChoice, precision: str, target: Path) -> None:
    from tailor.backends.openvino import convert_to_openvino

    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    logger.warning("merging adapter %s into the model for the fast engine (once, about a minute)", choice.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".merge-", dir=target.parent))
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32,
                                                                  local_files_only=True)
        merge_into(model, choice.load())
        model.save_pretrained(work, safe_serialization=True)
        del model
        for file in source.iterdir():  # tokenizer, chat template, generation config
            if file.is_file() and not (work / file.name).exists() and not file.name.endswith(
                    (".safetensors", ".bin", ".gguf")):
                shutil.copy2(file, work / file.name)
        convert_to_openvino(work, target, precision=precision)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(work, ignore_errors=True)


class KeptByName:
    """Values by name (compiled models, loaded adapters), each made on first use, the
    ``capacity`` most recently used kept."""

    def __init__(self, capacity: int = 2, *, what: str = "KeptByName") -> None:
        if capacity < 1:
            raise ValueError(f"{what} capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._engines: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, make: Callable[[], Any]) -> Any:
        """The value called ``name``, made by ``make()`` when it is not kept."""
        with self._lock:
            engine = self._engines.get(name)
            if engine is None:
                engine = self._engines[name] = make()
            self._engines.move_to_end(name)
            while len(self._engines) > self.capacity:
                self._engines.popitem(last=False)
            return engine

    def __len__(self) -> int:
        return len(self._engines)
