"""Serving adapters: which adapter a user gets, and keeping adapters loaded on one model.

:class:`AdapterResolver` picks, for a ``user_id``, the adapter stack to apply, falling
back from the user's own adapter to their persona's, then to the global one, then to none
(the base model); the granularity it settled on is recorded per prediction.

:class:`LoRARuntime` wraps a backend's already-loaded model with PEFT once and loads
adapters into it lazily, keeping the most recently used ``capacity`` of them (an LRU
cache). Switching users never reloads the base model: a cached adapter is selected per
request (PEFT's mixed-adapter batches, ``adapter_names=``), and a cold one costs a read
from the store and a tensor copy into a PEFT adapter slot made once.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from tailor.adapters.identity import check_same_base
from tailor.adapters.lora import LoRAShape, LoRAWeights, compose, from_bytes
from tailor.adapters.store import NO_PROMPT, AdapterKey, AdapterStore
from tailor.registry import require
from tailor.types import GenerationRequest, GenerationResult, Granularity, TextStream

logger = logging.getLogger(__name__)

__all__ = ["LEVELS", "AdaptedBackend", "AdapterResolver", "Level", "LoRAChoice", "LoRARuntime", "Resolution",
           "adapted_view"]

BASE = "__base__"
"""PEFT's name for "no adapter" in a mixed batch."""


@dataclass(frozen=True)
class LoRAChoice:
    """An adapter to apply: a stable name (the stacked adapters' digests) and how to load it."""

    name: str
    load: Callable[[], LoRAWeights] = field(compare=False, repr=False)
    shared: bool = False
    """Whether it serves more than one user (a global or persona adapter): a fast engine may
    run it merged into a model of its own (:mod:`tailor.backends.merged`)."""


@dataclass(frozen=True)
class Resolution:
    """What a user gets: the granularity, the stacked adapters (bottom first), the choice.
    A soup's ``stack`` holds the pole adapters it merges, and ``soup`` is set."""

    granularity: Granularity
    stack: tuple[AdapterKey, ...] = ()
    choice: LoRAChoice | None = None
    soup: bool = False

    @property
    def label(self) -> str:
        """``"user"``, ``"soup"``, ``"persona:ID"``, ``"global"`` or ``"none"``, for prediction records."""
        if not self.stack:
            return "none"
        if self.soup:
            return "soup"
        top = self.stack[-1]
        return f"persona:{top.owner}" if top.scope == "persona" else top.scope


Level = Literal["user", "soup", "persona", "global"]
LEVELS: tuple[Level, ...] = ("user", "persona", "global")
"""The levels a task adapter falls back through; preference adapters add ``soup`` after ``user``."""


