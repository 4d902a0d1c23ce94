"""What the fast engines of the default model hand to the float32 transformers model.

An engine that does not apply per-user LoRA adapters or soft prompts (ONNX Runtime
GenAI here) keeps the float32 transformers copy of the same model for the requests that
need them: loaded on first need, and named by ``engine`` in results. OpenVINO runs
adapters itself where it can, and says so: a shared (global or persona) adapter merged
into a model of its own (:mod:`tailor.backends.merged`, :meth:`TransformersFallback.merged_engine`),
any other LoRA (a user's own, a soup) applied at run time by a model that takes each
row's adapter matrices as inputs (:mod:`tailor.backends.openvino_lora`,
:meth:`TransformersFallback.lora_engine`). :meth:`TransformersFallback.route` says which
engine a request goes to.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tailor.types import GenerationRequest, GenerationResult, TextStream

if TYPE_CHECKING:
    from tailor.adapters.runtime import AdaptedBackend, LoRAChoice
    from tailor.adapters.store import AdapterStore
    from tailor.backends.hf import TransformersBackend

Route = Literal["base", "merged", "lora", "fallback"]
"""Where a request runs: this engine (no adapter), a merged model, the run-time LoRA model, the float32 model."""


class TransformersFallback:
    """A mixin for a default-model backend: adapter requests go to the float32 transformers model,
    unless the engine runs them itself (:meth:`route`)."""

    adapter_engine = "transformers-fp32"
    """The engines that may run this backend's adapter requests, ``/``-separated (in results:
    an adapter view names those that did, :meth:`engine_label`)."""
    merges_adapters = False
    """Whether shared (global, persona) adapters run on this fast engine, merged into a model
    of their own (:meth:`merged_engine`), instead of on the float32 model."""
    runs_lora = False
    """Whether other LoRA adapters (a user's own, a soup) run on this fast engine, applied at
    run time (:meth:`lora_engine`), where they fit it, instead of on the float32 model."""
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

    def lora_fits(self, choice: LoRAChoice) -> bool:
        """Whether :meth:`lora_engine` can apply ``choice`` (``False`` where this engine applies no LoRA at run time)."""
        return False

    def lora_engine(self, choice: LoRAChoice) -> Any:
        """The engine that applies ``choice`` at run time, one for every adapter of its layout
        (called only where :meth:`lora_fits`); its ``generate`` and ``stream`` take ``lora``."""
        raise NotImplementedError(f"{type(self).__name__} applies no LoRA at run time")

    def route(self, choice: LoRAChoice | None) -> Route:
        """Where a request with ``choice`` runs: shared adapters merged where this engine merges
        them, other LoRAs at run time where they fit, the rest on the float32 model."""
        if choice is None:
            return "base"
        if self.merges_adapters and choice.shared:
            return "merged"
        if self.runs_lora and self.lora_fits(choice):
            return "lora"
        return "fallback"

    def engine_label(self, route: Route) -> str:
        """The engine name results give for ``route``: ``transformers-fp32`` for the float32
        model, this engine's name for no adapter, with ``-merged`` or ``-lora`` appended."""
        if route == "fallback":
            return "transformers-fp32"
        engine = str(getattr(self, "engine", type(self).__name__))
        return engine if route == "base" else f"{engine}-{route}"

    def _engine_for(self, route: Route, choice: LoRAChoice | None) -> Any | None:
        """The engine of ``route`` for ``choice`` (``None``: the float32 model)."""
        if route == "base":
            return self
        if route == "merged" and choice is not None:
            return self.merged_engine(choice)
        if route == "lora" and choice is not None:
            return self.lora_engine(choice)
        return None

    def generate(self, requests: Sequence[GenerationRequest], *, lora: Sequence[Any] | None = None,
                 prefixes: Sequence[Any] | None = None) -> list[GenerationResult]:
        """Each request on the engine of its :meth:`route`, rows of the same engine in one call
        (users with different adapters of one layout share its batches); soft prompts on the
        float32 model."""
        if not self.needs_fallback(lora, prefixes):
            return super().generate(requests)  # type: ignore[misc,no-any-return]
        if not (self.merges_adapters or self.runs_lora) or (prefixes is not None and any(p is not None for p in prefixes)):
            return self.fallback().generate(requests, lora=lora, prefixes=prefixes)
        assert lora is not None  # needs_fallback said so
        if len(lora) != len(requests):
            raise ValueError(f"lora must hold one entry per request ({len(requests)}), got {len(lora)}")
        groups: dict[int, tuple[Route, Any, list[int]]] = {}  # id of the engine (None: the float32 model)
        for index, choice in enumerate(lora):
            route = self.route(choice)
            engine = self._engine_for(route, choice)
            groups.setdefault(id(engine), (route, engine, []))[2].append(index)
        results: list[GenerationResult | None] = [None] * len(requests)
        for route, engine, indexes in groups.values():
            part = [requests[i] for i in indexes]
            if engine is None:
                done = self.fallback().generate(part, lora=[lora[i] for i in indexes])
            elif engine is self:
                done = super().generate(part)  # type: ignore[misc]
            elif route == "lora":
                done = engine.generate(part, lora=[lora[i] for i in indexes])
            else:
                done = engine.generate(part)
            for index, result in zip(indexes, done):
                results[index] = result
        return [result for result in results if result is not None]

    def stream(self, request: GenerationRequest, *, lora: LoRAChoice | None = None) -> TextStream:
        """One reply as it is generated, on the engine of its :meth:`route`."""
        route = self.route(lora)
        engine = self._engine_for(route, lora)
        if engine is None:
            return self.fallback().stream(request, lora=lora)
        if engine is self:
            return super().stream(request)  # type: ignore[misc,no-any-return]
        if route == "lora":
            return engine.stream(request, lora=lora)  # type: ignore[no-any-return]
        return engine.stream(request)  # type: ignore[no-any-return]

    def with_adapters(self, store: AdapterStore, task: str, *, personas: Mapping[str, str] | None = None,
                      prompt: str | None = None, levels: Sequence[str] | None = None) -> AdaptedBackend:
        """Per-user adapters, each on the engine of its :meth:`route` (all on the float32
        transformers model where this engine runs none itself, see :meth:`fallback`)."""
        if not (self.merges_adapters or self.runs_lora):
            return self.fallback().with_adapters(store, task, personas=personas, prompt=prompt, levels=levels)
        from tailor.adapters.runtime import adapted_view

        return adapted_view(self, store, task, personas=personas, prompt=prompt, levels=levels)
