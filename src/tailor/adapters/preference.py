"""Training LoRA adapters on preferences with TRL's trainers: DPO, SimPO and KTO.

- ``dpo``: Direct Preference Optimization (TRL's ``DPOTrainer``) on pairs, against the
  base model as the reference (the adapter switched off; its log-probabilities computed
  once, before training).
- ``simpo``: SimPO, reference-free, through TRL's CPO trainer with ``loss_type="simpo"``
  and ``cpo_alpha=0`` (no behaviour-cloning term), on pairs.
- ``kto``: Kahneman-Tversky Optimization (TRL's ``KTOTrainer``) on single replies rated
  good or bad (thumbs up or down), which need no pair; a pair gives one of each.

One :class:`PreferenceTrainer` loads the base model once (float32, frozen) and wraps it with
PEFT once; each adapter starts from freshly initialized LoRA weights in that slot, so many
users are trained without reloading anything. LoRA adapts the top ``top_layers`` decoder
layers, as tailor's other adapters, and the weights come out in tailor's adapter format
(:mod:`tailor.adapters.lora`), ready for the adapter store and the serving runtime.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tailor.adapters.identity import load_frozen_base
from tailor.adapters.lora import LoRAShape, LoRAWeights, to_bytes
from tailor.registry import require
from tailor.types import check_positive_ints

logger = logging.getLogger(__name__)

__all__ = ["LOSSES", "Loss", "PreferenceExample", "PreferenceResult", "PreferenceTrainConfig", "PreferenceTrainer",
           "completion_log_likelihoods", "completion_log_likelihoods_under"]

Loss = Literal["dpo", "simpo", "kto"]
LOSSES: tuple[Loss, ...] = ("dpo", "simpo", "kto")
_ADAPTER = "default"
"""The trained adapter's PEFT name: TRL's trainers copy the adapter called ``default`` into a
frozen ``ref`` adapter (the reference model: the fresh LoRA is zero, so the base model)."""
_REFERENCE = "ref"


@dataclass(frozen=True)
class PreferenceExample:
    """One training example: a pair (``chosen`` over ``rejected``) or, for KTO, one rated
    reply (``chosen`` when it was liked, ``rejected`` when not, the other empty)."""

    messages: tuple[dict[str, str], ...]
    chosen: str = ""
    rejected: str = ""

    @property
    def is_pair(self) -> bool:
        return bool(self.chosen) and bool(self.rejected)


@dataclass(frozen=True)
class PreferenceTrainConfig:
    """Hyperparameters of one preference adapter (saved beside its weights)."""

    loss: Loss = "dpo"
    rank: int = 8
    alpha: float = 16.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    top_layers: int = 6
    """LoRA on the last ``top_layers`` decoder layers only (0: all of them)."""
    epochs: int = 5
    learning_rate: float = 3e-3
    batch_size: int = 2
    beta: float = 0.1
    """DPO's and KTO's KL strength; SimPO's reward scale is :attr:`simpo_beta`."""
    sft_weight: float | None = None
    """DPO only: the weight of a negative log-likelihood term on the chosen replies added to
    the DPO loss (RPO, Pang et al. 2024; TRL's ``loss_type=["sigmoid", "sft"]``): the adapter
    is pulled towards writing what the user chose, not only away from what they rejected.
    ``None``: 1 for DPO, 0 for the other losses. Epochs, learning rate, batch size and this
    term are the settings measured on simulated users (docs/results-alignment.md: DPO alone
    for 2 epochs won 56% of held-out prompts for four users, these 75%)."""
    simpo_beta: float = 2.0
    simpo_gamma: float = 0.5
    max_length: int = 192
    """Prompt and reply together, in tokens (longer ones are cut from the prompt's start)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        check_positive_ints(self, ("rank", "epochs", "batch_size", "max_length"), where="PreferenceTrainConfig")
        if self.top_layers < 0:
            raise ValueError(f"PreferenceTrainConfig.top_layers must be 0 (all) or more, got {self.top_layers}")
        for name in ("learning_rate", "alpha", "beta", "simpo_beta"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PreferenceTrainConfig.{name} must be positive")
        if self.sft_weight is None:
            object.__setattr__(self, "sft_weight", 1.0 if self.loss == "dpo" else 0.0)
        if not float(self.sft_weight or 0.0) >= 0:
            raise ValueError(f"PreferenceTrainConfig.sft_weight must be 0 or more, got {self.sft_weight}")
        if self.sft_weight and self.loss != "dpo":
            raise ValueError(f"sft_weight adds a term to DPO's loss; {self.loss} has none")
        if self.loss == "kto" and self.batch_size < 2:
            raise ValueError("KTO estimates its reference point from the other examples of a batch: batch_size >= 2")
        object.__setattr__(self, "target_modules", tuple(self.target_modules))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    def shape(self, num_layers: int) -> LoRAShape:
        first = 0 if self.top_layers == 0 else max(num_layers - self.top_layers, 0)
        return LoRAShape(self.rank, self.alpha, self.target_modules, None if first == 0 else tuple(range(first, num_layers)))


@dataclass
class PreferenceResult:
    """A trained preference adapter: its weights, shape, and what training cost and did."""

    weights: bytes
    shape: LoRAShape
    examples: int
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    """The training loss of every step, in order."""
    reward_accuracy: float | None = None
    """DPO and SimPO: the share of the last tenth of steps' pairs whose chosen reply the
    adapter's implicit reward ranked first."""

    @property
    def first_loss(self) -> float:
        """The mean loss of the first tenth of the steps (at least one)."""
        window = max(1, len(self.losses) // 10)
        return sum(self.losses[:window]) / window if self.losses else math.nan

    @property
    def last_loss(self) -> float:
        """The mean loss of the last tenth of the steps."""
        window = max(1, len(self.losses) // 10)
        return sum(self.losses[-window:]) / window if self.losses else math.nan


def _turns(messages: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _reply(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


class PreferenceTrainer:
    """Trains preference LoRA adapters on one base model, loaded once."""

    def __init__(self, model_dir: str | os.PathLike[str], *, threads: int | None = None) -> None:
        require("trl", "align")
        require("peft", "peft")
        base = load_frozen_base(model_dir, threads=threads)
        self.torch, self.model_dir, self.identity = base.torch, base.model_dir, base.identity
        self.tokenizer, self.model = base.tokenizer, base.model
        self.num_layers = int(self.model.config.num_hidden_layers)
        self._peft: Any = None
        self._shape: LoRAShape | None = None

    def _fresh_lora(self, shape: LoRAShape, seed: int) -> Any:
        """The PEFT model with a freshly initialized trainable LoRA of ``shape``."""
        peft = require("peft", "peft")
        if self._peft is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                self._peft = peft.get_peft_model(self.model, shape.peft_config(inference=False),
                                                 adapter_name=_ADAPTER)
        elif shape != self._shape:
            self._peft.delete_adapter(_ADAPTER)
            self._peft.add_adapter(_ADAPTER, shape.peft_config(inference=False))
            self._peft.set_adapter(_ADAPTER)
        # Initialized from the seed alone, whatever this trainer built before: a fresh trainer
        # (a Ray worker's first adapter) starts where a reused one does, so both train the same adapter.
        self.torch.manual_seed(seed)
        lora_layer = require("peft.tuners.lora", "peft").LoraLayer
        for module in self._peft.modules():
            if isinstance(module, lora_layer) and _ADAPTER in module.lora_A:
                module.reset_lora_parameters(_ADAPTER, True)
        self._shape = shape
        for name, parameter in self._peft.named_parameters():
            parameter.requires_grad_(f".{_ADAPTER}." in name)
        return self._peft

    def _dataset(self, examples: Sequence[PreferenceExample], loss: Loss) -> Any:
        datasets = require("datasets", "align")
        if loss == "kto":
            rows = []
            for example in examples:
                for text, label in ((example.chosen, True), (example.rejected, False)):
                    if text:
                        rows.append({"prompt": _turns(example.messages), "completion": _reply(text), "label": label})
            return datasets.Dataset.from_list(rows)
        pairs = [e for e in examples if e.is_pair]
        return datasets.Dataset.from_list([{"prompt": _turns(e.messages), "chosen": _reply(e.chosen),
                                            "rejected": _reply(e.rejected)} for e in pairs])

    def _trainer(self, model: Any, dataset: Any, config: PreferenceTrainConfig, output_dir: str,
                 callbacks: list[Any]) -> Any:
        trl = require("trl", "align")
        common: dict[str, Any] = {
            "output_dir": output_dir, "per_device_train_batch_size": config.batch_size,
            "num_train_epochs": config.epochs, "learning_rate": config.learning_rate, "logging_steps": 1,
            "report_to": [], "save_strategy": "no", "use_cpu": True, "seed": config.seed, "data_seed": config.seed,
            "disable_tqdm": True, "max_length": config.max_length, "lr_scheduler_type": "linear",
            "warmup_steps": 0, "dataloader_num_workers": 0}
        if config.loss == "dpo":
            losses: dict[str, Any] = {}
            if config.sft_weight:
                losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, config.sft_weight]}
            args = trl.DPOConfig(**common, beta=config.beta, precompute_ref_log_probs=True, **losses)
            return trl.DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=self.tokenizer,
                                  callbacks=callbacks)
        if config.loss == "kto":
            args = trl.KTOConfig(**common, beta=config.beta, precompute_ref_log_probs=True)
            return trl.KTOTrainer(model=model, args=args, train_dataset=dataset, processing_class=self.tokenizer,
                                  callbacks=callbacks)
        cpo = require("trl.experimental.cpo", "align")
        args = cpo.CPOConfig(**common, loss_type="simpo", cpo_alpha=0.0, beta=config.simpo_beta,
                             simpo_gamma=config.simpo_gamma)
        return cpo.CPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=self.tokenizer,
                              callbacks=callbacks)

    def train(self, examples: Sequence[PreferenceExample], config: PreferenceTrainConfig, *,
              progress: Callable[[int, int, float], None] | None = None) -> PreferenceResult:
        """Train one adapter on ``examples`` with ``config.loss``; return its weights."""
        transformers = require("transformers", "hf")
        usable = [e for e in examples if e.is_pair] if config.loss != "kto" else list(examples)
        if not usable:
            raise ValueError(f"{config.loss} trains on preference pairs (chosen and rejected); none were given"
                             + ("; ratings alone train with --loss kto" if examples else ""))
        began = time.perf_counter()
        shape = config.shape(self.num_layers)
        model = self._fresh_lora(shape, config.seed)
        dataset = self._dataset(usable, config.loss)
        steps_done: list[dict[str, float]] = []

        class Logged(transformers.TrainerCallback):  # type: ignore[misc,name-defined]
            def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
                if logs and "loss" in logs:
                    steps_done.append({key: float(value) for key, value in logs.items()
                                       if isinstance(value, (int, float))})
                    if progress is not None:
                        progress(int(state.global_step), int(state.max_steps), float(logs["loss"]))

        with tempfile.TemporaryDirectory(prefix="tailor-preference-") as scratch, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.train()
            trainer = self._trainer(model, dataset, config, scratch, [Logged()])
            trainer.remove_callback(transformers.PrinterCallback)  # steps are reported through progress
            trainer.train()
            model.eval()
            if _REFERENCE in getattr(model, "peft_config", {}):
                model.delete_adapter(_REFERENCE)  # made anew by the next trainer
                model.set_adapter(_ADAPTER)
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        peft = require("peft", "peft")
        state = peft.get_peft_model_state_dict(model, adapter_name=_ADAPTER)
        weights = LoRAWeights.from_peft(shape, state)
        losses = [row["loss"] for row in steps_done]
        accuracies = [row["rewards/accuracies"] for row in steps_done if "rewards/accuracies" in row]
        window = max(1, len(accuracies) // 10)
        return PreferenceResult(to_bytes(weights), shape, len(dataset), len(losses), time.perf_counter() - began,
                                losses, sum(accuracies[-window:]) / window if accuracies else None)


def completion_log_likelihoods(trainer: PreferenceTrainer, items: Sequence[tuple[Sequence[dict[str, str]], str]],
                               adapter: LoRAWeights | None, *, batch_size: int = 8) -> list[float]:
    """The total log-likelihood of each ``(messages, completion)``'s completion (and the
    end-of-turn token) after its messages, under ``adapter`` on ``trainer``'s base model (or
    the base model alone: ``None``). The difference between the two is DPO's implicit reward
    (up to its ``beta``): a pair is ranked right when the chosen reply's is the larger."""
    return completion_log_likelihoods_under(trainer, items, [adapter], batch_size=batch_size)[0]


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the hidden states it needs are captured."""


def completion_log_likelihoods_under(trainer: PreferenceTrainer,
                                     items: Sequence[tuple[Sequence[dict[str, str]], str]],
                                     adapters: Sequence[LoRAWeights | None], *,
                                     batch_size: int = 8, group_texts: int = 512) -> list[list[float]]:
    """:func:`completion_log_likelihoods` under each of ``adapters`` (``None``: the base model),
    one list per adapter, computed together: the decoder layers below the lowest layer any
    adapter changes give the same hidden states under all of them, so (for more than one model)
    they run once per text and only the layers above run once per adapter; the vocabulary projection runs only where
    a completion token is scored. Batches hold texts of similar length (less padding); the
    shared hidden states are kept for ``group_texts`` texts at a time, and each adapter is
    loaded once per such group.

    The split is checked on the first batch against one full forward pass of the base model
    (a model whose decoder does not take its hidden states back as input embeddings, e.g. one
    that scales them, fails the check): where it does not match, every adapter runs the whole
    model."""
    torch = trainer.torch
    peft = require("peft", "peft")
    tokenizer = trainer.tokenizer
    encoded = []
    for messages, completion in items:
        prompt = list(tokenizer.apply_chat_template(_turns(messages), add_generation_prompt=True, tokenize=True,
                                                    return_dict=True)["input_ids"])
        target = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
        if tokenizer.eos_token_id is not None:
            target.append(tokenizer.eos_token_id)
        encoded.append((prompt, target))
    results: list[list[float]] = [[0.0] * len(encoded) for _ in adapters]
    if not encoded:
        return results
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]) + len(encoded[i][1]))
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        rows = [encoded[i][0] + encoded[i][1] for i in chunk]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        batches.append((chunk, ids, attention))
    model = trainer.model
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    layers: Any = getattr(decoder, "layers", None)
    # The lowest layer an adapter changes: none for the base model, all for an adapter of every layer.
    lowest = min([trainer.num_layers] + [min(a.shape.layers) if a.shape.layers else 0
                                         for a in adapters if a is not None])
    # Sharing pays only when more than one model scores the texts (it costs a check pass).
    shared = len(adapters) > 1 and layers is not None and 0 < lowest < len(layers)

    def score(hidden: Any, chunk: Sequence[int], into: list[float]) -> None:
        positions = [(row, p) for row, i in enumerate(chunk)
                     for p in range(len(encoded[i][0]) - 1, len(encoded[i][0]) + len(encoded[i][1]) - 1)]
        picked = hidden[torch.tensor([r for r, _ in positions]), torch.tensor([p for _, p in positions])]
        log_probs = torch.log_softmax(head(picked).float(), dim=-1)
        targets = torch.tensor([t for i in chunk for t in encoded[i][1]])
        token_scores = log_probs[torch.arange(len(positions)), targets]
        offset = 0
        for i in chunk:
            into[i] = float(token_scores[offset:offset + len(encoded[i][1])].sum())
            offset += len(encoded[i][1])

    def base_mode() -> Any:
        return trainer._peft.disable_adapter() if trainer._peft is not None else contextlib.nullcontext()

    def bottom(ids: Any, attention: Any) -> Any:
        captured: list[Any] = []

        def capture(module: Any, args: Any, kwargs: Any) -> None:
            captured.append(args[0] if args else kwargs["hidden_states"])
            raise _Stop

        hook = layers[lowest].register_forward_pre_hook(capture, with_kwargs=True)
        try:
            decoder(input_ids=ids, attention_mask=attention, use_cache=False)
        except _Stop:
            pass
        finally:
            hook.remove()
        return captured[0]

    def top(hidden: Any, attention: Any) -> Any:
        decoder.layers = torch.nn.ModuleList(layers[lowest:])
        try:
            return decoder(inputs_embeds=hidden, attention_mask=attention, use_cache=False).last_hidden_state
        finally:
            decoder.layers = layers

    with torch.no_grad():
        kept: dict[int, Any] = {}  # a batch's hidden states below the adapters
        if shared:
            with base_mode():
                chunk, ids, attention = batches[0]
                whole, split = [0.0] * len(encoded), [0.0] * len(encoded)
                score(decoder(input_ids=ids, attention_mask=attention, use_cache=False).last_hidden_state, chunk, whole)
                kept[0] = bottom(ids, attention)
                score(top(kept[0], attention), chunk, split)
            if any(abs(whole[i] - split[i]) > 1e-3 * max(1.0, abs(whole[i])) for i in chunk):
                logger.info("scoring with whole forward passes: this model's layers above %d do not reproduce "
                            "its full pass", lowest)
                shared, kept = False, {}
        # A group of batches at a time: their hidden states kept (memory bounded by group_texts),
        # each adapter loaded once per group.
        per_group = max(1, group_texts // batch_size)
        for first in range(0, len(batches), per_group):
            group = range(first, min(first + per_group, len(batches)))
            if shared:
                with base_mode():
                    for number in group:
                        if number not in kept:
                            kept[number] = bottom(batches[number][1], batches[number][2])
            for index, adapter in enumerate(adapters):
                if adapter is not None:
                    lora = trainer._fresh_lora(adapter.shape, 0)
                    peft.set_peft_model_state_dict(lora, adapter.to_peft(), adapter_name=_ADAPTER)
                    for parameter in lora.parameters():
                        parameter.requires_grad_(False)
                with base_mode() if adapter is None else contextlib.nullcontext():
                    for number in group:
                        chunk, ids, attention = batches[number]
                        hidden = (top(kept[number], attention) if shared else
                                  decoder(input_ids=ids, attention_mask=attention, use_cache=False).last_hidden_state)
                        score(hidden, chunk, results[index])
            for number in group:
                kept.pop(number, None)
    return results
