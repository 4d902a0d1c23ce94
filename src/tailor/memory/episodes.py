"""Episodic memory: what was said, by whom and when, searched as it was said.

Facts need a model that can extract them; turns need none. Every turn of a conversation
is an :class:`Episode`; a user's episodes are one memory, searched with tailor's own
retrievers (:mod:`tailor.retrieval`: BM25, dense, hybrid) over an indexed text that can
carry more than the turn itself. The method names what goes into that text:

- ``speaker``: the speaker's name ("Caroline: ...");
- ``date``: the session's date, written as people write it ("8 May 2023"), so that a
  question naming a month or a year finds the turns of that time;
- ``caption``: the description of an image shared in the turn;
- ``context`` (``context=N``): the ``N`` turns before and after in the same session, so
  that an answer ("yes, last Sunday") is found by the words of the question it answers.

A hit is always one turn; the context only helps find it. The method grammar is
``RETRIEVAL[+OPTION...]`` (``bm25``, ``hybrid+speaker+date+context``); ``memory`` is the
default, the combination measured best on LoCoMo (docs/results-memory.md). The served
path (:class:`~tailor.memory.store.MemoryStore`) and ``tailor eval-memory`` both search
through :class:`EpisodeSearch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal, get_args

from tailor.embeddings.embedder import Embedder
from tailor.retrieval.retriever import Retriever
from tailor.types import HistoryRecord, Profile

EpisodeRetrieval = Literal["bm25", "dense", "hybrid"]
_OPTIONS = ("speaker", "date", "caption", "context")


@dataclass(frozen=True)
class Episode:
    """One turn: its id, who said it, what, in which ``session`` (neighbours are taken within
    it) and on which ISO ``date`` (``None``: unknown). ``caption`` describes a shared image."""

    id: str
    speaker: str
    text: str
    session: str | None = None
    date: str | None = None
    caption: str | None = None


@dataclass(frozen=True)
class EpisodeMethod:
    """How episodes are indexed and searched; see the module docstring for the grammar."""

    retrieval: EpisodeRetrieval = "bm25"
    speaker: bool = False
    date: bool = False
    caption: bool = False
    context: int = 0

    def __post_init__(self) -> None:
        if self.retrieval not in get_args(EpisodeRetrieval):
            raise ValueError(f"unknown episode retrieval {self.retrieval!r}; valid: {', '.join(get_args(EpisodeRetrieval))}")
        if isinstance(self.context, bool) or not isinstance(self.context, int) or self.context < 0:
            raise ValueError(f"context must be a non-negative integer, got {self.context!r}")

    @property
    def needs_embedder(self) -> bool:
        return self.retrieval != "bm25"

    @classmethod
    def parse(cls, text: str) -> EpisodeMethod:
        """``"memory"``, or ``RETRIEVAL[+speaker][+date][+caption][+context[=N]]``."""
        name = text.strip().lower()
        if name == "memory":
            return DEFAULT_EPISODE_METHOD
        retrieval, *options = name.split("+")
        if retrieval not in get_args(EpisodeRetrieval):
            raise ValueError(f"unknown memory method {text!r}: it starts with one of "
                             f"{', '.join(get_args(EpisodeRetrieval))} or is 'memory'")
        method = cls(retrieval)  # type: ignore[arg-type]
        for option in options:
            key, _, value = option.partition("=")
            if key not in _OPTIONS:
                raise ValueError(f"unknown memory method option {option!r} in {text!r}; valid: {', '.join(_OPTIONS)}")
            if key == "context":
                if value and not value.isdigit():
                    raise ValueError(f"context takes a number of turns, got {option!r}")
                method = replace(method, context=int(value) if value else 1)
            elif value:
                raise ValueError(f"option {key!r} takes no value, got {option!r}")
            elif key == "speaker":
                method = replace(method, speaker=True)
            elif key == "date":
                method = replace(method, date=True)
            else:
                method = replace(method, caption=True)
        return method

    def __str__(self) -> str:
        parts = [self.retrieval] + [key for key in ("speaker", "date", "caption") if getattr(self, key)]
        if self.context:
            parts.append("context" if self.context == 1 else f"context={self.context}")
        return "+".join(parts)


DEFAULT_EPISODE_METHOD = EpisodeMethod("bm25", speaker=True, date=True, caption=True, context=2)


def human_date(iso: str) -> str:
    """``"2023-05-08"`` -> ``"8 May 2023"``: the way people write dates in questions."""
    day = date.fromisoformat(iso)
    return f"{day.day} {day.strftime('%B')} {day.year}"


def _said(episode: Episode, method: EpisodeMethod) -> str:
    text = episode.text
    if method.caption and episode.caption:
        text = f"{text} [shared an image: {episode.caption}]"
    return f"{episode.speaker}: {text}" if method.speaker and episode.speaker else text


def episode_documents(episodes: Sequence[Episode], method: EpisodeMethod) -> list[str]:
    """The text indexed for each episode, in order."""
    documents = []
    for position, episode in enumerate(episodes):
        # The turn itself weighs as much as all its neighbours together (it is repeated once
        # per neighbour slot): with less, a long neighbour outranks the turn it surrounds
        # (recall@1 fell from 0.27 to 0.19 on LoCoMo dev); with more, context stops helping.
        parts = [_said(episode, method)] * max(1, 2 * method.context)
        if method.context:
            for offset in range(-method.context, method.context + 1):
                other = position + offset
                if offset and 0 <= other < len(episodes) and episodes[other].session == episode.session:
                    parts.append(_said(episodes[other], method))
        if method.date and episode.date:
            parts.append(f"({human_date(episode.date)})")
        documents.append(" ".join(parts))
    return documents


class EpisodeSearch:
    """Ranks one owner's episodes for a query with a retriever of :mod:`tailor.retrieval`.

    :meth:`profile` turns episodes into records (the indexed text as their one field);
    build it once per set of episodes, since the retrievers cache their index per profile.
    """

    def __init__(self, method: EpisodeMethod = DEFAULT_EPISODE_METHOD, embedder: Embedder | None = None) -> None:
        if method.needs_embedder and embedder is None:
            raise ValueError(f"memory method {method} ranks by meaning and needs an embedder")
        self.method = method
        self.retriever: Retriever
        if method.retrieval == "bm25":
            from tailor.retrieval.bm25 import BM25Retriever

            self.retriever = BM25Retriever()
        elif method.retrieval == "dense" and embedder is not None:
            from tailor.retrieval.dense import DenseRetriever

            self.retriever = DenseRetriever(embedder)
        elif embedder is not None:
            from tailor.retrieval.hybrid import HybridRetriever

            self.retriever = HybridRetriever(embedder)

    def profile(self, owner: str, episodes: Sequence[Episode]) -> Profile:
        documents = episode_documents(episodes, self.method)
        return Profile(owner, tuple(HistoryRecord(episode.id, {"text": document}, episode.date)
                                    for episode, document in zip(episodes, documents)))

    def search(self, profile: Profile, query: str, k: int) -> list[str]:
        """The ids of up to ``k`` best episodes of ``profile`` for ``query``, best first (BM25
        leaves out those that share no word with the query)."""
        if not query.strip():
            return []
        hits = self.retriever.retrieve(query, profile, k)
        if self.method.retrieval == "bm25":  # a turn sharing no word with the query was not found
            hits = [hit for hit in hits if hit.score > 0]
        return [hit.record.id for hit in hits]


__all__ = ["DEFAULT_EPISODE_METHOD", "Episode", "EpisodeMethod", "EpisodeRetrieval", "EpisodeSearch",
           "episode_documents", "human_date"]
