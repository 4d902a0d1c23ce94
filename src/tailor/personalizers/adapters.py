"""The representation-learning methods: ``lora``, ``lora+bm25`` and ``user-embedding``.

These personalize the model rather than the prompt, so each personalizer has, besides
``personalize``, a ``bind(backend)`` that returns the backend view its requests must go
through: the view applies the user's LoRA adapter (``lora``, ``lora+bm25``) or places the
user's soft prompt before the prompt (``user-embedding``). The prompt is the ``none``
method's (``lora``, ``user-embedding``) or BM25's (``lora+bm25``).

Granularity: the LoRA methods fall back from the user's adapter to their persona's, then
the global one, then the base model; each prediction records where it landed
(``granularity``, and ``notes["adapter"]``: ``user``, ``persona:ID``, ``global`` or ``none``).

An adapter serves the prompt it was trained on (:mod:`tailor.adapters.prompts`): ``lora``
uses the adapters trained for the ``none`` prompt, ``lora+bm25`` those trained for the
bm25 prompt with the same layout and ``k``; a store without them is an error that names
the ``tailor train-adapter`` command to run, and ``training`` describes what was found
(``tailor eval`` writes it into results.json).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tailor.adapters.prompts import TrainingPrompt
from tailor.adapters.store import AdapterKey, AdapterStore
from tailor.personalizers.contract import Personalized, Personalizer
from tailor.personalizers.prompt import NoPersonalization
from tailor.prompting.builder import PromptBudget, TokenCounter
from tailor.tasks.spec import TaskSpec
from tailor.types import GenerationRequest, GenerationResult, Granularity, Profile

__all__ = ["LoRAPersonalizer", "SoftPromptBackend", "UserEmbeddingPersonalizer"]

_FINEST: tuple[Granularity, ...] = ("user", "persona", "global")


def _needs_adapter_backend(backend: Any, method: str) -> None:
    if not hasattr(backend, "with_adapters"):
        raise ValueError(f"method {method} needs a backend that runs the model in-process "
                         f"(default or transformers:PATH), not {getattr(backend, 'name', backend)!r}")


class LoRAPersonalizer:
    """The user's LoRA adapter, with the prompt of ``inner`` (``none`` or a retrieval method),
    among the adapters trained for that prompt (``prompt``, a :class:`TrainingPrompt`)."""

    def __init__(self, name: str, inner: Personalizer, store: AdapterStore, task: TaskSpec, *,
                 prompt: TrainingPrompt | None = None, personas: Mapping[str, str] | None = None) -> None:
        from tailor.adapters.runtime import AdapterResolver

        prompt = prompt if prompt is not None else TrainingPrompt()
        self.training = _trained_for(store, task, prompt, name)
        self.name = name
        self.inner = inner
        self.resolver = AdapterResolver(store, task.name, personas=personas, prompt=prompt.id)

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        decided = self.inner.personalize(task, text, profile)
        resolution = self.resolver.resolve(profile.user_id)
        levels = (resolution.granularity, decided.granularity) if decided.retrieved else (resolution.granularity,)
        finest = min(levels, key=_FINEST.index)
        return Personalized(messages=decided.messages, retrieved=decided.retrieved, granularity=finest,
                            notes={**decided.notes, "adapter": resolution.label})

    def bind(self, backend: Any) -> Any:
        """``backend`` as a view that applies each request's adapter."""
        from tailor.adapters.runtime import AdaptedBackend

        _needs_adapter_backend(backend, self.name)
        self.resolver.identity = dict(backend.identity)
        return AdaptedBackend(backend, self.resolver)


