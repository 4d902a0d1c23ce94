"""Personalization methods by name, as ``tailor eval --method`` takes them.

A method spec is a name, optionally followed by ``:`` and a prompt layout:
``bm25`` (the task's preferred layout), ``bm25:lamp``, ``bm25:dialogue``. The label
methods (``profile-prior``, ``knn``, ``user-mean``, ``global-mean``, ``none+prior``,
``bm25+prior``) serve the tasks with a label set or ratings (see
:mod:`tailor.personalizers.labels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tailor.personalizers.base import NoPersonalization, Personalized, Personalizer, RetrievalPersonalizer
from tailor.personalizers.labels import LABEL_METHODS, MODEL_FREE_METHODS, PRIOR_METHODS, RATING_ONLY_METHODS
from tailor.prompting.builder import LAYOUTS, Layout, PromptBudget, TokenCounter
from tailor.retrieval.base import Retriever
from tailor.tasks.base import TaskSpec

if TYPE_CHECKING:
    from tailor.adapters.store import AdapterStore
    from tailor.backends.base import Backend
    from tailor.embeddings.base import Embedder
    from tailor.profiles.base import ProfileStore

# Methods that rank by embeddings: they need an embedder, and profit from a store of vectors.
DENSE_METHODS = ("dense", "hybrid", "recency+dense")
RETRIEVAL_METHODS = ("bm25", "recency", "random", *DENSE_METHODS)
# Methods that call the LLM before answering (a profile summary, a persona description, a style note).
LLM_METHODS = ("summary", "summary+bm25", "persona", "refine")
# Methods that change the model per user (a LoRA adapter, a soft prompt): they need --adapters.
ADAPTER_METHODS = ("lora", "lora+bm25", "user-embedding")
METHODS = ("none", *RETRIEVAL_METHODS, *LLM_METHODS, *ADAPTER_METHODS, *LABEL_METHODS)

_DEFAULT_BUDGET = PromptBudget()


@dataclass(frozen=True)
class MethodSpec:
    name: str
    layout: Layout | None = None

    def __str__(self) -> str:
        return self.name if self.layout is None else f"{self.name}:{self.layout}"


def parse_method(spec: str) -> MethodSpec:
    """``"bm25:dialogue"`` -> ``MethodSpec("bm25", "dialogue")``, with clear errors."""
    name, _, layout = spec.strip().partition(":")
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    if layout and layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} in method {spec!r}; valid layouts: {', '.join(LAYOUTS)}")
    if layout and name in ("none", "none+prior", *MODEL_FREE_METHODS):
        raise ValueError(f"method {name!r} pastes no items, so it takes no layout")
    if layout and name in ("lora", "user-embedding"):
        raise ValueError(f"method {name!r} pastes no items, so it takes no layout")
    return MethodSpec(name, layout or None)  # type: ignore[arg-type]


def parse_methods(text: str) -> list[MethodSpec]:
    """A comma-separated list of method specs, without duplicates."""
    specs = [parse_method(part) for part in text.split(",") if part.strip()]
    if not specs:
        raise ValueError("no method given; valid methods: " + ", ".join(METHODS))
    seen = set()
    for spec in specs:
        if str(spec) in seen:
            raise ValueError(f"method {spec} is listed twice")
        seen.add(str(spec))
    return specs


def make_retriever(name: str, task: TaskSpec, *, seed: int = 0, embedder: Embedder | None = None,
                   store: ProfileStore | None = None) -> Retriever:
    """The retriever for a method name on ``task``.

    The dense methods embed with ``embedder`` (all-MiniLM-L6-v2, loaded once per process,
    when ``None``) and keep record vectors in ``store`` when one is given.
    """
    if name == "bm25":
        from tailor.retrieval.bm25 import BM25Retriever

        return BM25Retriever(document=task.document)
    if name == "recency":
        from tailor.retrieval.simple import RecencyRetriever

        return RecencyRetriever()
    if name == "random":
        from tailor.retrieval.simple import RandomRetriever

        return RandomRetriever(seed=seed)
    if name in DENSE_METHODS:
        from tailor.embeddings import load_embedder
        from tailor.retrieval.dense import DenseRetriever, RecencyDenseRetriever
        from tailor.retrieval.hybrid import HybridRetriever

        chosen = embedder if embedder is not None else load_embedder()
        kinds: dict[str, type[DenseRetriever | HybridRetriever | RecencyDenseRetriever]] = {
            "dense": DenseRetriever, "hybrid": HybridRetriever, "recency+dense": RecencyDenseRetriever}
        return kinds[name](chosen, store, document=task.document)
    raise ValueError(f"unknown retriever {name!r}; valid retrievers: {', '.join(RETRIEVAL_METHODS)}")


def build_personalizer(spec: MethodSpec | str, task: TaskSpec, *, k: int = 1, count_tokens: TokenCounter,
                       budget: PromptBudget = _DEFAULT_BUDGET, seed: int = 0, embedder: Embedder | None = None,
                       store: ProfileStore | None = None, backend: Backend | None = None,
                       adapters: AdapterStore | None = None) -> Personalizer:
    """The personalizer for a method spec on ``task``; ``embedder`` and ``store`` serve the
    dense methods (see :func:`make_retriever`); the LLM methods also need ``backend``; the
    adapter methods need ``adapters`` (their personalizers' ``bind(backend)`` gives the
    backend view to generate with)."""
    method = parse_method(spec) if isinstance(spec, str) else spec
    if method.name in LABEL_METHODS:
        return _build_label_method(method, task, k=k, count_tokens=count_tokens, budget=budget, store=store)
    if method.name == "none":
        return NoPersonalization(count_tokens=count_tokens, budget=budget)
    if method.name in ADAPTER_METHODS:
        from tailor.personalizers.adapters import build_adapter_personalizer

        return build_adapter_personalizer(method.name, task, adapters, k=k, count_tokens=count_tokens, budget=budget,
                                          layout=method.layout or task.layout, store=store)
    if method.name in LLM_METHODS:
        return _build_llm_method(method, task, k=k, count_tokens=count_tokens, budget=budget, seed=seed,
                                 embedder=embedder, store=store, backend=backend)
    layout = method.layout or task.layout
    retriever = make_retriever(method.name, task, seed=seed, embedder=embedder, store=store)
    return RetrievalPersonalizer(str(method), retriever, k=k, layout=layout, count_tokens=count_tokens, budget=budget)


def _build_label_method(method: MethodSpec, task: TaskSpec, *, k: int, count_tokens: TokenCounter,
                        budget: PromptBudget, store: ProfileStore | None) -> Personalizer:
    from tailor.personalizers.labels import (
        KNN_VOTERS,
        KNNPersonalizer,
        MeanRatingPersonalizer,
        PriorPersonalizer,
        ProfilePriorPersonalizer,
    )

    if not task.uses_candidates:
        raise ValueError(f"method {method} needs a task with a label set or ratings; {task.name} is a "
                         f"{task.kind} task")
    if method.name in RATING_ONLY_METHODS:
        if task.kind != "rating":
            raise ValueError(f"method {method} needs a rating task; {task.name} is a {task.kind} task")
        if store is None:
            raise ValueError(f"method {method} needs a profile store to read the ratings from")
        return MeanRatingPersonalizer("user" if method.name == "user-mean" else "global", store)
    if method.name == "profile-prior":
        return ProfilePriorPersonalizer()
    if method.name == "knn":
        return KNNPersonalizer(make_retriever("bm25", task), k=max(k, KNN_VOTERS))
    inner = build_personalizer(MethodSpec(method.name.removesuffix("+prior"), method.layout), task, k=k,
                               count_tokens=count_tokens, budget=budget, store=store)
    return PriorPersonalizer(str(method), inner)


def _build_llm_method(method: MethodSpec, task: TaskSpec, *, k: int, count_tokens: TokenCounter,
                      budget: PromptBudget, seed: int, embedder: Embedder | None, store: ProfileStore | None,
                      backend: Backend | None) -> Personalizer:
    if backend is None or store is None:
        raise ValueError(f"method {method} needs a backend and a profile store to write its "
                         "summaries, personas or style notes")
    from tailor.personalizers.llm_methods import PersonaPersonalizer, RefinePersonalizer, SummaryPersonalizer

    layout = method.layout or task.layout
    if method.name in ("summary", "summary+bm25"):
        from tailor.prompting.summary import ProfileSummarizer

        retriever = make_retriever("bm25", task) if method.name == "summary+bm25" else None
        return SummaryPersonalizer(str(method), ProfileSummarizer(backend, task, store), retriever=retriever, k=k,
                                   layout=layout, count_tokens=count_tokens, budget=budget)
    if method.name == "persona":
        from tailor.embeddings import load_embedder

        return PersonaPersonalizer(store, embedder if embedder is not None else load_embedder(), backend,
                                   count_tokens=count_tokens, budget=budget, seed=seed)
    from tailor.prompting.refine import StyleNoteWriter

    # A style note needs a few examples to generalize from, whatever --k says for pasting items.
    return RefinePersonalizer(make_retriever("bm25", task), StyleNoteWriter(backend, task), k=max(k, 4),
                              count_tokens=count_tokens, budget=budget)


__all__ = [
    "ADAPTER_METHODS",
    "DENSE_METHODS",
    "LABEL_METHODS",
    "LLM_METHODS",
    "METHODS",
    "MODEL_FREE_METHODS",
    "PRIOR_METHODS",
    "RETRIEVAL_METHODS",
    "MethodSpec",
    "NoPersonalization",
    "Personalized",
    "Personalizer",
    "RetrievalPersonalizer",
    "build_personalizer",
    "make_retriever",
    "parse_method",
    "parse_methods",
]
