"""The one method grammar: what ``tailor eval --method`` and ``tailor serve --method`` take,
parsed once into a :class:`MethodSpec` that composes registered :class:`~tailor.methods.method.Method`
objects and flows to the end (eval's runner, the server, training).

A method is parts joined with ``+``, optionally followed by ``:`` and a prompt layout
(``lamp`` or ``dialogue``; the task's measured layout when none is given)::

    [NOTE+...]RETRIEVAL[:LAYOUT]     notes about the user (summary, persona), then retrieved items
    MODIFIER+RETRIEVAL / RETRIEVAL+MODIFIER   lora+bm25 (the user's adapter), bm25+prior (the user's label prior)
    RETRIEVAL:PATH[:LAYOUT]          a dense retrieval ranking with a trained retriever's folder
                                     (dense:PATH, hybrid:PATH; tailor train-retriever)
    WHOLE[:LAYOUT]                   a method used alone (refine, knn, user-embedding, a package's)
    RECOMMENDER                      a ranking task's classic recommender alone (popular, item-knn, als, bpr)
    RECOMMENDER+REST                 its top 20 reranked by the model on REST's prompt (als+bm25,
                                     als+summary+bm25, als+lora+bm25; als+none: the prompt without the user)

On a ranking task, a method without a recommender (``bm25``, ``summary+bm25``) ranks every
candidate by the model's likelihood of its title after the method's prompt, the user's
records retrieved by similarity to the candidates (:mod:`tailor.personalizers.ranking`).

Every part is a name of :data:`tailor.methods.METHODS`, where the built-in methods and those
packages add (entry point groups ``tailor.methods`` and, for retrievers, ``tailor.retrievers``)
are registered alike. ``none`` may be left out when another part comes first
(``summary``, ``lora``). Parts may come in any order and case; the canonical name writes
them in their objects' order, so ``persona+bm25``, ``BM25+persona`` and, on a ``lamp`` task,
``persona+bm25:lamp`` name the same prompt. How many items a method retrieves is not part
of the method: it is the caller's ``k``, else the task's (:attr:`BuildContext.items`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tailor.methods.method import (
    BuildContext,
    Method,
    ModifierMethod,
    Need,
    NoteMethod,
    RecommenderMethod,
    RetrievalMethod,
    WholeMethod,
)

if TYPE_CHECKING:
    from tailor.personalizers.contract import Personalizer
    from tailor.prompting.builder import Layout


@dataclass(frozen=True)
class MethodSpec:
    """A parsed method: its parts in canonical order, and the layout (``None``: the task's)."""

    parts: tuple[Method, ...]
    layout: Layout | None = None

    @property
    def name(self) -> str:
        """The canonical method name, without the layout (``summary+persona+hybrid``)."""
        return "+".join(part.name for part in self.parts)

    def __str__(self) -> str:
        return self.name if self.layout is None else f"{self.name}:{self.layout}"

    def __repr__(self) -> str:
        return f"MethodSpec({str(self)!r})"

    # -- the parts by role ---------------------------------------------------------------------

    @property
    def retrieval(self) -> RetrievalMethod:
        """The retrieval part (``none`` when the method names none)."""
        found = [part for part in self.parts if isinstance(part, RetrievalMethod)]
        return found[0] if found else _none()

    @property
    def names_retrieval(self) -> bool:
        """Whether a retrieval (``none`` included) is written in the method."""
        return any(isinstance(part, RetrievalMethod) for part in self.parts)

    @property
    def notes(self) -> tuple[NoteMethod, ...]:
        return tuple(part for part in self.parts if isinstance(part, NoteMethod))

    @property
    def modifiers(self) -> tuple[ModifierMethod, ...]:
        return tuple(part for part in self.parts if isinstance(part, ModifierMethod))

    @property
    def whole(self) -> WholeMethod | None:
        return next((part for part in self.parts if isinstance(part, WholeMethod)), None)

    @property
    def recommender(self) -> RecommenderMethod | None:
        """The classic recommender the method ranks with, or whose top items it reranks."""
        return next((part for part in self.parts if isinstance(part, RecommenderMethod)), None)

    def has(self, name: str) -> bool:
        """Whether a part of this name is in the method."""
        return any(part.name == name for part in self.parts)

    # -- what it is --------------------------------------------------------------------------

    @property
    def pastes_items(self) -> bool:
        """Whether the prompt shows items or notes (so a layout means something)."""
        return any(part.takes_layout for part in self.parts)

    @property
    def model_free(self) -> bool:
        """Whether it answers without the model (a classic recommender alone)."""
        return self.recommender is not None and len(self.parts) == 1

    def needs(self, what: Need) -> bool:
        """Whether any part needs ``what`` (``embedder``, ``adapters``, ``labels``...)."""
        return any(what in part.all_needs() for part in self.parts)

    @property
    def serve_refusal(self) -> str | None:
        """Why ``tailor serve`` cannot serve this method, or ``None`` when it can."""
        for part in self.parts:
            if part.serve_refusal is not None:
                return f"method {self} {part.serve_refusal}"
            if "train-split" in part.all_needs():
                return f"method {self} needs a train split, which a chat has not"
        return None

    # -- building ----------------------------------------------------------------------------

    def build(self, context: BuildContext) -> Personalizer:
        """The personalizer of this method in ``context`` (``tailor eval`` and ``tailor serve``
        call this, with what each has)."""
        task = context.task
        if self.needs("labels") and not task.uses_candidates:
            raise ValueError(f"method {self} needs a task with a label set or ratings; {task.name} is a "
                             f"{task.kind} task")
        if self.needs("ratings") and task.kind != "rating":
            raise ValueError(f"method {self} needs a rating task; {task.name} is a {task.kind} task")
        if self.needs("train-split") and context.train is None:
            raise ValueError(f"method {self} needs the data's train split, and none was given")
        recommender = self.recommender
        if recommender is not None and task.kind != "ranking":
            raise ValueError(f"method {self} ranks items with {recommender.name}; {task.name} is a {task.kind} task")
        if recommender is not None and len(self.parts) == 1:
            return recommender.ranker(context)  # type: ignore[return-value]
        personalizer = self.build_prompt(context)
        if task.kind != "ranking":
            return personalizer
        return self._ranker(personalizer, context)  # type: ignore[no-any-return]

    def build_prompt(self, context: BuildContext) -> Personalizer:
        """The personalizer that builds this method's prompt, a recommender left out: what
        :meth:`build` returns on any task but a ranking one, whose ranker scores candidates
        after this prompt (and what an adapter for it is trained on)."""
        whole = self.whole
        if whole is not None:
            return whole.build(self, context)
        from tailor.personalizers.prompt import PromptPersonalizer

        rest = self.without(RecommenderMethod)
        personalizer: Personalizer = PromptPersonalizer(
            str(rest), retriever=self.retrieval.build_retriever(context),
            notes=[note.source(context) for note in self.notes], k=context.items,
            layout=self.layout or context.task.layout, count_tokens=context.count_tokens, budget=context.budget)
        for modifier in self.modifiers:
            personalizer = modifier.wrap(personalizer, rest, context)
        return personalizer

    def _ranker(self, personalizer: Personalizer, context: BuildContext) -> Any:
        """A ranking task's ranker: the model's likelihood of each candidate after
        ``personalizer``'s prompt, over the recommender's top items when there is one."""
        from tailor.personalizers.ranking import LikelihoodRanker, Reranker

        if context.backend is None:
            raise ValueError(f"method {self} ranks with the model, and no backend was given")
        rest = self.without(RecommenderMethod)
        ranker = LikelihoodRanker(str(rest), personalizer, context.backend)
        recommender = self.recommender
        if recommender is None:
            return ranker
        return Reranker(str(self), recommender.ranker(context), ranker)

    def without(self, role: type[Method]) -> MethodSpec:
        """This method without its parts of ``role`` (the prompt a modifier wraps)."""
        kept = tuple(part for part in self.parts if not isinstance(part, role))
        return MethodSpec(_canonical(kept), self.layout if any(p.takes_layout for p in kept) else None)

    # -- parsing -----------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> MethodSpec:
        """``"persona+bm25:dialogue"`` -> the ``persona`` and ``bm25`` objects, layout
        ``dialogue``; errors name what is allowed."""
        from tailor.methods import METHODS
        from tailor.prompting.builder import LAYOUTS

        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"a method is needed; valid parts: {', '.join(METHODS.names())}")
        model, plain = _take_model(text.strip())
        body, _, layout = plain.lower().partition(":")
        if layout and layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r} in method {text!r}; valid layouts: {', '.join(LAYOUTS)}")
        names = _join_compound_names([name.strip() for name in body.split("+")], set(METHODS.names()))
        if len(set(names)) != len(names):
            raise ValueError(f"method {text!r} names a part twice")
        unknown = [name for name in names if name not in METHODS]
        if unknown:
            what = f"method {unknown[0]!r}" if len(names) == 1 else f"part {unknown[0]!r} in method {text!r}"
            raise ValueError(f"unknown {what}; valid parts: {', '.join(METHODS.names())}, joined with '+' "
                             "(e.g. summary+bm25)")
        parts = [METHODS.method(name) for name in names]
        if model is not None:
            parts = [_with_model(part, model, text) if isinstance(part, RetrievalMethod) else part for part in parts]
        spec = cls(_canonical(tuple(parts)), layout or None)  # type: ignore[arg-type]
        spec._check(parts, text)
        return spec

    def _check(self, parts: list[Method], text: str) -> None:
        recommenders = [part.name for part in parts if isinstance(part, RecommenderMethod)]
        if len(recommenders) > 1:
            raise ValueError(f"method {text!r} names {len(recommenders)} recommenders ({', '.join(recommenders)}); "
                             "a method reranks one recommender's top items")
        wholes = [part for part in parts if isinstance(part, WholeMethod)]
        if wholes and len(parts) > 1:
            raise ValueError(f"method {wholes[0].name!r} is used alone, not combined ({text!r})")
        retrievals = [part.name for part in parts if isinstance(part, RetrievalMethod)]
        if len(retrievals) > 1:
            raise ValueError(f"method {text!r} names {len(retrievals)} retrievals ({', '.join(retrievals)}); pick one "
                             "(hybrid fuses bm25 and dense)")
        for part in parts:
            part.check(self, text)
        if self.layout is not None and not self.pastes_items:
            raise ValueError(f"method {self.name!r} pastes no items, so it takes no layout")


