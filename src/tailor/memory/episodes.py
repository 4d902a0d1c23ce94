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
through an :class:`EpisodeIndex`, which keeps its documents up to date as turns are added.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal, get_args

import numpy as np

from tailor.embeddings.embedder import Embedder

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


def episode_parts(episodes: Sequence[Episode], position: int, method: EpisodeMethod) -> list[str]:
    """The pieces of :func:`episode_document`, in order (the document is them joined by spaces)."""
    episode = episodes[position]
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
    return parts


def episode_document(episodes: Sequence[Episode], position: int, method: EpisodeMethod) -> str:
    """The text indexed for the episode at ``position``: the turn, its neighbours in the same
    session (``context``), its date."""
    return " ".join(episode_parts(episodes, position, method))


def episode_documents(episodes: Sequence[Episode], method: EpisodeMethod) -> list[str]:
    """The text indexed for each episode, in order."""
    return [episode_document(episodes, position, method) for position in range(len(episodes))]


_EpisodeFields = tuple[str, str, str, "str | None", "str | None", "str | None"]


def _fields(episode: Episode) -> _EpisodeFields:
    """An episode as a plain tuple, in :class:`Episode`'s field order."""
    return (episode.id, episode.speaker, episode.text, episode.session, episode.date, episode.caption)


