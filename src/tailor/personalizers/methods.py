"""The one method grammar: what ``tailor eval --method`` and ``tailor serve --method`` take.

A method is parts joined with ``+``, optionally followed by ``:`` and a prompt layout
(``lamp`` or ``dialogue``; the task's measured layout when none is given)::

    [summary+][persona+]RETRIEVAL[:LAYOUT]     notes about the user, then retrieved items
    refine                                      a style note rewrites the instruction
    lora | lora+bm25 | user-embedding           a per-user adapter (with the prompt named)
    RETRIEVAL+prior                             model scores times the user's label prior
    profile-prior | knn | user-mean | global-mean   label methods that need no model
    NAME[:LAYOUT]                               a personalizer a package adds

``RETRIEVAL`` is ``none`` or a name of :data:`tailor.retrieval.RETRIEVERS` (``bm25``,
``recency``, ``random``, ``dense``, ``hybrid``, ``recency+dense``, or one a package adds
through the ``tailor.retrievers`` entry point); a whole method a package adds is a name of
:data:`PERSONALIZERS` (entry point ``tailor.personalizers``), used alone. ``none`` may be
left out when notes are
named (``summary``, ``persona+summary``). Parts may come in any order and any case;
:attr:`MethodSpec.name` writes them in one canonical order, so ``persona+bm25``,
``BM25+persona`` and ``persona+bm25:lamp`` with a ``lamp`` task name the same prompt.

How many items a method retrieves is not part of the method: it is the caller's ``k``,
else the task's measured :attr:`~tailor.tasks.base.TaskSpec.k` (a served user's task is
:data:`tailor.tasks.chat.CHAT_TASK`, whose ``k`` is 3). One rule for eval and serve.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Literal

from tailor.prompting.builder import LAYOUTS, Layout
from tailor.registry import Registry

NOTES = ("summary", "persona")
ADAPTERS = ("lora", "user-embedding")
MODEL_FREE = ("profile-prior", "knn", "user-mean", "global-mean", "item-bias")
RATING_ONLY = ("user-mean", "global-mean", "item-bias")
# Two-part retriever names, joined back after the split on "+".
_COMPOUND_RETRIEVALS = {("recency", "dense"): "recency+dense"}

Adapter = Literal["lora", "user-embedding"]

PERSONALIZERS = Registry("personalizer", {}, group="tailor.personalizers")
"""Whole methods that packages add: each entry is a callable that returns a personalizer,
called with the keyword arguments it names among ``task``, ``k``, ``layout``,
``count_tokens``, ``budget``, ``seed``, ``embedder``, ``store`` and ``backend`` (see
:func:`tailor.personalizers.build_personalizer`)."""


def retrieval_names() -> list[str]:
    """``none`` and every registered retriever (built-in and from entry points)."""
    from tailor.retrieval import RETRIEVERS

    return ["none", *RETRIEVERS.names()]


def retriever_needs_embedder(name: str) -> bool:
    """Whether the registered retriever ``name`` ranks by embeddings (its constructor takes
    an ``embedder``)."""
    if name == "none":
        return False
    from tailor.retrieval import RETRIEVERS

    return "embedder" in inspect.signature(RETRIEVERS.load(name)).parameters


@dataclass(frozen=True)
class MethodSpec:
    """A parsed method: which retrieval, which notes, which adapter, and the layout.

    Build one with :meth:`parse`; the fields are checked together there (a method that
    pastes no items takes no layout; an adapter comes with ``none`` or ``bm25`` only).
    """

    retrieval: str = "none"
    summary: bool = False
    persona: bool = False
    refine: bool = False
    adapter: Adapter | None = None
    prior: bool = False
    model_free: str | None = None
    plugin: str | None = None
    layout: Layout | None = None

    @property
    def name(self) -> str:
        """The canonical method name, without the layout (``summary+persona+hybrid``)."""
        if self.model_free is not None:
            return self.model_free
        if self.plugin is not None:
            return self.plugin
        parts = [part for part, on in (("summary", self.summary), ("persona", self.persona),
                                       ("refine", self.refine)) if on]
        if self.adapter is not None:
            parts.append(self.adapter)
        if self.retrieval != "none" or not parts:
            parts.append(self.retrieval)
        if self.prior:
            parts.append("prior")
        return "+".join(parts)

    def __str__(self) -> str:
        return self.name if self.layout is None else f"{self.name}:{self.layout}"

    @property
    def pastes_items(self) -> bool:
        """Whether the prompt shows retrieved items (so a layout means something)."""
        return self.retrieval != "none" or self.summary or self.persona or self.plugin is not None

    @property
    def needs_embedder(self) -> bool:
        """Whether the method ranks records or personas by embeddings."""
        if self.plugin is not None:
            return "embedder" in inspect.signature(PERSONALIZERS.load(self.plugin)).parameters
        return self.persona or retriever_needs_embedder(self.retrieval)

    @property
    def calls_model_first(self) -> bool:
        """Whether the method asks the LLM before answering (summaries, personas, style notes)."""
        return self.summary or self.persona or self.refine

    @classmethod
    def parse(cls, text: str) -> MethodSpec:
        """``"persona+bm25:dialogue"`` -> ``MethodSpec("bm25", persona=True, layout="dialogue")``,
        with errors that name what is allowed."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"a method is needed; valid parts: {', '.join(valid_parts())}")
        body, _, layout = text.strip().lower().partition(":")
        if layout and layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r} in method {text!r}; valid layouts: {', '.join(LAYOUTS)}")
        parts = _join_compounds([part.strip() for part in body.split("+")])
        if len(set(parts)) != len(parts):
            raise ValueError(f"method {text!r} names a part twice")
        retrievals = set(retrieval_names())
        plugins = set(PERSONALIZERS.names())
        unknown = [part for part in parts if part not in (*NOTES, "refine", *ADAPTERS, "prior", *MODEL_FREE)
                   and part not in retrievals and part not in plugins]
        if unknown:
            what = f"method {unknown[0]!r}" if len(parts) == 1 else f"part {unknown[0]!r} in method {text!r}"
            raise ValueError(f"unknown {what}; valid parts: "
                             f"{', '.join(valid_parts())}, joined with '+' (e.g. summary+bm25)")
        chosen = [part for part in parts if part in retrievals]
        if len(chosen) > 1:
            raise ValueError(f"method {text!r} names {len(chosen)} retrievals ({', '.join(chosen)}); pick one "
                             "(hybrid fuses bm25 and dense)")
        model_free = [part for part in parts if part in MODEL_FREE]
        plugin = [part for part in parts if part in plugins and part not in retrievals]
        adapters = [part for part in parts if part in ADAPTERS]
        spec = cls(
            retrieval=chosen[0] if chosen else "none",
            summary="summary" in parts, persona="persona" in parts, refine="refine" in parts,
            adapter=adapters[0] if adapters else None,  # type: ignore[arg-type]
            prior="prior" in parts, model_free=model_free[0] if model_free else None,
            plugin=plugin[0] if plugin else None,
            layout=layout or None,  # type: ignore[arg-type]
        )
        _check_combination(spec, parts, text)
        return spec


