"""What a method is: one registered object that knows its name and help line, its
parameters, what it needs, whether ``tailor serve`` can serve it, and how it builds its
part of a personalizer.

A method as ``--method`` names it (``summary+persona+hybrid:dialogue``) is a composition of
such objects (:class:`~tailor.methods.spec.MethodSpec`). Each object plays one role in it:

- ``retrieval`` (:class:`RetrievalMethod`): which of the user's records go into the prompt
  (``none``, ``bm25``, ``dense``...); at most one per method;
- ``notes`` (:class:`NoteMethod`): a line about the user above the input (``summary``,
  ``persona``); any number, each once;
- ``modifier`` (:class:`ModifierMethod`): changes what the prompt of the others becomes
  (``lora`` runs it on the user's adapter, ``prior`` multiplies its label scores by the
  user's prior);
- ``whole`` (:class:`WholeMethod`): a personalizer of its own, used alone (``refine``,
  ``knn``, ``user-embedding``, a package's method);
- ``recommender`` (:class:`RecommenderMethod`): a classic recommender of a ranking task
  (``popular``, ``item-knn``, ``als``, ``bpr``): alone it ranks the candidates; first in a
  method (``als+bm25``) its top items are reranked by the model on the rest's prompt.

Nothing here imports a model, a retriever or a store at import time, so listing methods
(``tailor --help``) stays cheap: an object imports what it builds with when it builds.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from tailor.adapters.store import AdapterStore
    from tailor.embeddings.embedder import Embedder
    from tailor.methods.spec import MethodSpec
    from tailor.personalizers.contract import Personalizer
    from tailor.personalizers.notes import NoteSource, SummarySource
    from tailor.personalizers.ranking import RecommenderRanker
    from tailor.personas.chooser import PersonaChooser
    from tailor.prompting.builder import PromptBudget, TokenCounter
    from tailor.recommenders.models import Recommender
    from tailor.retrieval.retriever import Retriever
    from tailor.retrieval.stored import StoredIndexes
    from tailor.store.contract import ProfileStore
    from tailor.tasks.spec import TaskSpec
    from tailor.types import Backend, TaskExample

Role = Literal["retrieval", "notes", "modifier", "whole", "recommender"]
Need = Literal["embedder", "backend", "store", "adapters", "labels", "ratings", "train-split"]
NEEDS: tuple[Need, ...] = ("embedder", "backend", "store", "adapters", "labels", "ratings", "train-split")
"""What a method may need: an embedder (dense rankings, personas), the model before the
answer (summaries, style notes), the profile store (cross-user reads), trained adapters
(``--adapters``), a task with a label set or with ratings, the data's train split."""
Parameter = Literal["k", "layout"]


@dataclass(frozen=True)
class BuildContext:
    """Everything a method may build its personalizer with. ``tailor eval`` and ``tailor
    serve`` fill the same fields; what serve passes differs only in where things come from:
    ``indexes`` (records ranked from the store's per-user indexes instead of a loaded
    profile; the profile handed to ``personalize`` then holds only the user's id),
    ``summaries`` (the newest stored summary, written in the background), ``personas``
    (scoped to the user's tenant) and ``backend`` (the served model, through its queue)."""

    task: TaskSpec
    count_tokens: TokenCounter
    k: int | None = None
    """Items retrieved per input; ``None``: the task's measured default (:attr:`TaskSpec.k`)."""
    budget: PromptBudget = field(default_factory=lambda: _default_budget())
    seed: int = 0
    embedder: Embedder | None = None
    """The embedder of the dense rankings and personas; ``None``: all-MiniLM-L6-v2, loaded
    once per process when a method needs it."""
    store: ProfileStore | None = None
    backend: Backend | None = None
    adapters: AdapterStore | None = None
    indexes: StoredIndexes | None = None
    summaries: SummarySource | None = None
    personas: PersonaChooser | None = None
    train: Sequence[TaskExample] | None = None
    """The data's train split, for a method that needs one."""

    @property
    def items(self) -> int:
        """The ``k`` to retrieve: the caller's, else the task's (:meth:`TaskSpec.items_per_input`)."""
        return self.task.items_per_input(self.k)

    def with_task(self, task: TaskSpec) -> BuildContext:
        return replace(self, task=task)

    def get_embedder(self) -> Embedder:
        if self.embedder is not None:
            return self.embedder
        from tailor.embeddings import load_embedder

        return load_embedder()


def _default_budget() -> PromptBudget:
    from tailor.prompting.builder import PromptBudget

    return PromptBudget()


def call_with_offered(factory: Callable[..., Any], offered: dict[str, Any]) -> Any:
    """``factory`` called with the keyword arguments it names among ``offered`` (a plug-in
    takes what it needs and nothing more)."""
    parameters = inspect.signature(factory).parameters
    return factory(**{name: value for name, value in offered.items() if name in parameters})


