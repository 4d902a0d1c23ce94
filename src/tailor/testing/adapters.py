"""Random LoRA adapters for tests: weights that really change a model's outputs, made in
milliseconds, so adapter serving can be tested without training."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tailor.adapters.identity import base_model_identity
from tailor.adapters.lora import LoRAShape, LoRAWeights, to_bytes
from tailor.adapters.store import AdapterKey, AdapterStore
from tailor.registry import require

TEST_SHAPE = LoRAShape(4, 8.0, ("q_proj", "v_proj"), (2, 3))
"""Rank 4 on the query and value projections of layers 2 and 3."""


def random_adapter(model_dir: str | Path, seed: int, *, shape: LoRAShape = TEST_SHAPE,
                   scale: float = 2.0) -> LoRAWeights:
    """A LoRA for the Llama-style model in ``model_dir`` with random A and B (B is not
    zero, so unlike a freshly initialized adapter it changes the outputs)."""
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    config = transformers.AutoConfig.from_pretrained(model_dir, local_files_only=True)
    generator = torch.Generator().manual_seed(seed)
    hidden = config.hidden_size
    kv = config.num_key_value_heads * (hidden // config.num_attention_heads)
    outputs = {"q_proj": hidden, "k_proj": kv, "v_proj": kv, "o_proj": hidden}
    tensors = {}
    for layer in shape.layers if shape.layers is not None else range(config.num_hidden_layers):
        for name in shape.target_modules:
            module = f"model.layers.{layer}.self_attn.{name}"
            tensors[module + ".lora_A.weight"] = torch.randn(shape.rank, hidden, generator=generator) * scale
            tensors[module + ".lora_B.weight"] = torch.randn(outputs[name], shape.rank, generator=generator) * scale
    return LoRAWeights(shape, tensors)


def save_adapter(store: AdapterStore, key: AdapterKey, weights: LoRAWeights, model_dir: str | Path, *,
                 on_top_of: str | None = None, contributors: Sequence[str] = ()) -> str:
    """Store ``weights`` under ``key`` as made for the model in ``model_dir``; the digest."""
    info = store.save(key, to_bytes(weights), config={"lora": weights.shape.to_dict()},
                      base_model=base_model_identity(model_dir), metadata={"on_top_of": on_top_of},
                      contributors=contributors)
    return info.digest


__all__ = ["TEST_SHAPE", "random_adapter", "save_adapter"]