def _join_compounds(parts: list[str]) -> list[str]:
    joined: list[str] = []
    for part in parts:
        if joined and (joined[-1], part) in _COMPOUND_RETRIEVALS:
            joined[-1] = _COMPOUND_RETRIEVALS[(joined[-1], part)]
        else:
            joined.append(part)
    return joined


def _check_combination(spec: MethodSpec, parts: list[str], text: str) -> None:
    alone = [part for part in parts if part in (*MODEL_FREE, "refine", "user-embedding")]
    if spec.plugin is not None:
        alone.append(spec.plugin)
    if alone and len(parts) > 1:
        raise ValueError(f"method {alone[0]!r} is used alone, not combined ({text!r})")
    if spec.adapter == "lora" and (spec.summary or spec.persona or spec.prior or spec.retrieval not in ("none", "bm25")):
        raise ValueError(f"lora comes alone or as lora+bm25 (the prompts adapters are trained for), not {text!r}")
    if spec.prior and (spec.summary or spec.persona):
        raise ValueError(f"+prior combines with a retrieval only, not with notes ({text!r})")
    if spec.prior and "none" not in parts and spec.retrieval == "none":
        raise ValueError(f"+prior needs a retrieval to build the prompt from (none+prior, bm25+prior), not {text!r}")
    if spec.layout is not None and not spec.pastes_items:
        raise ValueError(f"method {spec.name!r} pastes no items, so it takes no layout")


def valid_parts() -> list[str]:
    return [*retrieval_names(), *NOTES, "refine", *ADAPTERS, "prior", *MODEL_FREE, *PERSONALIZERS.names()]


def parse_method(spec: str) -> MethodSpec:
    """:meth:`MethodSpec.parse`."""
    return MethodSpec.parse(spec)


def parse_methods(text: str) -> list[MethodSpec]:
    """A comma-separated list of methods, without duplicates (compared by canonical form)."""
    specs = [parse_method(part) for part in text.split(",") if part.strip()]
    if not specs:
        raise ValueError("no method given; valid parts: " + ", ".join(valid_parts()))
    seen = set()
    for spec in specs:
        if str(spec) in seen:
            raise ValueError(f"method {spec} is listed twice")
        seen.add(str(spec))
    return specs


def parse_serve_method(text: str) -> MethodSpec:
    """A method ``tailor serve`` can serve: any retrieval, with or without ``summary`` and
    ``persona`` notes, ``refine`` (its style note written by the served model before each
    reply, queued like one), or a package's method. Adapters are served by
    ``adapter_task`` (for any method), and label methods need a task with labels."""
    spec = MethodSpec.parse(text)
    if spec.adapter is not None:
        raise ValueError(f"method {spec} is an adapter method; tailor serve applies each user's adapter with "
                         "--adapter-task, under any method")
    if spec.model_free is not None or spec.prior:
        raise ValueError(f"method {spec} scores a task's labels; a chat has none")
    return spec


__all__ = ["ADAPTERS", "MODEL_FREE", "NOTES", "PERSONALIZERS", "RATING_ONLY", "MethodSpec", "parse_method", "parse_methods",
           "parse_serve_method", "retrieval_names", "retriever_needs_embedder", "valid_parts"]