def _none() -> RetrievalMethod:
    from tailor.methods import METHODS

    none = METHODS.method("none")
    assert isinstance(none, RetrievalMethod)  # registered as one
    return none


def _canonical(parts: tuple[Method, ...]) -> tuple[Method, ...]:
    """``parts`` in canonical order, ``none`` left out when another part than a recommender
    comes before it (``summary``, ``lora``; but ``none+prior`` keeps it, and so does
    ``als+none``, the reranker whose prompt shows nothing of the user)."""
    ordered = sorted(parts, key=lambda part: part.position)
    return tuple(part for index, part in enumerate(ordered)
                 if not (isinstance(part, RetrievalMethod) and part.retriever is None
                         and any(not isinstance(before, RecommenderMethod) for before in ordered[:index])))


def _take_model(text: str) -> tuple[str | None, str]:
    """The trained model folder a method names (``dense:PATH``, ``recency+dense:PATH:lamp``),
    its case kept, and the method without it; ``(None, text)`` when it names none."""
    from tailor.methods import METHODS
    from tailor.prompting.builder import LAYOUTS

    segments = text.split("+")
    for index, segment in enumerate(segments):
        head, colon, tail = segment.partition(":")
        if not colon or tail.strip().lower() in LAYOUTS or not _names_folder(tail.strip()):
            continue
        name = head.strip().lower()
        if name not in METHODS:
            continue
        part = METHODS.method(name)
        if not isinstance(part, RetrievalMethod) or part.retriever is None:
            continue
        path, layout = tail.strip(), ""
        last, _, suffix = path.rpartition(":")
        if last and suffix.strip().lower() in LAYOUTS and index == len(segments) - 1:
            path, layout = last.strip(), ":" + suffix.strip()
        if not path:
            raise ValueError(f"method {text!r} names no model folder after {head.strip()}:")
        segments[index] = head + layout
        return path, "+".join(segments)
    return None, text


