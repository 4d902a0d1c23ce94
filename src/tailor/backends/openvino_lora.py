"""LoRA adapters applied at run time on the OpenVINO engine: one compiled model serves every
adapter of the same layout, each batch row with its own user's adapter.

A user's own adapter (or soup) serves one user, so it is not merged into weights of its
own (:mod:`tailor.backends.merged` does that for shared adapters). Instead the model is
exported once per *layout*, the set of adapted linear layers (``tailor train-adapter``
adapts the query, key, value and output projections of the top six layers), with each
of those layers computing ``W x + x @ A @ B`` where ``A`` (``[batch, in, rank]``) and
``B`` (``[batch, rank, out]``, the adapter's scaling folded in) are inputs of the model
(:func:`tailor.backends.openvino.export_model`). So users with different adapters share
a batch: a row without an adapter, or whose adapter leaves a layer alone, gets zeros
there, and a lower rank than the batch's highest is padded with zeros (the update is the
same). The rank is a dynamic dimension, so one export serves every rank (a user adapter
stacked on a global one, rank 16, beside a plain rank-8 one). The base weights keep the
export's precision (int8, or float32 for ``default:fp32``); the adapter products run in
float32. Exports are kept under ``$TAILOR_HOME/models/lora/``, named by the source model,
the layout and the precision, so each is made once (about half a minute).

The matrices are set once per batch (the loop keeps a batch's rows in place until it
ends); the prompt start a batch shares is not run once for all rows, since its cache
depends on each row's adapter.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tailor.backends.merged import KeptByName
from tailor.backends.model_files import tailor_home
from tailor.backends.openvino import LORA_INPUT_PREFIX, OpenVINOBackend, Precision, convert_to_openvino, exported_once
from tailor.registry import require

if TYPE_CHECKING:
    from tailor.adapters.lora import LoRAWeights
    from tailor.adapters.runtime import LoRAChoice

logger = logging.getLogger(__name__)

__all__ = ["AdapterInputs", "LoadedAdapters", "OpenVINOLoRABackend", "layout_name", "linear_layers",
           "lora_openvino_dir"]

_EXPORT_LOCK = threading.Lock()


@dataclass(frozen=True)
class AdapterInputs:
    """One LoRA as the exported model takes it, per adapted layer: ``down`` = ``A.T``
    (``[in, rank]``) and ``up`` = ``scaling * B.T`` (``[rank, out]``), float32 arrays."""

    rank: int
    down: Mapping[str, Any]
    up: Mapping[str, Any]

    @classmethod
    def of(cls, weights: LoRAWeights) -> AdapterInputs:
        np = require("numpy", "hf")
        down, up = {}, {}
        for module in weights.modules():
            a = weights.tensors[module + ".lora_A.weight"].float()
            b = weights.tensors[module + ".lora_B.weight"].float() * weights.shape.scaling
            down[module] = np.ascontiguousarray(a.numpy().T)
            up[module] = np.ascontiguousarray(b.numpy().T)
        rank = max((matrix.shape[1] for matrix in down.values()), default=0)
        return cls(rank, down, up)

    @property
    def modules(self) -> tuple[str, ...]:
        """The adapted layers' paths, sorted: the layout this adapter needs."""
        return tuple(sorted(self.down))

    def misfits(self, layers: Mapping[str, tuple[int, int]]) -> list[str]:
        """The adapted layers that are not among ``layers`` (path -> in and out features) with these sizes."""
        return [module for module in self.modules
                if layers.get(module) != (self.down[module].shape[0], self.up[module].shape[1])]


class LoadedAdapters:
    """Adapters' inputs by name, loaded from the store on first use; the ``capacity`` most
    recently used kept (a batch may use more: they stay referenced until it ends)."""

    def __init__(self, capacity: int = 8) -> None:
        self._kept = KeptByName(capacity, what="LoadedAdapters")

    @property
    def capacity(self) -> int:
        return self._kept.capacity

    def get(self, choice: LoRAChoice) -> AdapterInputs:
        inputs: AdapterInputs = self._kept.get(choice.name, lambda: AdapterInputs.of(choice.load()))
        return inputs


def linear_layers(source: Path) -> dict[str, tuple[int, int]]:
    """The linear layers of the model in ``source`` and their in and out features, read from
    its config (the model is built without weights)."""
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    config = transformers.AutoConfig.from_pretrained(source, local_files_only=True)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    return {name: (module.in_features, module.out_features) for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)}


