"""What the fast engines of the default model hand to the float32 transformers model.

An engine that does not apply per-user LoRA adapters or soft prompts (ONNX Runtime
GenAI, OpenVINO here) keeps the float32 transformers copy of the same model for the
requests that need them: loaded on first need, and named by ``engine`` in results. An
engine that can run a shared (global or persona) adapter merged into a model of its own
(OpenVINO: :mod:`tailor.backends.merged`) says so by :meth:`TransformersFallback.merged_engine`,
and those requests stay on the fast engine.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailor.types import GenerationRequest, GenerationResult, TextStream

if TYPE_CHECKING:
    from tailor.adapters.runtime import AdaptedBackend, LoRAChoice
    from tailor.adapters.store import AdapterStore
    from tailor.backends.hf import TransformersBackend


class TransformersFallback:
    """A mixin for a default-model backend: adapter requests go to the float32 transformers model."""

    adapter_engine = "transformers-fp32"
    """The engine that runs this backend's adapter requests (the float32 transformers model)."""
    merges_adapters = False
    """Whether shared (global, persona) adapters run on this fast engine, merged into a model
    of their own (:meth:`merged_engine`), instead of on the float32 model."""
    _fallback: TransformersBackend | None = None
    _fallback_options: dict[str, Any]
    _source: Path

    def keep_fallback(self, source: Path, **options: Any) -> None:
        """Where the float32 model is (``source``) and the options it is loaded with, on first need."""
        self._source = source
        self._fallback_options = options
        self._fallback = None

    def fallback(self) -> TransformersBackend:
        """The float32 transformers model, for what this engine does not run (loaded once, on first need)."""
        if self._fallback is None:
            from tailor.backends.hf import DefaultBackend

            self._fallback = DefaultBackend(**self._fallback_options)
        return self._fallback

    @functools.cached_property
    def identity(self) -> dict[str, str]:
        """The base model's identity as adapters record it: the float32 model they train on."""
        from tailor.adapters.identity import base_model_identity

        return base_model_identity(str(self._source))

    @staticmethod
    def needs_fallback(lora: Sequence[Any] | None, prefixes: Sequence[Any] | None) -> bool:
        """Whether a generate call carries adapters or soft prompts."""
        return bool((lora is not None and any(lora)) or (prefixes is not None and any(p is not None for p in prefixes)))

    def merged_engine(self, choice: LoRAChoice) -> Any | None:
        """This engine with ``choice``'s shared adapter merged in, or ``None`` where the engine
        does not merge adapters (the request then runs on the float32 model)."""
        return None

    def _engine_for(self, choice: LoRAChoice | None) -> Any | None:
        """The fast engine that runs ``choice`` (this one for no adapter), or ``None``: the float32 model."""
        if choice is None:
            return self
        return self.merged_engine(choice) if self.merges_adapters and choice.shared else None

    def generate(self, requests: Sequence[GenerationRequest], *, lora: Sequence[Any] | None = None,
                 prefixes: Sequence[Any] | None = None) -> list[GenerationResult]:
        """Requests with a shared adapter on its merged engine where this engine merges them,
        other adapter requests and soft prompts on the float32 model, the rest on this engine."""
        if not self.needs_fallback(lora, prefixes):
            return super().generate(requests)  # type: ignore[misc,no-any-return]
        if not self.merges_adapters or (prefixes is not None and any(p is not None for p in prefixes)):
            return self.fallback().generate(requests, lora=lora, prefixes=prefixes)
        assert lora is not None  # needs_fallback said so
        groups: dict[Any, list[int]] = {}  # engine (None: the float32 model) -> its requests
        for index, choice in enumerate(lora):
            groups.setdefault(self._engine_for(choice), []).append(index)
        results: list[GenerationResult | None] = [None] * len(requests)
        for engine, indexes in groups.items():
            part = [requests[i] for i in indexes]
            if engine is None:
                done = self.fallback().generate(part, lora=[lora[i] for i in indexes])
            elif engine is self:
                done = super().generate(part)  # type: ignore[misc]
            else:
                done = engine.generate(part)
            for index, result in zip(indexes, done):
                results[index] = result
        return [result for result in results if result is not None]

    def stream(self, request: GenerationRequest, *, lora: LoRAChoice | None = None) -> TextStream:
        """One reply as it is generated: with a shared adapter on its merged engine where this
        engine merges them, with another adapter on the float32 model."""
        engine = self._engine_for(lora)
        if engine is None:
            return self.fallback().stream(request, lora=lora)
        if engine is self:
            return super().stream(request)  # type: ignore[misc,no-any-return]
        return engine.stream(request)  # type: ignore[no-any-return]

    def with_adapters(self, store: AdapterStore, task: str, *, personas: Mapping[str, str] | None = None,
                      prompt: str | None = None, levels: Sequence[str] | None = None) -> AdaptedBackend:
        """Per-user adapters: shared ones merged into this engine where it merges them, the
        others on the float32 transformers model (see :meth:`fallback`)."""
        if not self.merges_adapters:
            return self.fallback().with_adapters(store, task, personas=personas, prompt=prompt, levels=levels)
        from tailor.adapters.runtime import adapted_view

        return adapted_view(self, store, task, personas=personas, prompt=prompt, levels=levels)
