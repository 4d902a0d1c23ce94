"""Personalization methods by name, as ``tailor eval --method`` takes them.

A method spec is a name, optionally followed by ``:`` and a prompt layout:
``bm25`` (the task's preferred layout), ``bm25:lamp``, ``bm25:dialogue``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tailor.personalizers.base import NoPersonalization, Personalized, Personalizer, RetrievalPersonalizer
from tailor.prompting.builder import LAYOUTS, Layout, PromptBudget, TokenCounter
from tailor.retrieval.base import Retriever
from tailor.tasks.base import TaskSpec

RETRIEVAL_METHODS = ("bm25", "recency", "random")
METHODS = ("none", *RETRIEVAL_METHODS)


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
    if layout and name == "none":
        raise ValueError("method 'none' takes no layout")
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


def make_retriever(name: str, task: TaskSpec, *, seed: int = 0) -> Retriever:
    if name == "bm25":
        from tailor.retrieval.bm25 import BM25Retriever

        return BM25Retriever(document=task.document)
    if name == "recency":
        from tailor.retrieval.simple import RecencyRetriever

        return RecencyRetriever()
    if name == "random":
        from tailor.retrieval.simple import RandomRetriever

        return RandomRetriever(seed=seed)
    raise ValueError(f"unknown retriever {name!r}; valid retrievers: {', '.join(RETRIEVAL_METHODS)}")


def build_personalizer(spec: MethodSpec | str, task: TaskSpec, *, k: int = 1, count_tokens: TokenCounter,
                       budget: PromptBudget = PromptBudget(), seed: int = 0) -> Personalizer:
    """The personalizer for a method spec on ``task``."""
    method = parse_method(spec) if isinstance(spec, str) else spec
    if method.name == "none":
        return NoPersonalization(count_tokens=count_tokens, budget=budget)
    layout = method.layout or task.layout
    return RetrievalPersonalizer(str(method), make_retriever(method.name, task, seed=seed), k=k, layout=layout,
                                 count_tokens=count_tokens, budget=budget)


__all__ = [
    "METHODS",
    "MethodSpec",
    "NoPersonalization",
    "Personalized",
    "Personalizer",
    "RetrievalPersonalizer",
    "build_personalizer",
    "parse_method",
    "parse_methods",
]