class AdapterResolver:
    """For one task, the adapter stack of each user: user -> persona -> global -> none.

    A user or persona adapter trained on top of a global adapter is used only with that
    same global adapter (its digest is recorded at training); if the global adapter was
    retrained or deleted since, the stale adapter is skipped, with a warning, until
    ``tailor train-adapter`` retrains it. ``personas`` maps user ids to persona ids where
    the store holds no personas (a groups file); the store's own personas come first.
    Only adapters trained on ``prompt`` are considered (``none``: the input alone; see
    :mod:`tailor.adapters.prompts`).
    """

    def __init__(self, store: AdapterStore, task: str, *, personas: Mapping[str, str] | None = None,
                 identity: Mapping[str, str] | None = None, prompt: str = NO_PROMPT,
                 levels: Sequence[Level] = LEVELS) -> None:
        unknown = [level for level in levels if level not in ("user", "soup", "persona", "global")]
        if unknown or not levels:
            raise ValueError(f"levels must be among user, soup, persona, global, got {list(levels)}")
        self.store = store
        self.task = task
        self.prompt = prompt
        self.levels = tuple(levels)
        self.personas = dict(personas or {})
        self.identity = dict(identity) if identity is not None else None
        self._warned: set[str] = set()

    def persona_of(self, user_id: str) -> str | None:
        try:
            found = self.store.persona_of(user_id)
        except (AttributeError, NotImplementedError):  # a store without personas
            found = None
        return found or self.personas.get(user_id)

    def resolve(self, user_id: str | None) -> Resolution:
        global_key = AdapterKey.global_(self.task, prompt=self.prompt)
        global_info = self.store.info(global_key) if "global" in self.levels else None
        candidates: list[tuple[Granularity, AdapterKey | None]] = []
        if user_id is not None:
            for level in self.levels:
                if level == "user":
                    candidates.append(("user", AdapterKey("user", user_id, self.task, prompt=self.prompt)))
                elif level == "soup":
                    candidates.append(("user", None))
                elif level == "persona":
                    persona = self.persona_of(user_id)
                    if persona is not None:
                        candidates.append(("persona", AdapterKey("persona", persona, self.task, prompt=self.prompt)))
        for granularity, key in candidates:
            if key is None:
                soup = self._soup(user_id) if user_id is not None else None
                if soup is not None:
                    return soup
                continue
            info = self.store.info(key)
            if info is None:
                continue
            below = info.metadata.get("on_top_of")
            if below is None:
                return self._resolution(granularity, ((key, info.digest),))
            if global_info is not None and below == global_info.digest:
                return self._resolution(granularity, ((global_key, global_info.digest), (key, info.digest)))
            if str(key) not in self._warned:
                self._warned.add(str(key))
                logger.warning("adapter %s was trained on top of global adapter %s, which the store no longer "
                               "holds; skipping it (retrain with tailor train-adapter)", key, below)
        if global_info is not None:
            return self._resolution("global", ((global_key, global_info.digest),))
        return Resolution("global")

    def _soup(self, user_id: str) -> Resolution | None:
        """The user's soup: the pole adapters their weights name, merged. A pole the store
        holds no adapter for (none was trained: its pairs were too few) adds nothing, with a
        warning; ``None`` when the user has no weights or none of their poles has an adapter."""
        from tailor.adapters.soups import merge_poles, pole_key, soup_digest, soup_weights

        weights = soup_weights(self.store, user_id, self.task)
        if not weights:
            return None
        found = [(name, pole_key(name)) for name in sorted(weights)]
        held = [(name, key, self.store.info(key)) for name, key in found]
        missing = [str(key) for _, key, info in held if info is None]
        if missing and str(missing) not in self._warned:
            self._warned.add(str(missing))
            logger.warning("soup of %s names pole adapters the store lacks (%s); merging the others", user_id,
                           ", ".join(missing))
        present = [(name, key, info) for name, key, info in held if info is not None]
        if not present:
            return None
        names = [name for name, _, _ in present]
        keys = tuple(key for _, key, _ in present)
        infos = [info for _, _, info in present]
        values = [weights[name] for name in names]
        name = "soup_" + soup_digest([info.digest for info in infos if info is not None], values)

        def load() -> LoRAWeights:
            parts = []
            for key, weight in zip(keys, values):
                stored = self.store.load(key)
                if stored is None:
                    raise LookupError(f"adapter {key} vanished from {self.store}")
                if self.identity is not None:
                    check_same_base(str(key), dict(stored.base_model), dict(self.identity))
                parts.append((stored, weight))
            return merge_poles(parts)

        return Resolution("user", keys, LoRAChoice(name, load), soup=True)

    def _resolution(self, granularity: Granularity, stack: tuple[tuple[AdapterKey, str], ...]) -> Resolution:
        keys = tuple(key for key, _ in stack)
        name = "lora_" + "_".join(digest for _, digest in stack)
        return Resolution(granularity, keys, LoRAChoice(name, lambda: self.load_stack(keys),
                                                        shared=granularity != "user"))

    def load_stack(self, keys: Sequence[AdapterKey]) -> LoRAWeights:
        """The stacked adapters' weights summed into one LoRA."""
        parts = []
        for key in keys:
            stored = self.store.load(key)
            if stored is None:
                raise LookupError(f"adapter {key} vanished from {self.store}")
            if self.identity is not None:
                check_same_base(str(key), dict(stored.base_model), dict(self.identity))
            parts.append(from_bytes(stored.weights, stored.config["lora"]))
        return compose(parts)


@dataclass
class RuntimeStats:
    loads: int = 0
    hits: int = 0
    evictions: int = 0
    slots_created: int = 0
    load_seconds: float = 0.0


@dataclass
class _Slot:
    """One PEFT adapter kept on the model, refilled with whichever LoRA is loaded into it."""

    name: str
    shape: LoRAShape
    modules: dict[str, Any]
    """Module path (``model.layers.24.self_attn.q_proj``) -> its PEFT LoRA layer."""

    def fits(self, weights: LoRAWeights) -> bool:
        return weights.shape.rank <= self.shape.rank and set(weights.modules()) <= set(self.modules)