@dataclass(frozen=True)
class Method:
    """One method part. Subclasses say how it builds; the fields say what it is."""

    role: ClassVar[Role]
    name: str
    help: str
    needs: frozenset[Need] = frozenset()
    parameters: tuple[Parameter, ...] = ()
    """What the caller's settings change for it (``k``, the ``:layout`` suffix)."""
    serve_refusal: str | None = None
    """Why ``tailor serve`` cannot serve it (``None``: it can), said after its name."""
    position: int = 50
    """Where it stands in a composed method's canonical name (lower first; retrievals 50)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.needs) - set(NEEDS))
        if unknown:
            raise ValueError(f"method {self.name!r} needs unknown things {unknown}; valid: {', '.join(NEEDS)}")

    @property
    def takes_layout(self) -> bool:
        """Whether the ``:layout`` suffix means something for it (it shows items or notes)."""
        return "layout" in self.parameters

    def all_needs(self) -> frozenset[Need]:
        """What it needs; a retrieval's may depend on its retriever, looked up here."""
        return self.needs

    def check(self, spec: MethodSpec, text: str) -> None:
        """Raise ValueError when ``spec`` (parsed from ``text``) composes this part in a way
        it does not allow. The grammar's own rules (one retrieval, wholes alone) are
        :class:`~tailor.methods.spec.MethodSpec`'s."""


@dataclass(frozen=True)
class RetrievalMethod(Method):
    """Records ranked by the retriever registered as ``retriever`` in
    :data:`tailor.retrieval.RETRIEVERS` (``None``: no records, the ``none`` method)."""

    role: ClassVar[Role] = "retrieval"
    retriever: str | None = None
    parameters: tuple[Parameter, ...] = ("k", "layout")
    model: str | None = None
    """A trained retriever's folder (``dense:PATH``, ``tailor train-retriever``): its embedder
    instead of the context's; ``None``: the context's."""

    @property
    def takes_model(self) -> bool:
        """Whether it ranks with an embedder, so that ``NAME:PATH`` may name a trained one."""
        return "embedder" in self.all_needs()

    def with_model(self, path: str) -> RetrievalMethod:
        """This retrieval ranking with the trained embedder in ``path`` (named ``NAME:PATH``)."""
        if not self.takes_model:
            raise ValueError(f"retrieval {self.name!r} ranks without an embedder, so it takes no model folder "
                             f"({self.name}:{path})")
        return replace(self, name=f"{self.name}:{path}", model=path)

    @property
    def takes_layout(self) -> bool:
        return self.retriever is not None

    def all_needs(self) -> frozenset[Need]:
        if self.retriever is None:
            return self.needs
        from tailor.retrieval import RETRIEVERS

        factory = RETRIEVERS.load(self.retriever)
        return self.needs | (frozenset({"embedder"}) if "embedder" in inspect.signature(factory).parameters
                             else frozenset())

    def build_retriever(self, context: BuildContext) -> Retriever | None:
        """The retriever for ``context``: with the store's per-user indexes when the context
        has them and the retriever ranks from them, else reading the user's profile."""
        if self.retriever is None:
            return None
        from tailor.retrieval import RETRIEVERS
        from tailor.retrieval.stored import ProfileReadingRetriever

        factory = RETRIEVERS.load(self.retriever)
        taken = set(inspect.signature(factory).parameters)
        offered: dict[str, Any] = {"store": context.store, "document": context.task.document, "seed": context.seed,
                                   "indexes": context.indexes}
        if "embedder" in taken:
            if self.model is not None:
                from tailor.embeddings import load_embedder_folder

                # A trained embedder's vectors are not the store's indexes: rank from the profile.
                offered["embedder"] = load_embedder_folder(self.model)
                offered.pop("indexes")
                taken.discard("indexes")
            else:
                offered["embedder"] = context.get_embedder()
        retriever: Retriever = call_with_offered(factory, offered)
        if context.indexes is not None and "indexes" not in taken:
            # No stored ranking: the served profile holds only the user's id, so read it.
            retriever = ProfileReadingRetriever(retriever, context.indexes.store)
        return retriever


@dataclass(frozen=True)
class NoteMethod(Method):
    """A line about the user above the input, from :meth:`source`."""

    role: ClassVar[Role] = "notes"
    parameters: tuple[Parameter, ...] = ("layout",)
    position: int = 10
    served_from: Literal["summaries", "personas"] | None = None
    """The :class:`BuildContext` source ``tailor serve`` fills for it (stored summaries written
    in the background, the tenant's personas); ``None``: it needs none."""
    make_source: Callable[[BuildContext], NoteSource] | None = field(default=None, compare=False, repr=False)

    def source(self, context: BuildContext) -> NoteSource:
        if self.make_source is None:
            raise NotImplementedError(f"note method {self.name} has no source")
        return self.make_source(context)