class EpisodeIndex:
    """One owner's episodes as the search sees them, kept up to date as they change.

    The episodes are a window (oldest first): :meth:`append` adds new ones at its end and
    drops the oldest beyond a size; only the documents that changed are built again (the
    new turns', and their neighbours' in the same session). They are held in a
    :class:`~tailor.retrieval.live.LiveIndex` (BM25 with the scores of a BM25 built from
    scratch over the same documents; vectors for the dense methods), so a search costs the
    same after ten turns and after ten thousand. The rankings are the
    retrievers' of :mod:`tailor.retrieval` over the documents in order: BM25 (the turns that
    share a word with the query), dense (cosine, ties to the earlier turn), hybrid (the two
    fused by reciprocal rank, dense first).
    """

    def __init__(self, method: EpisodeMethod, embedder: Embedder | None = None) -> None:
        from tailor.retrieval.live import LiveIndex

        if method.needs_embedder and embedder is None:
            raise ValueError(f"memory method {method} ranks by meaning and needs an embedder")
        self.method, self.embedder = method, embedder
        self.live = LiveIndex(embedder.dim if embedder is not None and method.needs_embedder else None)
        # Episodes are held as plain tuples (:func:`_fields`) and the terms as tuples of
        # strings: Python's garbage collector skips those, so a server holding thousands of
        # messages per user does not pause longer the more it holds.
        self._window: deque[_EpisodeFields] = deque()
        self._by_id: dict[str, _EpisodeFields] = {}
        self._documents: dict[str, tuple[str, ...]] = {}  # id -> the pieces of its document
        self._piece_terms: dict[str, tuple[str, ...]] = {}  # a piece of a document -> its BM25 terms

    def __len__(self) -> int:
        return len(self._window)

    @property
    def episodes(self) -> list[Episode]:
        return [Episode(*fields) for fields in self._window]

    @property
    def last(self) -> Episode | None:
        return Episode(*self._window[-1]) if self._window else None

    def episode(self, episode_id: str) -> Episode:
        return Episode(*self._by_id[episode_id])

    def update(self, episodes: Sequence[Episode]) -> None:
        """Make the index hold ``episodes`` (oldest first): appended to the window when they
        continue it, else built anew."""
        new = list(episodes)
        if self._window and new and new[0].id in self._by_id:
            kept = [fields[0] for fields in self._window]
            first = kept.index(new[0].id)
            if kept[first:] == [e.id for e in new[:len(kept) - first]]:
                self.append(new[len(kept) - first:], limit=len(new))
                return
        for fields in self._window:
            self._forget(fields[0])
        self._window.clear()
        self.append(new, limit=len(new))

    def append(self, episodes: Sequence[Episode], *, limit: int) -> None:
        """Add ``episodes`` (newer than those held) at the end, then drop the oldest so that
        at most ``limit`` remain."""
        added = 0
        for episode in episodes:
            fields = _fields(episode)
            self._window.append(fields)
            self._by_id[episode.id] = fields
            added += 1
        dropped = 0
        while len(self._window) > limit:
            self._forget(self._window.popleft()[0])
            dropped += 1
        if not added and not dropped:
            return
        # The documents that may have changed: the new turns and the `context` before them;
        # after a drop, the first `context` (their earlier neighbours went).
        context = self.method.context
        size = len(self._window)
        changed = set(range(max(size - added - context, 0), size))
        if dropped:
            changed |= set(range(min(context, size)))
        self._refresh(sorted(changed))

    def _refresh(self, positions: Sequence[int]) -> None:
        if not positions:
            return
        context, window = self.method.context, self._window
        documents: dict[str, tuple[str, ...]] = {}
        for position in positions:  # each changed one with its neighbours only
            low, high = max(position - context, 0), min(position + context + 1, len(window))
            near = [Episode(*window[i]) for i in range(low, high)]
            documents[near[position - low].id] = tuple(episode_parts(near, position - low, self.method))
        changed = {key: parts for key, parts in documents.items() if self._documents.get(key) != parts}
        if not changed:
            return
        from tailor.retrieval.bm25 import tokenize

        # A document's terms are its pieces' terms in order (the words never cross a space),
        # and each piece is in several documents: tokenized once, while it is in the window.
        pieces = self._piece_terms
        missing = list(dict.fromkeys(piece for parts in changed.values() for piece in parts if piece not in pieces))
        pieces.update(zip(missing, map(tuple, tokenize(missing))))
        keys = list(changed)
        vectors = (self.embedder.embed([" ".join(changed[key]) for key in keys])
                   if self.live.dim and self.embedder is not None else [None] * len(keys))
        for key, vector in zip(keys, vectors):
            parts = changed[key]
            self._documents[key] = parts
            tokens = [term for piece in parts for term in pieces[piece]]
            self.live.put(key, tokens, None if vector is None else np.asarray(vector, dtype=np.float32))
        if len(pieces) > 4 * len(self._window) + 64:  # keep the pieces of the documents held
            held = {piece for parts in self._documents.values() for piece in parts}
            self._piece_terms = {piece: terms for piece, terms in pieces.items() if piece in held}

    def _forget(self, key: str) -> None:
        self.live.remove(key)
        self._documents.pop(key, None)
        self._by_id.pop(key, None)

    def search(self, query: str, k: int) -> list[str]:
        """The ids of up to ``k`` best episodes for ``query``, best first (BM25 leaves out
        those that share no word with the query)."""
        from tailor.retrieval.bm25 import tokenize

        if not query.strip() or k <= 0 or not self._window:
            return []
        if not self.live.dim or self.embedder is None:
            return [key for key, _ in self.live.top(tokenize([query])[0], k)]
        from tailor.memory.search import fused_top

        rows, similarities = self.live.similarities(self.embedder.embed([query])[0])
        if self.method.retrieval == "dense":
            return [self.live.key(int(rows[i])) for i in np.lexsort((rows, -similarities))[:k]]
        lexical, _ = self.live.ranked(tokenize([query])[0])
        return [self.live.key(int(row)) for row in
                fused_top(lexical, rows, similarities, k, dense_first=True, later_first=False)]


class EpisodeSearch:
    """How one method searches episodes: :meth:`index` makes an owner's
    :class:`EpisodeIndex` (``tailor eval-memory`` builds one per conversation; the served
    memory keeps one per user, up to date as they chat)."""

    def __init__(self, method: EpisodeMethod = DEFAULT_EPISODE_METHOD, embedder: Embedder | None = None) -> None:
        if method.needs_embedder and embedder is None:
            raise ValueError(f"memory method {method} ranks by meaning and needs an embedder")
        self.method, self.embedder = method, embedder

    def index(self, episodes: Sequence[Episode] = ()) -> EpisodeIndex:
        index = EpisodeIndex(self.method, self.embedder)
        index.update(episodes)
        return index


__all__ = ["DEFAULT_EPISODE_METHOD", "Episode", "EpisodeIndex", "EpisodeMethod", "EpisodeRetrieval", "EpisodeSearch",
           "episode_document", "episode_documents", "episode_parts", "human_date"]
