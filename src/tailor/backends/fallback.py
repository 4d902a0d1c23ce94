"""What the fast engines of the default model hand to the float32 transformers model.

An engine that does not apply per-user LoRA adapters or soft prompts (ONNX Runtime
GenAI, OpenVINO here) keeps the float32 transformers copy of the same model for the
requests that need them: loaded on first need, and named by ``engine`` in results.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailor.types import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from tailor.adapters.runtime import AdaptedBackend
    from tailor.adapters.store import AdapterStore
    from tailor.backends.hf import TransformersBackend


class TransformersFallback:
    """A mixin for a default-model backend: adapter requests go to the float32 transformers model."""

    adapter_engine = "transformers-fp32"
    """The engine that runs this backend's adapter requests (the float32 transformers model)."""
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

    def generate(self, requests: Sequence[GenerationRequest], *, lora: Sequence[Any] | None = None,
                 prefixes: Sequence[Any] | None = None) -> list[GenerationResult]:
        """Requests with adapters or soft prompts on the float32 model, the rest on this engine."""
        if self.needs_fallback(lora, prefixes):
            return self.fallback().generate(requests, lora=lora, prefixes=prefixes)
        return super().generate(requests)  # type: ignore[misc,no-any-return]

    def with_adapters(self, store: AdapterStore, task: str, *, personas: Mapping[str, str] | None = None,
                      prompt: str | None = None, levels: Sequence[str] | None = None) -> AdaptedBackend:
        """Per-user adapters, applied on the float32 transformers model (see :meth:`fallback`)."""
        return self.fallback().with_adapters(store, task, personas=personas, prompt=prompt, levels=levels)
