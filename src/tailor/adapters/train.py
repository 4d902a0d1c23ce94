"""Training LoRA adapters on history pairs, OPPU-style, fast enough for a CPU.

One :class:`LoRATrainer` loads the base model once and trains many adapters with it:
the task-level (global) adapter on every training user's history, then one adapter per
user (or per persona) on that user's own history, *on top of* the global one.

Stacking: before a user adapter is trained, the global adapter's update ``s B A`` is
merged into a copy of the adapted weights in memory (the originals are kept and restored
before the next stack), and a fresh LoRA is trained against the merged model. The user
adapter is stored alone and records the digest of the adapter it was trained on; at
inference the two are summed into one LoRA (:func:`tailor.adapters.lora.compose`).

Why it fits a CPU budget (a user with 100 items in under a minute on 2 cores):

- LoRA adapts only the top ``top_layers`` decoder layers (default 6 of SmolLM2's 30).
  The layers below see no trainable weight, so their output for each training sequence
  is computed once, with gradients off, and cached; every epoch then runs only the top
  layers forward and backward. With two epochs this costs about one plain forward pass
  over the data, instead of three passes per epoch.
- Logits are computed only at the target positions (the output tokens), not over the
  49k-word vocabulary for every prompt token.
- Inputs are cut to ``max_input_tokens`` (the article's first ~48 tokens carry most of
  what a headline needs; the prompt is otherwise the one used at inference).
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from tailor.adapters.data import EncodedPair, TrainingPair, encode_pairs
from tailor.adapters.identity import load_frozen_base
from tailor.adapters.lora import LoRAShape, LoRAWeights, from_bytes, to_bytes
from tailor.registry import require
from tailor.tasks.spec import TaskSpec
from tailor.types import check_positive_ints

logger = logging.getLogger(__name__)

__all__ = ["LoRATrainConfig", "LoRATrainer", "TrainResult"]

_TRAIN_ADAPTER = "tailor-train"


@dataclass(frozen=True)
class LoRATrainConfig:
    """Hyperparameters of one LoRA adapter (saved beside its weights)."""

    rank: int = 8
    alpha: float = 16.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    top_layers: int = 6
    """LoRA on the last ``top_layers`` decoder layers only (0 or more than the model has: all)."""
    epochs: int = 2
    learning_rate: float = 3e-3
    batch_size: int = 8
    max_input_tokens: int = 48
    max_output_tokens: int = 32
    max_items: int | None = 100
    """Train on the user's most recent ``max_items`` history items (``None``: all)."""
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_ints(self, ("rank", "epochs", "batch_size", "max_input_tokens", "max_output_tokens"),
                            where="LoRATrainConfig")
        if self.top_layers < 0:
            raise ValueError(f"LoRATrainConfig.top_layers must be 0 (all layers) or more, got {self.top_layers}")
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"LoRATrainConfig.max_items must be positive or None, got {self.max_items}")
        if not self.learning_rate > 0 or not self.alpha > 0:
            raise ValueError("LoRATrainConfig.learning_rate and alpha must be positive")
        if not self.target_modules:
            raise ValueError("LoRATrainConfig.target_modules must name at least one module")
        object.__setattr__(self, "target_modules", tuple(self.target_modules))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoRATrainConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})

    def shape(self, num_layers: int) -> LoRAShape:
        first = 0 if self.top_layers == 0 else max(num_layers - self.top_layers, 0)
        layers = None if first == 0 else tuple(range(first, num_layers))
        return LoRAShape(self.rank, self.alpha, self.target_modules, layers)


@dataclass
class TrainResult:
    """A trained adapter: its weights (bytes), shape, and what training cost."""

    weights: bytes
    shape: LoRAShape
    items: int
    steps: int
    seconds: float
    first_epoch_loss: float
    last_epoch_loss: float
    timings: dict[str, float] = field(default_factory=dict)
    first_steps_loss: float | None = None
    """The token-weighted mean loss of the first tenth of the steps (at least one): with one
    epoch, the first and last epoch losses are the same number; these two are not."""
    last_steps_loss: float | None = None
    """The same over the last tenth of the steps."""


def _mean_loss(losses: Sequence[tuple[float, int]]) -> float | None:
    """The token-weighted mean of (loss, target tokens) steps, or ``None`` for no step."""
    tokens = sum(count for _, count in losses)
    return sum(loss * count for loss, count in losses) / tokens if tokens else None