@dataclass(frozen=True)
class ModifierMethod(Method):
    """Wraps the personalizer of the rest of its method (:meth:`wrap`)."""

    role: ClassVar[Role] = "modifier"
    wrapper: Callable[[Personalizer, MethodSpec, BuildContext], Personalizer] | None = field(
        default=None, compare=False, repr=False)
    rule: Callable[[MethodSpec], str | None] | None = field(default=None, compare=False, repr=False)
    """What it allows: the error for a composition it does not take, ``None`` when fine."""

    def check(self, spec: MethodSpec, text: str) -> None:
        problem = self.rule(spec) if self.rule is not None else None
        if problem is not None:
            raise ValueError(f"{problem}, not {text!r}")

    def wrap(self, inner: Personalizer, spec: MethodSpec, context: BuildContext) -> Personalizer:
        if self.wrapper is None:
            raise NotImplementedError(f"modifier {self.name} has no wrapper")
        return self.wrapper(inner, spec, context)


@dataclass(frozen=True)
class WholeMethod(Method):
    """A personalizer of its own, used alone. ``factory`` is called with the keyword
    arguments it names among ``task``, ``k``, ``layout``, ``count_tokens``, ``budget``,
    ``seed``, ``embedder``, ``store``, ``backend``, ``adapters``, ``train`` and ``context``
    (the whole :class:`BuildContext`); that is also how a package adds a method."""

    role: ClassVar[Role] = "whole"
    factory: Callable[..., Personalizer] | None = field(default=None, compare=False, repr=False)
    reads_profile: bool = True
    """Whether it reads the profile handed to it (``tailor serve`` then reads it from the
    store; a method that reads the store itself says ``False``)."""

    def build(self, spec: MethodSpec, context: BuildContext) -> Personalizer:
        if self.factory is None:
            raise NotImplementedError(f"method {self.name} has no factory")
        offered: dict[str, Any] = {
            "task": context.task, "k": context.items, "layout": spec.layout or context.task.layout,
            "count_tokens": context.count_tokens, "budget": context.budget, "seed": context.seed,
            "store": context.store, "backend": context.backend, "adapters": context.adapters,
            "train": context.train, "context": context}
        if "embedder" in inspect.signature(self.factory).parameters:
            offered["embedder"] = context.get_embedder()
        personalizer: Personalizer = call_with_offered(self.factory, offered)
        if context.indexes is not None and self.reads_profile:
            from tailor.personalizers.contract import ProfileFromStore

            return ProfileFromStore(personalizer, context.indexes.store)
        return personalizer


def whole_method(name: str, factory: Callable[..., Personalizer], *, help: str = "",
                 needs: Sequence[Need] = (), parameters: Sequence[Parameter] = ("k", "layout"),
                 serve_refusal: str | None = None) -> WholeMethod:
    """A package's method: ``factory`` returns its personalizer (see :class:`WholeMethod`).
    Register the result under the ``tailor.methods`` entry point group."""
    offered_embedder = "embedder" in inspect.signature(factory).parameters
    return WholeMethod(name=name, help=help or (factory.__doc__ or "").strip().split("\n")[0],
                       needs=frozenset(needs) | (frozenset({"embedder"}) if offered_embedder else frozenset()),
                       parameters=tuple(parameters), serve_refusal=serve_refusal, factory=factory)


@dataclass(frozen=True)
class RecommenderMethod(Method):
    """A classic recommender (``model`` makes it unfitted): alone, the ranking of a ranking
    task; first in a method, the stage whose top items the rest reranks."""

    role: ClassVar[Role] = "recommender"
    position: int = 5
    serve_refusal: str | None = ("ranks a ranking task's candidates, not a chat's reply; tailor serve ranks with it "
                                 "on POST /v1/users/{id}/rank (--rank-method)")
    model: Callable[[], Recommender] | None = field(default=None, compare=False, repr=False)

    def ranker(self, context: BuildContext) -> RecommenderRanker:
        """Its ranker, fitted (on first use) on every history in the context's store."""
        if self.model is None:
            raise NotImplementedError(f"recommender {self.name} has no model")
        if context.store is None:
            raise ValueError(f"method {self.name} needs a profile store to fit on")
        from tailor.personalizers.ranking import RecommenderRanker

        return RecommenderRanker(self.name, self.model(), context.store)


__all__ = ["NEEDS", "BuildContext", "Method", "ModifierMethod", "Need", "NoteMethod", "Parameter",
           "RecommenderMethod", "RetrievalMethod", "Role", "WholeMethod", "call_with_offered", "whole_method"]
