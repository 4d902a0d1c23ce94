"""Personalizers by method, as ``tailor eval --method`` and ``tailor serve --method`` take
them: the grammar is :mod:`tailor.personalizers.methods` (``bm25``, ``bm25:dialogue``,
``summary+persona+hybrid``, ``lora+bm25``...), and :func:`build_personalizer` makes the
one personalizer object that both commands use for a method. The label methods
(``profile-prior``, ``knn``, ``user-mean``, ``global-mean``, ``none+prior``,
``bm25+prior``) serve the tasks with a label set or ratings (see
:mod:`tailor.personalizers.labels`).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from tailor.personalizers.base import NoPersonalization, Personalized, Personalizer, RetrievalPersonalizer
from tailor.personalizers.labels import LABEL_METHODS, MODEL_FREE_METHODS, PRIOR_METHODS
from tailor.personalizers.methods import (
    PERSONALIZERS,
    MethodSpec,
    parse_method,
    parse_methods,
    retriever_needs_embedder,
)
from tailor.prompting.builder import PromptBudget, TokenCounter
from tailor.retrieval.base import Retriever
from tailor.tasks.base import TaskSpec

if TYPE_CHECKING:
    from tailor.adapters.store import AdapterStore
    from tailor.backends.base import Backend
    from tailor.embeddings.base import Embedder
    from tailor.personalizers.llm_methods import SummarySource
    from tailor.personas.chooser import PersonaChooser
    from tailor.store.contract import ProfileStore

# Listings for help texts; the grammar itself is MethodSpec.parse.
DENSE_METHODS = ("dense", "hybrid", "recency+dense")
RETRIEVAL_METHODS = ("bm25", "recency", "random", *DENSE_METHODS)
LLM_METHODS = ("summary", "summary+bm25", "persona", "refine")
ADAPTER_METHODS = ("lora", "lora+bm25", "user-embedding")
METHODS = ("none", *RETRIEVAL_METHODS, *LLM_METHODS, *ADAPTER_METHODS, *LABEL_METHODS)

_DEFAULT_BUDGET = PromptBudget()


def make_retriever(name: str, task: TaskSpec, *, seed: int = 0, embedder: Embedder | None = None,
                   store: ProfileStore | None = None) -> Retriever:
    """The retriever registered as ``name`` (:data:`tailor.retrieval.RETRIEVERS`, where an
    entry point can add one) for ``task``.

    The registered class is called with the keyword arguments its constructor names among
    ``embedder`` (all-MiniLM-L6-v2, loaded once per process, when ``None``), ``store``
    (where record vectors are kept), ``document`` (the task's indexed text) and ``seed``.
    """
    from tailor.retrieval import RETRIEVERS

    factory = RETRIEVERS.load(name)
    parameters = inspect.signature(factory).parameters
    arguments: dict[str, Any] = {}
    if "embedder" in parameters:
        from tailor.embeddings import load_embedder

        arguments["embedder"] = embedder if embedder is not None else load_embedder()
    if "store" in parameters:
        arguments["store"] = store
    if "document" in parameters:
        arguments["document"] = task.document
    if "seed" in parameters:
        arguments["seed"] = seed
    retriever: Retriever = factory(**arguments)
    return retriever


def build_personalizer(spec: MethodSpec | str, task: TaskSpec, *, k: int | None = None, count_tokens: TokenCounter,
                       budget: PromptBudget = _DEFAULT_BUDGET, seed: int = 0, embedder: Embedder | None = None,
                       store: ProfileStore | None = None, backend: Backend | None = None,
                       adapters: AdapterStore | None = None, retriever: Retriever | None = None,
                       summaries: SummarySource | None = None, personas: PersonaChooser | None = None) -> Personalizer:
    """The personalizer for a method on ``task``, retrieving ``k`` items (the task's
    :attr:`~tailor.tasks.base.TaskSpec.k` when ``None``).

    ``embedder`` and ``store`` serve the dense methods (see :func:`make_retriever`); the
    LLM methods also need ``backend``; the adapter methods need ``adapters`` (their
    personalizers' ``bind(backend)`` gives the backend view to generate with).

    What ``tailor serve`` passes in place of the defaults: ``retriever`` (the method's
    ranking read from its stored per-user indexes), ``summaries`` (stored summaries,
    written in the background), ``personas`` (scoped to the user's tenant) and, for
    ``refine``, a ``backend`` whose calls go through its model queue. The prompt is built
    the same way.
    """
    method = parse_method(spec) if isinstance(spec, str) else spec
    k = task.k if k is None else k
    if method.plugin is not None:
        return _build_plugin(method, task, k=k, count_tokens=count_tokens, budget=budget, seed=seed,
                             embedder=embedder, store=store, backend=backend)
    if method.model_free is not None or method.prior:
        return _build_label_method(method, task, k=k, count_tokens=count_tokens, budget=budget, store=store)
    layout = method.layout or task.layout
    if method.adapter is not None:
        from tailor.personalizers.adapters import build_adapter_personalizer

        return build_adapter_personalizer(method.name, task, adapters, k=k, count_tokens=count_tokens, budget=budget,
                                          layout=layout, store=store)
    if method.refine:
        if backend is None:
            raise ValueError(f"method {method} needs a backend to write its style notes")
        from tailor.personalizers.llm_methods import REFINE_RETRIEVAL, RefinePersonalizer
        from tailor.prompting.refine import StyleNoteWriter

        # A style note needs a few examples to generalize from, whatever k says for pasting items.
        return RefinePersonalizer(retriever or make_retriever(REFINE_RETRIEVAL, task), StyleNoteWriter(backend, task),
                                  k=max(k, 4), count_tokens=count_tokens, budget=budget)
    if method.retrieval != "none" and retriever is None:
        retriever = make_retriever(method.retrieval, task, seed=seed, embedder=embedder, store=store)
    if not (method.summary or method.persona):
        if method.retrieval == "none":
            return NoPersonalization(count_tokens=count_tokens, budget=budget)
        if retriever is None:
            raise AssertionError("unreachable: a retrieval method without a retriever")
        return RetrievalPersonalizer(str(method), retriever, k=k, layout=layout, count_tokens=count_tokens,
                                     budget=budget)
    from tailor.personalizers.llm_methods import NotesPersonalizer

    if method.summary and summaries is None:
        if backend is None or store is None:
            raise ValueError(f"method {method} needs a backend and a profile store to write its summaries")
        from tailor.prompting.summary import ProfileSummarizer

        summaries = ProfileSummarizer(backend, task, store)
    persona_backend = None
    if method.persona and personas is None:
        if backend is None or store is None:
            raise ValueError(f"method {method} needs a backend and a profile store to build its personas")
        from tailor.embeddings import load_embedder
        from tailor.personas.chooser import PersonaChooser

        personas = PersonaChooser(store, embedder if embedder is not None else load_embedder())
        persona_backend = backend
    return NotesPersonalizer(str(method), summaries=summaries if method.summary else None,
                             personas=personas if method.persona else None, retriever=retriever, k=k, layout=layout,
                             count_tokens=count_tokens, budget=budget, persona_backend=persona_backend, seed=seed)


def _build_plugin(method: MethodSpec, task: TaskSpec, **options: Any) -> Personalizer:
    """A method a package adds (:data:`~tailor.personalizers.methods.PERSONALIZERS`), called
    with the keyword arguments its factory names."""
    from tailor.personalizers import methods

    factory = methods.PERSONALIZERS.load(str(method.plugin))  # looked up now: tests may swap the registry
    parameters = inspect.signature(factory).parameters
    offered = {"task": task, "layout": method.layout or task.layout, **options}
    if "embedder" in parameters and offered.get("embedder") is None:
        from tailor.embeddings import load_embedder

        offered["embedder"] = load_embedder()
    personalizer: Personalizer = factory(**{name: value for name, value in offered.items() if name in parameters})
    return personalizer


def _build_label_method(method: MethodSpec, task: TaskSpec, *, k: int, count_tokens: TokenCounter,
                        budget: PromptBudget, store: ProfileStore | None) -> Personalizer:
    from tailor.personalizers.labels import (
        KNN_VOTERS,
        RATING_ONLY_METHODS,
        ItemBiasPersonalizer,
        KNNPersonalizer,
        MeanRatingPersonalizer,
        PriorPersonalizer,
        ProfilePriorPersonalizer,
    )

    if not task.uses_candidates:
        raise ValueError(f"method {method} needs a task with a label set or ratings; {task.name} is a "
                         f"{task.kind} task")
    if method.model_free in RATING_ONLY_METHODS:
        if task.kind != "rating":
            raise ValueError(f"method {method} needs a rating task; {task.name} is a {task.kind} task")
        if store is None:
            raise ValueError(f"method {method} needs a profile store to read the ratings from")
        if method.model_free == "item-bias":
            return ItemBiasPersonalizer(store)
        return MeanRatingPersonalizer("user" if method.model_free == "user-mean" else "global", store)
    if method.model_free == "profile-prior":
        return ProfilePriorPersonalizer()
    if method.model_free == "knn":
        return KNNPersonalizer(make_retriever("bm25", task), k=max(k, KNN_VOTERS))
    inner = build_personalizer(MethodSpec(method.retrieval, layout=method.layout), task, k=k,
                               count_tokens=count_tokens, budget=budget, store=store)
    return PriorPersonalizer(str(method), inner)


__all__ = [
    "ADAPTER_METHODS",
    "DENSE_METHODS",
    "LABEL_METHODS",
    "LLM_METHODS",
    "METHODS",
    "MODEL_FREE_METHODS",
    "PERSONALIZERS",
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
    "retriever_needs_embedder",
]