def _cache_argument(decoder: Any) -> str:
    """The decoder's name for its key/value cache argument (``cache`` from transformers 5.x)."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


class LoRATrainer:
    """Trains LoRA adapters on one base model, loaded once."""

    def __init__(self, model_dir: str | os.PathLike[str], *, threads: int | None = None) -> None:
        require("peft", "peft")
        base = load_frozen_base(model_dir, threads=threads)
        self.torch, self.model_dir, self.identity = base.torch, base.model_dir, base.identity
        self.tokenizer, self.model = base.tokenizer, base.model
        self.num_layers = int(self.model.config.num_hidden_layers)
        self._peft: Any = None
        self._shape: LoRAShape | None = None
        self._originals: dict[str, Any] = {}
        self._stacked: str | None = None

    # -- the model's parts ------------------------------------------------------------------

    def _decoder(self) -> Any:
        return self.model.model

    def _linear(self, path: str) -> Any:
        module = self.model.get_submodule(path)
        return getattr(module, "base_layer", module)

    @contextmanager
    def _layer_range(self, start: int, stop: int, *, final_norm: bool) -> Iterator[Any]:
        """The decoder with only layers ``start:stop`` (and the final norm, or none)."""
        decoder = self._decoder()
        torch = self.torch
        layers, norm = decoder.layers, decoder.norm
        decoder.layers = torch.nn.ModuleList(list(layers)[start:stop])
        if not final_norm:
            decoder.norm = torch.nn.Identity()
        try:
            yield decoder
        finally:
            decoder.layers, decoder.norm = layers, norm

    # -- stacking on another adapter --------------------------------------------------------

    def stack_on(self, base: LoRAWeights | None, digest: str | None = None) -> None:
        """Merge ``base`` (the global adapter) into the model's weights; ``None`` restores them."""
        key = digest if base is not None else None
        if key is not None and key == self._stacked:
            return
        with self.torch.no_grad():
            for path, original in self._originals.items():
                self._linear(path).weight.copy_(original)
            self._originals.clear()
            self._stacked = None
            if base is None:
                return
            for module in base.modules():
                linear = self._linear(module)
                self._originals[module] = linear.weight.detach().clone()
                linear.weight.add_(base.delta(module).to(linear.weight.dtype))
        self._stacked = key

    # -- the trainable LoRA -------------------------------------------------------------------

    def _fresh_lora(self, shape: LoRAShape, seed: int) -> list[Any]:
        """A freshly initialized trainable LoRA of ``shape``; its parameters."""
        torch = self.torch
        peft = require("peft", "peft")
        if self._peft is None:
            with warnings.catch_warnings():  # a deprecation inside peft, not ours to fix
                warnings.simplefilter("ignore", FutureWarning)
                self._peft = peft.get_peft_model(self.model, shape.peft_config(inference=False),
                                                 adapter_name=_TRAIN_ADAPTER)
        elif shape != self._shape:
            self._peft.add_adapter("tailor-swap", shape.peft_config(inference=False))
            self._peft.set_adapter("tailor-swap")
            self._peft.delete_adapter(_TRAIN_ADAPTER)
            self._peft.add_adapter(_TRAIN_ADAPTER, shape.peft_config(inference=False))
            self._peft.set_adapter(_TRAIN_ADAPTER)
            self._peft.delete_adapter("tailor-swap")
        # Initialized from the seed alone, whatever this trainer built before: a fresh trainer
        # (a Ray worker's first user) starts where a reused one does, so both train the same adapter.
        torch.manual_seed(seed)
        lora_layer = require("peft.tuners.lora", "peft").LoraLayer
        for module in self._peft.modules():
            if isinstance(module, lora_layer) and _TRAIN_ADAPTER in module.lora_A:
                module.reset_lora_parameters(_TRAIN_ADAPTER, True)
        self._shape = shape
        parameters = [p for name, p in self._peft.named_parameters() if f".{_TRAIN_ADAPTER}." in name]
        for parameter in parameters:
            parameter.requires_grad_(True)
        return parameters

    def _weights(self) -> LoRAWeights:
        peft = require("peft", "peft")
        if self._shape is None:
            raise RuntimeError("no LoRA has been trained yet")
        state = peft.get_peft_model_state_dict(self._peft, adapter_name=_TRAIN_ADAPTER)
        return LoRAWeights.from_peft(self._shape, state)

    def _load_lora(self, weights: LoRAWeights) -> None:
        peft = require("peft", "peft")
        self._fresh_lora(weights.shape, 0)
        peft.set_peft_model_state_dict(self._peft, weights.to_peft(), adapter_name=_TRAIN_ADAPTER)

    # -- batches ----------------------------------------------------------------------------

    def encode(self, task: TaskSpec, pairs: Sequence[TrainingPair], config: LoRATrainConfig) -> list[EncodedPair]:
        return encode_pairs(task, pairs, self.tokenizer, max_input_tokens=config.max_input_tokens,
                            max_output_tokens=config.max_output_tokens)

    def _batches(self, encoded: Sequence[EncodedPair], batch_size: int) -> list[dict[str, Any]]:
        """Right-padded batches of similar length, with the target positions of each row."""
        torch = self.torch
        pad = self.tokenizer.pad_token_id
        ordered = sorted(encoded, key=lambda e: len(e.ids))
        batches = []
        for start in range(0, len(ordered), batch_size):
            chunk = ordered[start:start + batch_size]
            width = max(len(e.ids) for e in chunk)
            ids = torch.tensor([list(e.ids) + [pad] * (width - len(e.ids)) for e in chunk])
            attention = torch.tensor([[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in chunk])
            rows, positions, targets = [], [], []
            for row, e in enumerate(chunk):
                for position in range(e.prompt_length, len(e.ids)):
                    rows.append(row)
                    positions.append(position - 1)  # the state at t-1 predicts token t
                    targets.append(e.ids[position])
            batches.append({"ids": ids, "attention": attention, "rows": torch.tensor(rows),
                            "positions": torch.tensor(positions), "targets": torch.tensor(targets)})
        return batches

    def _first_trained_layer(self) -> int:
        shape = self._shape
        return 0 if shape is None or shape.layers is None else min(shape.layers)

    def _shared_prefix(self, encoded: Sequence[EncodedPair]) -> int:
        """How many leading tokens every sequence shares (the system message and the
        instruction): the frozen layers compute them once."""
        first = encoded[0].ids
        length = min(e.prompt_length for e in encoded) - 1
        for e in encoded[1:]:
            limit = min(length, len(e.ids))
            same = 0
            while same < limit and e.ids[same] == first[same]:
                same += 1
            length = same
        return max(length, 0)

    def _prefix_cache(self, ids: tuple[int, ...], split: int) -> tuple[Any, Any] | None:
        """The frozen layers' states and key/value cache for the shared prefix, or ``None``."""
        if split == 0 or len(ids) < 2:
            return None
        transformers = require("transformers", "hf")
        with self.torch.no_grad(), self._layer_range(0, split, final_norm=False) as decoder:
            cache = transformers.DynamicCache(config=self.model.config)
            output = decoder(input_ids=self.torch.tensor([list(ids)]), use_cache=True,
                             **{_cache_argument(decoder): cache})
        return output.last_hidden_state, cache

    def _lower_states(self, batch: dict[str, Any], split: int, prefix: tuple[Any, Any] | None = None) -> Any:
        """The hidden states entering layer ``split`` (no gradients: nothing below is trained)."""
        torch = self.torch
        with torch.no_grad():
            if split == 0:
                return self._decoder().embed_tokens(batch["ids"])
            with self._layer_range(0, split, final_norm=False) as decoder:
                if prefix is None:
                    return decoder(input_ids=batch["ids"], attention_mask=batch["attention"],
                                   use_cache=False).last_hidden_state
                states, cache = prefix
                rows, shared = batch["ids"].shape[0], states.shape[1]
                cache = copy.deepcopy(cache)
                cache.batch_repeat_interleave(rows)
                positions = torch.arange(shared, batch["ids"].shape[1]).unsqueeze(0)
                rest = decoder(input_ids=batch["ids"][:, shared:], attention_mask=batch["attention"],
                               position_ids=positions, use_cache=True,
                               **{_cache_argument(decoder): cache}).last_hidden_state
                return torch.cat([states.expand(rows, -1, -1), rest], dim=1)

    def _batch_loss(self, batch: dict[str, Any], states: Any, split: int) -> Any:
        torch = self.torch
        with self._layer_range(split, self.num_layers, final_norm=True) as decoder:
            hidden = decoder(inputs_embeds=states, attention_mask=batch["attention"], use_cache=False).last_hidden_state
        selected = hidden[batch["rows"], batch["positions"]]
        logits = self.model.get_output_embeddings()(selected)
        return torch.nn.functional.cross_entropy(logits.float(), batch["targets"])

    # -- training -------------------------------------------------------------------------------

    def train(self, task: TaskSpec, pairs: Sequence[TrainingPair], config: LoRATrainConfig, *,
              on_top_of: LoRAWeights | None = None, on_top_of_digest: str | None = None,
              progress: Callable[[int, int, float | None], None] | None = None) -> TrainResult:
        """Train a fresh LoRA on ``pairs`` (on top of ``on_top_of`` when given).

        ``progress(done, total, loss)`` is called after each batch of the frozen pass
        (``loss`` ``None``) and after every optimizer step.
        """
        if not pairs:
            raise ValueError("no training pairs: the user has no usable history items")
        torch = self.torch
        began = time.perf_counter()
        self.stack_on(on_top_of, on_top_of_digest or ("anonymous" if on_top_of is not None else None))
        shape = config.shape(self.num_layers)
        parameters = self._fresh_lora(shape, config.seed)
        encoded = self.encode(task, pairs, config)
        batches = self._batches(encoded, config.batch_size)
        split = self._first_trained_layer()
        timings = {"encode": time.perf_counter() - began}
        mark = time.perf_counter()
        prefix = self._prefix_cache(encoded[0].ids[: self._shared_prefix(encoded)], split)
        total = (config.epochs + 1) * len(batches)  # the frozen pass counts as one epoch of progress
        states = []
        for done, batch in enumerate(batches, 1):
            states.append(self._lower_states(batch, split, prefix))
            if progress is not None:
                progress(done, total, None)
        timings["frozen_layers"] = time.perf_counter() - mark
        optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.0)
        order = list(range(len(batches)))
        shuffler = random.Random(config.seed)
        epoch_losses: list[float] = []
        step_losses: list[tuple[float, int]] = []  # (loss, target tokens) per step, in order
        mark = time.perf_counter()
        with torch.enable_grad():
            for _ in range(config.epochs):
                shuffler.shuffle(order)
                epoch_start = len(step_losses)
                for index in order:
                    loss = self._batch_loss(batches[index], states[index], split)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    value = float(loss.detach())
                    step_losses.append((value, int(batches[index]["targets"].numel())))
                    if progress is not None:
                        progress(len(batches) + len(step_losses), total, value)
                epoch_losses.append(_mean_loss(step_losses[epoch_start:]) or 0.0)
        timings["epochs"] = time.perf_counter() - mark
        for parameter in parameters:
            parameter.requires_grad_(False)
        weights = self._weights()
        window = max(1, len(step_losses) // 10)
        return TrainResult(weights=to_bytes(weights), shape=shape, items=len(encoded), steps=len(step_losses),
                           seconds=time.perf_counter() - began, first_epoch_loss=epoch_losses[0],
                           last_epoch_loss=epoch_losses[-1], timings=timings,
                           first_steps_loss=_mean_loss(step_losses[:window]),
                           last_steps_loss=_mean_loss(step_losses[-window:]))

    def loss(self, task: TaskSpec, pairs: Sequence[TrainingPair], config: LoRATrainConfig, *,
             adapter: bytes | None = None, shape: LoRAShape | None = None, on_top_of: LoRAWeights | None = None,
             on_top_of_digest: str | None = None) -> float:
        """Mean loss per target token of ``pairs`` under an adapter (or none: the base model)."""
        torch = self.torch
        self.stack_on(on_top_of, on_top_of_digest or ("anonymous" if on_top_of is not None else None))
        if adapter is not None:
            self._load_lora(from_bytes(adapter, shape or config.shape(self.num_layers)))
        elif self._peft is not None:
            self._fresh_lora(self._shape or config.shape(self.num_layers), 0)  # B = 0: the base model
        total, count = 0.0, 0
        for batch in self._batches(self.encode(task, pairs, config), config.batch_size):
            with torch.no_grad():
                states = self._lower_states(batch, 0)
                loss = self._batch_loss(batch, states, 0)
            n = int(batch["targets"].numel())
            total += float(loss) * n
            count += n
        return total / max(count, 1) if count else math.nan