class LoRARuntime:
    """PEFT LoRA adapters on an already-loaded model, with an LRU cache of ``capacity``.

    Loaded adapters live in *slots*: PEFT adapters created once (PEFT's ``add_adapter``
    walks the whole model, ~60 ms) and then refilled by copying tensors (a few ms), so a
    cache miss costs a store read and a copy, not a module rebuild. A LoRA of lower rank
    than its slot is zero-padded (the update is the same). Not thread-safe by itself: the
    backend calls it under its own lock.
    """

    def __init__(self, model: Any, *, capacity: int = 8) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.torch = require("torch", "hf")
        self.model = model
        self.capacity = capacity
        self.peft: Any = None
        self.loaded: OrderedDict[str, _Slot] = OrderedDict()
        self.slots: list[_Slot] = []
        self.stats = RuntimeStats()

    def ensure(self, choices: Sequence[LoRAChoice | None]) -> list[str]:
        """Load what ``choices`` need (evicting the least recently used beyond capacity);
        return PEFT adapter names, ``__base__`` for no adapter."""
        needed = {c.name: c for c in choices if c is not None}
        for name, choice in needed.items():
            if name in self.loaded:
                self.loaded.move_to_end(name)
                self.stats.hits += 1
                continue
            weights = choice.load()
            # Evict before loading, so the slot freed can take the new adapter.
            while len(self.loaded) >= self.capacity and any(n not in needed for n in self.loaded):
                self._evict(next(n for n in self.loaded if n not in needed))
            self._load(name, weights)
        # A batch may have needed more than capacity: shrink back once it is served.
        while len(self.loaded) > max(self.capacity, len(needed)):
            self._evict(next(n for n in self.loaded if n not in needed))
        return [self.loaded[c.name].name if c is not None else BASE for c in choices]

    def _load(self, name: str, weights: LoRAWeights) -> None:
        began = time.perf_counter()
        with self.torch.inference_mode():  # slots are made and filled the same way wherever this is called
            busy = {slot.name for slot in self.loaded.values()}
            slot = next((s for s in self.slots if s.name not in busy and s.fits(weights)), None)
            if slot is None:
                free = [s for s in self.slots if s.name not in busy]
                if free and len(self.slots) >= self.capacity:
                    self._drop_slot(free[0])  # a slot of the wrong shape: make room for one that fits
                slot = self._new_slot(weights.shape)
            self._fill(slot, weights)
        self.loaded[name] = slot
        self.stats.loads += 1
        self.stats.load_seconds += time.perf_counter() - began

    def _new_slot(self, shape: LoRAShape) -> _Slot:
        peft = require("peft", "peft")
        lora_layer = require("peft.tuners.lora", "peft").LoraLayer
        name = f"slot{self.stats.slots_created}"
        config = shape.peft_config(inference=True)
        if self.peft is None:
            with warnings.catch_warnings():  # a deprecation inside peft, not ours to fix
                warnings.simplefilter("ignore", FutureWarning)
                self.peft = peft.PeftModel(self.model, config, adapter_name=name)
        else:
            self.peft.add_adapter(name, config)
        self.peft.eval()
        modules = {path: module for path, module in self.model.named_modules()
                   if isinstance(module, lora_layer) and name in module.lora_A}
        slot = _Slot(name, shape, modules)
        self.slots.append(slot)
        self.stats.slots_created += 1
        return slot

    def _fill(self, slot: _Slot, weights: LoRAWeights) -> None:
        unknown = set(weights.modules()) - set(slot.modules)
        if unknown:
            raise ValueError(f"the adapter holds weights for modules this model lacks: {sorted(unknown)[:3]}")
        rank = weights.shape.rank
        for path, module in slot.modules.items():
            a, b = module.lora_A[slot.name].weight, module.lora_B[slot.name].weight
            a.zero_()
            b.zero_()
            if path + ".lora_A.weight" in weights.tensors:
                # The slot applies its own scaling; fold the ratio into B.
                ratio = weights.shape.scaling / module.scaling[slot.name]
                a[:rank].copy_(weights.tensors[path + ".lora_A.weight"])
                b[:, :rank].copy_(weights.tensors[path + ".lora_B.weight"] * ratio)

    def _evict(self, name: str) -> None:
        del self.loaded[name]
        self.stats.evictions += 1
        busy = {slot.name for slot in self.loaded.values()}
        # Slots beyond capacity (a batch that needed more) are dropped once free.
        for slot in [s for s in self.slots if s.name not in busy][: max(len(self.slots) - self.capacity, 0)]:
            self._drop_slot(slot)

    def _drop_slot(self, slot: _Slot) -> None:
        with warnings.catch_warnings():  # "adapter X was active": activity is set per batch anyway
            warnings.simplefilter("ignore", UserWarning)
            self.peft.delete_adapter(slot.name)
        self.slots.remove(slot)

    @contextmanager
    def applied(self, names: Sequence[str]) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Within the block: the model to call and the keyword arguments that apply
        ``names`` per row (PEFT's ``adapter_names``). With no adapter in the batch the
        LoRA layers are bypassed and the plain model is returned."""
        if self.peft is None:
            yield self.model, {}
            return
        if all(name == BASE for name in names):
            with self.peft.disable_adapter():
                yield self.model, {}
            return
        yield self.peft, {"adapter_names": list(names)}


class AdaptedBackend:
    """A backend view that runs each request with its user's adapter (see
    :meth:`tailor.backends.hf.TransformersBackend.with_adapters`).

    ``last_resolutions`` holds, for the latest batch, what each request resolved to.
    ``engine`` names the engines that ran its adapter requests (a fast engine routes them:
    :meth:`tailor.backends.fallback.TransformersFallback.route`), and, before any has, those that may.
    """

    def __init__(self, backend: Any, resolver: AdapterResolver) -> None:
        self.backend = backend
        self.resolver = resolver
        self.name = f"{backend.name}+adapters"
        # A fast engine that hands adapter requests to other models names those.
        self._engines = str(getattr(backend, "adapter_engine", None) or getattr(backend, "engine", backend.name))
        self._ran: set[str] = set()
        self.model_id = getattr(backend, "model_id", backend.name)
        self.last_resolutions: list[Resolution] = []

    @property
    def engine(self) -> str:
        """``ENGINE[/ENGINE...]+lora``: in the order the backend lists them."""
        if not self._ran:
            return f"{self._engines}+lora"
        order = self._engines.split("/")
        ran = sorted(self._ran, key=lambda engine: (order.index(engine) if engine in order else len(order), engine))
        return "/".join(ran) + "+lora"

    def _record(self, resolutions: Sequence[Resolution]) -> None:
        route, label = getattr(self.backend, "route", None), getattr(self.backend, "engine_label", None)
        if route is not None and label is not None:
            self._ran.update(label(route(r.choice)) for r in resolutions if r.choice is not None)

    def count_tokens(self, text: str) -> int:
        return int(self.backend.count_tokens(text))

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        resolutions = [self.resolver.resolve(r.user_id) for r in requests]
        self.last_resolutions = resolutions
        results: list[GenerationResult] = self.backend.generate(requests, lora=[r.choice for r in resolutions])
        self._record(resolutions)
        return results

    def stream(self, request: GenerationRequest) -> TextStream:
        """One reply as it is generated, with its user's adapter (``last_resolutions`` holds
        what it resolved to). The wrapped backend must stream
        (:meth:`~tailor.backends.hf.TransformersBackend.stream`)."""
        resolution = self.resolver.resolve(request.user_id)
        self.last_resolutions = [resolution]
        self._record([resolution])
        stream: TextStream = self.backend.stream(request, lora=resolution.choice)
        return stream


def adapted_view(backend: Any, store: AdapterStore, task: str, *, personas: Mapping[str, str] | None = None,
                 prompt: str | None = None, levels: Sequence[str] | None = None) -> AdaptedBackend:
    """``backend`` running each request with its user's adapter from ``store`` for ``task``
    (the :class:`AdapterResolver` of these arguments, checked against ``backend.identity``;
    ``prompt`` and ``levels`` take the resolver's defaults when not given)."""
    options: dict[str, Any] = {"prompt": prompt} if prompt is not None else {}
    if levels is not None:
        options["levels"] = tuple(levels)
    return AdaptedBackend(backend, AdapterResolver(store, task, personas=personas, identity=backend.identity,
                                                   **options))