class UserEmbeddingPersonalizer:
    """The ``none`` prompt after a soft prompt projected from the user's history embeddings.

    ``personalize`` computes the user's soft prompt for this input (it has the profile);
    the view returned by ``bind`` places it before the request with the same user and
    input. ``store`` (a profile store), when it holds vectors of the embedder, saves
    embedding the history again.
    """

    name = "user-embedding"

    def __init__(self, adapters: AdapterStore, task: TaskSpec, *, count_tokens: TokenCounter,
                 budget: PromptBudget = PromptBudget(), store: Any = None) -> None:
        from tailor.adapters.soft_prompt import SoftPromptConfig, SoftPromptModel

        key = AdapterKey.global_(task.name, "soft-prompt")
        stored = adapters.load(key)
        if stored is None:
            raise ValueError(f"{adapters} holds no user-embedding projector for task {task.name}; train it with "
                             f"tailor train-adapter --kind user-embedding --scope global --task {task.name} "
                             "--data DIR --out DIR")
        self.stored = stored
        self.config = SoftPromptConfig.from_dict(stored.config["soft_prompt"])
        dims = stored.config["projector"]
        self.projector = SoftPromptModel.from_bytes(stored.weights, int(dims["input_dim"]), int(dims["output_dim"]),
                                                    self.config)
        self.none = NoPersonalization(count_tokens=count_tokens, budget=budget)
        self.profile_store = store
        self.embedder: Any = None
        if self.config.embedder != "llm":
            from tailor.adapters.soft_prompt import load_item_embedder

            self.embedder = load_item_embedder(self.config.embedder)
            self._check_embedder()
        self._vectors: dict[tuple[str, str], np.ndarray] = {}
        self._pending: OrderedDict[tuple[str | None, str], Any] = OrderedDict()

    def _check_embedder(self) -> None:
        expected = self.stored.config["projector"]["embedder_name"]
        if self.embedder.name != expected:
            raise ValueError(f"the projector was trained on {expected} vectors, but the embedder gives "
                             f"{self.embedder.name}")

    def _item_vectors(self, task: TaskSpec, profile: Profile) -> np.ndarray:
        missing = [r for r in profile.records if (profile.user_id, r.id) not in self._vectors]
        if missing and self.profile_store is not None and hasattr(self.profile_store, "get_embeddings"):
            try:
                ids, matrix = self.profile_store.get_embeddings(profile.user_id, self.embedder.name)
            except KeyError:  # the store does not hold this user
                ids, matrix = [], None
            for record_id, vector in zip(ids, matrix if matrix is not None else ()):
                self._vectors[(profile.user_id, record_id)] = vector
            missing = [r for r in missing if (profile.user_id, r.id) not in self._vectors]
        if missing:
            vectors = self.embedder.embed([task.document(r) for r in missing])
            for record, vector in zip(missing, vectors):
                self._vectors[(profile.user_id, record.id)] = vector
        if not profile.records:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.stack([self._vectors[(profile.user_id, r.id)] for r in profile.records])

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        from tailor.adapters.soft_prompt import user_vector

        if self.embedder is None:
            raise RuntimeError("call bind(backend) before personalize: the llm embedder needs the backend's model")
        decided = self.none.personalize(task, text, profile)
        items = self._item_vectors(task, profile)
        query = self.embedder.embed([task.query(text)])[0]
        prefix = self.projector.prefix(user_vector(query, items, self.config.temperature))
        self._pending[(profile.user_id, decided.messages[-1]["content"])] = prefix
        while len(self._pending) > 4096:  # requests that were never generated
            self._pending.popitem(last=False)
        granularity: Granularity = "user" if profile.records else "global"
        return Personalized(messages=decided.messages, granularity=granularity, notes={"adapter": "soft-prompt"})

    def take(self, request: GenerationRequest) -> Any:
        """The soft prompt computed for this request's user and input (``None`` if there is none)."""
        return self._pending.pop((request.user_id, request.messages[-1]["content"]), None)

    def bind(self, backend: Any) -> Any:
        from tailor.adapters.identity import check_same_base
        from tailor.adapters.soft_prompt import load_item_embedder

        _needs_adapter_backend(backend, self.name)
        check_same_base(str(self.stored.key), dict(self.stored.base_model), dict(backend.identity))
        if self.config.embedder == "llm":
            self.embedder = load_item_embedder("llm", backend.model, backend.tokenizer,
                                               backend.identity["fingerprint"])
            self._check_embedder()
        return SoftPromptBackend(backend, self)


class SoftPromptBackend:
    """A backend view that puts each request's soft prompt before its prompt."""

    def __init__(self, backend: Any, personalizer: UserEmbeddingPersonalizer) -> None:
        self.backend = backend
        self.personalizer = personalizer
        self.name = f"{backend.name}+soft-prompt"
        self.model_id = getattr(backend, "model_id", backend.name)

    def count_tokens(self, text: str) -> int:
        return int(self.backend.count_tokens(text))

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        prefixes = [self.personalizer.take(r) for r in requests]
        results: list[GenerationResult] = self.backend.generate(requests, prefixes=prefixes)
        return results


def _train_command(task: TaskSpec, prompt: TrainingPrompt) -> str:
    method = "" if prompt.method == "none" else f" --method {prompt.spec} --k {prompt.k}"
    budget = "" if prompt.budget == PromptBudget() else (f" --input-tokens {prompt.input_tokens}"
                                                        f" --context-tokens {prompt.context_tokens}")
    return f"tailor train-adapter --task {task.name} --data DIR{method}{budget} --out DIR"


def _trained_for(store: AdapterStore, task: TaskSpec, prompt: TrainingPrompt, method: str) -> dict[str, Any]:
    """What the store's adapters for ``prompt`` were trained on; an error naming the command
    to run when it holds none, or when they were trained with other token budgets."""
    found = store.list(task=task.name, kind="lora", prompt=prompt.id)
    if not found:
        others = sorted({a.key.prompt for a in store.list(task=task.name, kind="lora")})
        held = f"it holds adapters for the prompts {', '.join(others)}" if others else "it holds none for this task"
        raise ValueError(f"method {method} needs LoRA adapters trained on the {prompt.id} prompt for task "
                         f"{task.name}, and {store} has none ({held}); train them with: {_train_command(task, prompt)}")
    described = next((a for a in found if a.key.scope == "global"), found[0])
    stored = described.config.get("prompt")
    if stored is not None and TrainingPrompt.from_dict(dict(stored)).budget != prompt.budget:
        trained = TrainingPrompt.from_dict(dict(stored))
        raise ValueError(f"the {prompt.id} adapters in {store} were trained with token budgets input "
                         f"{trained.input_tokens} / context {trained.context_tokens}, but this evaluation builds "
                         f"prompts with {prompt.input_tokens} / {prompt.context_tokens}: pass --input-tokens "
                         f"{trained.input_tokens} --context-tokens {trained.context_tokens} to tailor eval, or "
                         f"retrain with {_train_command(task, prompt)}")
    scopes: dict[str, int] = {}
    for info in found:
        scopes[info.key.scope] = scopes.get(info.key.scope, 0) + 1
    return {"prompt": prompt.id, "method": prompt.method, "layout": prompt.layout, "k": prompt.k,
            "input_tokens": prompt.input_tokens, "context_tokens": prompt.context_tokens,
            # Adapters from before prompts were recorded saw the none prompt, inputs cut short.
            "recorded": stored is not None, "split": described.metadata.get("split"),
            "data": described.metadata.get("data"), "adapters": scopes,
            "global_digest": described.digest if described.key.scope == "global" else None}