def layout_name(source: Path, modules: Sequence[str]) -> str:
    """A name for the export of ``source`` with LoRA inputs on ``modules``."""
    return hashlib.sha256(f"{source.resolve()}\n{','.join(sorted(modules))}".encode()).hexdigest()[:20]


def lora_openvino_dir(source: Path, modules: Sequence[str], precision: Precision) -> Path:
    """The OpenVINO export of the model in ``source`` with LoRA inputs on ``modules``, made on
    first use (in a staging folder renamed into place when complete)."""
    def export(target: Path) -> None:
        logger.warning("exporting the model with LoRA inputs on %d layers, for every adapter of that layout (once)",
                       len(modules))
        convert_to_openvino(source, target, precision=precision, lora_modules=sorted(modules))

    return exported_once(tailor_home() / "models" / "lora" / f"{layout_name(source, modules)}-{precision}",
                         _EXPORT_LOCK, export)


class OpenVINOLoRABackend(OpenVINOBackend):
    """A model exported with LoRA inputs (:func:`lora_openvino_dir`), run by OpenVINO, each
    batch row with its own LoRA adapter: ``generate(requests, lora=[...])`` and
    ``stream(request, lora=...)`` take :class:`~tailor.adapters.runtime.LoRAChoice` values
    (``None``: no adapter). An adapter must adapt only layers the export takes
    (:meth:`fits`). ``adapters`` is where loaded adapters are kept (shared between the
    engines of a backend); by default one of ``adapter_capacity``.
    """

    name = "openvino-lora"
    engine = "openvino-lora"
    applies_lora = True

    def __init__(self, path: str, *, adapters: LoadedAdapters | None = None, adapter_capacity: int = 8,
                 batch_size: int = 8, max_input_tokens: int = 2048,
                 candidate_score: Literal["mean", "sum"] = "mean", threads: int | None = None,
                 options: Mapping[str, Any] | None = None) -> None:
        super().__init__(path, batch_size=batch_size, max_input_tokens=max_input_tokens,
                         candidate_score=candidate_score, threads=threads, options=options)
        self.layers: dict[str, tuple[int, int]] = {}
        for port in self._compiled.inputs:
            name = port.get_any_name()
            if name.startswith(LORA_INPUT_PREFIX) and name.endswith(".A"):
                down = port.get_partial_shape()
                up = self._compiled.input(name[:-2] + ".B").get_partial_shape()
                self.layers[name[len(LORA_INPUT_PREFIX):-2]] = (down[1].get_length(), up[2].get_length())
        if not self.layers:
            raise ValueError(f"{path!r} has no LoRA inputs; export one with: python -m tailor.backends.openvino "
                             "--lora MODULE,... SOURCE_DIR TARGET_DIR")
        self.adapters = adapters if adapters is not None else LoadedAdapters(adapter_capacity)
        self._inputs: list[Any] = []  # the arrays the request's LoRA tensors read from, kept alive

    def fits(self, choice: LoRAChoice) -> bool:
        """Whether ``choice`` adapts only layers this model takes LoRA inputs for (with their sizes)."""
        return not self.adapters.get(choice).misfits(self.layers)

    def _select_adapters(self, choices: Sequence[LoRAChoice | None]) -> None:
        np = self.np
        ov = require("openvino", "hf")
        loaded = [self.adapters.get(choice) if choice is not None else None for choice in choices]
        for choice, inputs in zip(choices, loaded):
            if choice is not None and inputs is not None and inputs.misfits(self.layers):
                raise ValueError(f"adapter {choice.name} changes {inputs.misfits(self.layers)[:3]}, which "
                                 f"{self.model_id} takes no LoRA inputs for")
        rank = max([inputs.rank for inputs in loaded if inputs is not None] + [1])
        self._inputs = []
        for module, (inside, outside) in self.layers.items():
            down = np.zeros((len(choices), inside, rank), dtype=np.float32)
            up = np.zeros((len(choices), rank, outside), dtype=np.float32)
            for row, inputs in enumerate(loaded):
                if inputs is not None and module in inputs.down:
                    own = inputs.down[module].shape[1]
                    down[row, :, :own] = inputs.down[module]
                    up[row, :own, :] = inputs.up[module]
            for suffix, array in ((".A", down), (".B", up)):
                self._request.set_tensor(f"{LORA_INPUT_PREFIX}{module}{suffix}", ov.Tensor(array, shared_memory=True))
                self._inputs.append(array)

    def _shared_prefix(self, prompts: list[list[int]]) -> int:
        return 0  # the cache of a shared prompt start depends on each row's adapter