def _names_folder(text: str) -> bool:
    """Whether ``text`` after ``NAME:`` is a folder rather than a misspelt layout: a path
    (``/``, ``.``, ``~`` in it) or an existing directory."""
    from pathlib import Path

    return not text or any(mark in text for mark in "/\\.~") or Path(text).is_dir()


def _with_model(part: RetrievalMethod, model: str, text: str) -> RetrievalMethod:
    try:
        return part.with_model(model)
    except ValueError as error:
        raise ValueError(f"method {text!r}: {error}") from None


def _join_compound_names(names: list[str], known: set[str]) -> list[str]:
    """Rejoin names that hold a ``+`` themselves (``recency+dense``), longest first."""
    joined: list[str] = []
    index = 0
    while index < len(names):
        for end in range(len(names), index, -1):
            candidate = "+".join(names[index:end])
            if end - index > 1 and candidate in known:
                joined.append(candidate)
                index = end
                break
        else:
            joined.append(names[index])
            index += 1
    return joined


def parse_method(text: str) -> MethodSpec:
    """:meth:`MethodSpec.parse`."""
    return MethodSpec.parse(text)


def parse_methods(text: str | Sequence[str | MethodSpec]) -> list[MethodSpec]:
    """A comma-separated list of methods (or a sequence of methods, parsed or not), without
    duplicates (compared by canonical form)."""
    from tailor.methods import METHODS

    items = text.split(",") if isinstance(text, str) else list(text)
    specs = [item if isinstance(item, MethodSpec) else parse_method(item) for item in items
             if isinstance(item, MethodSpec) or item.strip()]
    if not specs:
        raise ValueError("no method given; valid parts: " + ", ".join(METHODS.names()))
    seen = set()
    for spec in specs:
        if str(spec) in seen:
            raise ValueError(f"method {spec} is listed twice")
        seen.add(str(spec))
    return specs


def parse_serve_method(text: str | MethodSpec) -> MethodSpec:
    """A method ``tailor serve`` can serve (:attr:`MethodSpec.serve_refusal` says why not)."""
    spec = parse_method(text) if isinstance(text, str) else text
    refusal = spec.serve_refusal
    if refusal is not None:
        raise ValueError(refusal)
    return spec


def parse_rank_method(text: str | MethodSpec) -> MethodSpec:
    """A method ``tailor serve`` ranks with on ``/v1/users/{id}/rank``: its parts serve, a
    recommender's refusal aside (it refuses chats, not rankings)."""
    spec = parse_method(text) if isinstance(text, str) else text
    for part in spec.parts:
        if part.serve_refusal is not None and not isinstance(part, RecommenderMethod):
            raise ValueError(f"method {spec} {part.serve_refusal}")
    return spec


__all__ = ["MethodSpec", "parse_method", "parse_methods", "parse_rank_method", "parse_serve_method"]
