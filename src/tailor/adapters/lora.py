"""LoRA weights as tailor stores them, and the one operation OPPU-style stacking needs.

Weights are a safetensors file in bytes whose keys are module paths inside the causal LM
(``model.layers.24.self_attn.q_proj.lora_A.weight``), independent of PEFT's wrapper
prefix. The LoRA shape is kept in the adapter's config under ``"lora"``: rank, alpha,
target modules and adapted layers.

Stacking: a user adapter is trained on top of the task-level (global) one, so at
inference the user's delta must be added to the global one. Two LoRAs on the same
module sum to a single LoRA of rank ``r1 + r2``::

    s1 B1 A1 + s2 B2 A2 = [s1 B1 | s2 B2] @ [A1 ; A2]      (scaling 1)

so a stacked adapter is served as one PEFT adapter, and users with different stacks can
share one batch through PEFT's mixed-adapter inference (``adapter_names``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tailor.registry import require

__all__ = ["LoRAShape", "LoRAWeights", "compose", "from_bytes", "to_bytes"]

_PEFT_PREFIX = "base_model.model."
_A, _B = ".lora_A.weight", ".lora_B.weight"


@dataclass(frozen=True)
class LoRAShape:
    """The PEFT LoRA settings an adapter's weights were made with."""

    rank: int
    alpha: float
    target_modules: tuple[str, ...]
    layers: tuple[int, ...] | None = None
    """Adapted decoder layers (``None``: all of them)."""

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "alpha": self.alpha, "target_modules": list(self.target_modules),
                "layers": list(self.layers) if self.layers is not None else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoRAShape:
        layers = data.get("layers")
        return cls(int(data["rank"]), float(data["alpha"]), tuple(data["target_modules"]),
                   tuple(int(i) for i in layers) if layers is not None else None)

    def peft_config(self, *, inference: bool = True) -> Any:
        peft = require("peft", "peft")
        return peft.LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=0.0, bias="none",
                               target_modules=list(self.target_modules),
                               layers_to_transform=list(self.layers) if self.layers is not None else None,
                               inference_mode=inference)


@dataclass(frozen=True)
class LoRAWeights:
    """A LoRA's tensors by module path, and its shape."""

    shape: LoRAShape
    tensors: Mapping[str, Any]

    def modules(self) -> list[str]:
        """The adapted module paths, sorted."""
        return sorted(key[: -len(_A)] for key in self.tensors if key.endswith(_A))

    def to_peft(self) -> dict[str, Any]:
        """The tensors keyed as PEFT's ``set_peft_model_state_dict`` expects them."""
        return {_PEFT_PREFIX + key: value for key, value in self.tensors.items()}

    @classmethod
    def from_peft(cls, shape: LoRAShape, state: Mapping[str, Any]) -> LoRAWeights:
        tensors = {key.removeprefix(_PEFT_PREFIX): value.detach().clone().contiguous() for key, value in state.items()}
        return cls(shape, tensors)

    def delta(self, module: str) -> Any:
        """The full weight update ``scaling * B @ A`` of one module."""
        return self.shape.scaling * (self.tensors[module + _B] @ self.tensors[module + _A])


def to_bytes(weights: LoRAWeights) -> bytes:
    """The tensors as safetensors bytes (the shape goes into the adapter's config)."""
    safetensors_torch = require("safetensors.torch", "hf")
    return bytes(safetensors_torch.save({key: value.contiguous() for key, value in sorted(weights.tensors.items())}))


def from_bytes(data: bytes, shape: LoRAShape | Mapping[str, Any]) -> LoRAWeights:
    safetensors_torch = require("safetensors.torch", "hf")
    if not isinstance(shape, LoRAShape):
        shape = LoRAShape.from_dict(shape)
    return LoRAWeights(shape, safetensors_torch.load(bytes(data)))


def compose(parts: Sequence[LoRAWeights], weights: Sequence[float] | None = None) -> LoRAWeights:
    """One LoRA whose update is the sum of ``parts``' updates (rank = the sum of ranks), each
    times its entry of ``weights`` when given: ``sum(w_i * s_i * B_i @ A_i)``.

    A module adapted by only some parts gets zero blocks for the others; the scalings (and
    weights) are folded into the B matrices, so the result's scaling is 1. With weights this
    is PEFT's ``add_weighted_adapter(..., combination_type="cat")``: the weighted sum of the
    updates, exactly, as one LoRA (personalized soups merge per-pole adapters this way).
    """
    torch = require("torch", "hf")
    if not parts:
        raise ValueError("compose needs at least one LoRA")
    if weights is not None:
        if len(weights) != len(parts):
            raise ValueError(f"compose: {len(parts)} LoRAs but {len(weights)} weights")
        parts = [LoRAWeights(part.shape, {key: value * float(weight) if key.endswith(_B) else value
                                          for key, value in part.tensors.items()})
                 for part, weight in zip(parts, weights)]
    if len(parts) == 1:
        return parts[0]
    modules = sorted({module for part in parts for module in part.modules()})
    rank = sum(part.shape.rank for part in parts)
    tensors: dict[str, Any] = {}
    for module in modules:
        sample = next(p for p in parts if module + _A in p.tensors)
        in_features = sample.tensors[module + _A].shape[1]
        out_features = sample.tensors[module + _B].shape[0]
        blocks_a, blocks_b = [], []
        for part in parts:
            if module + _A in part.tensors:
                blocks_a.append(part.tensors[module + _A])
                blocks_b.append(part.tensors[module + _B] * part.shape.scaling)
            else:
                blocks_a.append(torch.zeros(part.shape.rank, in_features))
                blocks_b.append(torch.zeros(out_features, part.shape.rank))
        tensors[module + _A] = torch.cat(blocks_a, dim=0).contiguous()
        tensors[module + _B] = torch.cat(blocks_b, dim=1).contiguous()
    targets = tuple(sorted({name for part in parts for name in part.shape.target_modules}))
    layer_sets = [part.shape.layers for part in parts]
    layers = None if any(s is None for s in layer_sets) else tuple(sorted({i for s in layer_sets if s for i in s}))
    return LoRAWeights(LoRAShape(rank, float(rank), targets, layers), tensors)
