"""Personalization methods as registered objects: what ``--method`` names.

:data:`METHODS` holds every method part, built-in or added by a package, the same way:
lazy ``"module:attribute"`` entries naming :class:`~tailor.methods.method.Method` objects
(entry point group ``tailor.methods``), and every retriever of
:data:`tailor.retrieval.RETRIEVERS` (entry point group ``tailor.retrievers``) as a retrieval
method of the same name. The help texts, the server's refusals, ``tailor eval``,
``tailor serve`` and the tests read this registry; no list of method names is kept anywhere
else. :func:`parse_method` turns ``--method`` into a :class:`MethodSpec` once;
:func:`build_personalizer` is its :meth:`~MethodSpec.build` for callers that hold a string.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tailor.methods.method import (
    NEEDS,
    BuildContext,
    Method,
    ModifierMethod,
    Need,
    NoteMethod,
    RecommenderMethod,
    RetrievalMethod,
    Role,
    WholeMethod,
    whole_method,
)
from tailor.methods.spec import MethodSpec, parse_method, parse_methods, parse_rank_method, parse_serve_method
from tailor.registry import Registry

if TYPE_CHECKING:
    from tailor.personalizers.contract import Personalizer
    from tailor.prompting.builder import PromptBudget, TokenCounter
    from tailor.tasks.spec import TaskSpec


class MethodRegistry(Registry):
    """The methods: own entries, and each retriever of ``retrievers`` as a retrieval method."""

    def __init__(self, entries: Mapping[str, str], *, group: str) -> None:
        super().__init__("method", entries, group=group)
        self._derived: dict[str, RetrievalMethod] = {}

    @staticmethod
    def _retrievers() -> Registry:
        from tailor import retrieval  # looked up each time: tests may swap the registry

        return retrieval.RETRIEVERS

    def names(self) -> list[str]:
        return sorted({*super().names(), *self._retrievers().names()})

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or name in self._retrievers()

    def method(self, name: str) -> Method:
        """The method object registered as ``name``."""
        if super().__contains__(name):
            method = self.load(name)
            if not isinstance(method, Method):
                raise TypeError(f"method {name!r} ({self._entries[name]}) is not a tailor.methods.Method")
            return method
        retrievers = self._retrievers()
        if name not in retrievers:
            self.load(name)  # raises UnknownNameError listing the valid names
        cached = self._derived.get(name)
        if cached is None or cached.retriever not in retrievers:
            cached = self._derived[name] = RetrievalMethod(name=name, help=retrievers.help(name), retriever=name)
        return cached

    def by_role(self) -> dict[Role, list[Method]]:
        """Every method, grouped by role (help texts list them so)."""
        grouped: dict[Role, list[Method]] = {"retrieval": [], "notes": [], "modifier": [], "whole": [],
                                             "recommender": []}
        for name in self.names():
            method = self.method(name)
            grouped[method.role].append(method)
        return grouped


METHODS = MethodRegistry(
    {
        "none": "tailor.methods.retrieval:NONE",
        "summary": "tailor.methods.notes:SUMMARY",
        "persona": "tailor.methods.notes:PERSONA",
        "refine": "tailor.methods.refine:REFINE",
        "auto": "tailor.methods.auto:AUTO",
        "lora": "tailor.methods.adapters:LORA",
        "user-embedding": "tailor.methods.adapters:USER_EMBEDDING",
        "preference": "tailor.methods.preference:PREFERENCE",
        "soup": "tailor.methods.preference:SOUP",
        "preference-global": "tailor.methods.preference:GLOBAL_PREFERENCE",
        "prior": "tailor.methods.labels:PRIOR",
        "profile-prior": "tailor.methods.labels:PROFILE_PRIOR",
        "knn": "tailor.methods.labels:KNN",
        "user-mean": "tailor.methods.labels:USER_MEAN",
        "global-mean": "tailor.methods.labels:GLOBAL_MEAN",
        "item-bias": "tailor.methods.labels:ITEM_BIAS",
        "item-mean": "tailor.methods.labels:ITEM_MEAN",
        "svd": "tailor.methods.labels:SVD",
        "popular": "tailor.methods.recommenders:POPULAR",
        "item-knn": "tailor.methods.recommenders:ITEM_KNN",
        "als": "tailor.methods.recommenders:ALS",
        "bpr": "tailor.methods.recommenders:BPR",
    },
    group="tailor.methods",
)


def build_personalizer(spec: MethodSpec | str, task: TaskSpec, *, count_tokens: TokenCounter,
                       k: int | None = None, budget: PromptBudget | None = None, **context: Any) -> Personalizer:
    """The personalizer of ``spec`` on ``task``: :meth:`MethodSpec.build` in a
    :class:`BuildContext` of these arguments (``embedder``, ``store``, ``backend``,
    ``adapters``, ``seed``...; ``budget``: the default token budgets when ``None``)."""
    method = parse_method(spec) if isinstance(spec, str) else spec
    if budget is not None:
        context["budget"] = budget
    return method.build(BuildContext(task, count_tokens, k=k, **context))


def method_help(methods: MethodRegistry | None = None) -> str:
    """One line per role listing its methods (the ``--method`` help of ``tailor eval``)."""
    grouped = (methods or METHODS).by_role()
    lines = {"retrieval": "retrieval", "notes": "notes (joined with '+')", "modifier": "modifiers (joined with '+')",
             "whole": "used alone", "recommender": "recommenders (ranking tasks; alone, or first: top 20 reranked)"}
    return "; ".join(f"{lines[role]}: {', '.join(m.name for m in found)}" for role, found in grouped.items() if found)


__all__ = ["METHODS", "NEEDS", "BuildContext", "Method", "MethodRegistry", "MethodSpec", "ModifierMethod", "Need",
           "NoteMethod", "RecommenderMethod", "RetrievalMethod", "Role", "WholeMethod", "build_personalizer", "method_help",
           "parse_method", "parse_methods", "parse_rank_method", "parse_serve_method", "whole_method"]
