"""Per-user conversations and memories, kept in the profile store (SQLite or PostgreSQL).

The store holds the tables and their SQL (:mod:`tailor.store.conversations`); this
module gives them meaning: facts in, memories searched out. Tables (declared with the
store's schema, each under its derived data rule: they reference ``users(user_id) ON
DELETE CASCADE``, so deleting a user deletes their conversations, memories and history)::

    conversation_messages(message_id, user_id, completion_id, role, content, created_at,
                          extraction 'pending' | 'done' | 'failed' | 'none')
    memories(memory_id, user_id, key, operator, value, text, normalized, terms, confidence,
             source_message_id, created_at, superseded_by, superseded_at, embedder, embedding)
    memory_history(event_id, memory_id -> memories ON DELETE CASCADE, user_id, event,
                   related_memory_id, source_message_id, at)

Semantics:

- a fact already held (same normalized key and value, or same normalized free text) is
  not added again;
- a ``key = value`` fact supersedes the user's active facts with the same key: they get
  ``superseded_by`` and a ``SUPERSEDED`` history event, and stay readable;
- deleting a memory is a hard delete of it, the earlier versions it superseded, and
  their history: what the user asked to forget is gone, not hidden.

Every statement names the ``user_id``, so one user's memories are never read for another.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from tailor.embeddings.embedder import Embedder
from tailor.memory.episodes import DEFAULT_EPISODE_METHOD, Episode, EpisodeIndex, EpisodeMethod, EpisodeSearch
from tailor.memory.facts import Fact
from tailor.memory.search import TextEmbedder, fused_top
from tailor.retrieval.bm25 import tokenize
from tailor.retrieval.live import LiveIndex
from tailor.store import SQLProfileStore
from tailor.store.checks import utc_now
from tailor.store.conversations import NewMemory

# How long a worker's claim on a message lasts: far longer than one extraction takes.
CLAIM_SECONDS = 600.0
# Search reads at most this many of a user's newest active memories.
MAX_SEARCHED = 2000
# Users whose search indexes a process keeps in memory (least recently searched go first).
INDEXED_USERS = 1024


@dataclass(frozen=True)
class Memory:
    """One remembered fact about a user, with where and when it came from."""

    id: str
    key: str | None
    operator: str
    value: str
    text: str
    confidence: float
    source_message_id: str | None
    created_at: str
    superseded_by: str | None = None
    superseded_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MemoryStore:
    """Conversations and memories of every user, scoped per user in each call."""

    def __init__(self, store: SQLProfileStore, *, embedder: TextEmbedder | None = None,
                 episode_method: EpisodeMethod = DEFAULT_EPISODE_METHOD) -> None:
        self.store = store
        self.embedder = embedder
        # Episodic memory: the user's own turns, searched as ``tailor eval-memory`` measures them.
        self.episode_search = EpisodeSearch(episode_method, embedder if isinstance(embedder, Embedder) else None)
        self._indexes: OrderedDict[str, _Indexed] = OrderedDict()
        self._indexes_lock = threading.Lock()

    # -- conversations ---------------------------------------------------------------------

    def add_exchange(self, user_id: str, completion_id: str, user_text: str, reply: str, *,
                     extract: bool = True) -> str:
        """Store the user's message and the reply; return the user message's id.

        With ``extract`` the message is marked pending for fact extraction (and stays so
        across restarts until a worker has read it). Raises :class:`UnknownUserError`.
        """
        message_id = f"msg_{uuid.uuid4().hex}"
        now = utc_now()
        rows = [(message_id, completion_id, "user", user_text, now, "pending" if extract else "none"),
                (f"msg_{uuid.uuid4().hex}", completion_id, "assistant", reply, now, "none")]
        self.store.add_messages(user_id, rows)
        return message_id

    def episodes(self, user_id: str) -> list[Episode]:
        """The user's kept messages (their own and the replies, ``speaker`` ``"user"`` or
        ``"assistant"``), oldest first: the newest :data:`MAX_SEARCHED` of them. A day's
        messages are one session, so a message's neighbours are those of the same day."""
        return [_episode(row) for row in self.store.recent_messages(user_id, MAX_SEARCHED)]

    def search_episodes(self, user_id: str, query: str, k: int, *, speaker: str | None = None) -> list[Episode]:
        """Up to ``k`` of the user's kept messages most relevant to ``query``, best first;
        with ``speaker`` (``"user"``, ``"assistant"``) only that side's. Both sides are
        searched either way: a reply is the context of the message it answers.

        The user's index is kept in memory and brought up to date with only the messages
        written since it was last searched (:class:`~tailor.memory.episodes.EpisodeIndex`),
        so a search costs the same whatever the length of the conversation."""
        if k <= 0:
            return []
        with self._indexed(user_id) as cached:
            index = self._episode_index(user_id, cached)
            depth = k if speaker is None else 4 * k
            found = [index.episode(episode_id) for episode_id in index.search(query, depth)]
        return [episode for episode in found if speaker is None or episode.speaker == speaker][:k]

    def _episode_index(self, user_id: str, cached: _Indexed) -> EpisodeIndex:
        """The user's episode index, up to date with the store (new messages read only)."""
        if cached.episodes is not None and cached.last_message is not None:
            new = self.store.messages_after(user_id, cached.last_message, MAX_SEARCHED)
            if new is not None:
                if new:
                    cached.episodes.append([_episode(row) for row in new], limit=MAX_SEARCHED)
                    cached.last_message = new[-1][0]
                return cached.episodes
        rows = self.store.recent_messages(user_id, MAX_SEARCHED)
        cached.episodes = self.episode_search.index([_episode(row) for row in rows])
        cached.last_message = rows[-1][0] if rows else None
        return cached.episodes

    @contextmanager
    def _indexed(self, user_id: str) -> Iterator[_Indexed]:
        """The user's in-memory search state, held for this thread."""
        with self._indexes_lock:
            cached = self._indexes.get(user_id)
            if cached is None:
                cached = self._indexes[user_id] = _Indexed()
            self._indexes.move_to_end(user_id)
            while len(self._indexes) > INDEXED_USERS:
                self._indexes.popitem(last=False)
        with cached.lock:
            yield cached

    def forget(self, user_id: str) -> None:
        """Drop the user's in-memory search state (their rows go with them by cascade)."""
        with self._indexes_lock:
            self._indexes.pop(user_id, None)

    def pending_messages(self) -> list[tuple[str, str]]:
        """``(user_id, message_id)`` of every message still waiting for extraction, oldest first."""
        return self.store.pending_messages()

    def message_text(self, user_id: str, message_id: str) -> str | None:
        return self.store.message_text(user_id, message_id)

    def claim_message(self, user_id: str, message_id: str, *, lease: float = CLAIM_SECONDS) -> str | None:
        """The text of a pending message, claimed for this caller's extraction for ``lease``
        seconds; ``None`` when it is gone, no longer pending, or claimed by another (a
        server process sharing the store). A claim left by a process that died runs out,
        and the message is extracted by the next worker that starts."""
        now = datetime.now(timezone.utc)
        until = now + timedelta(seconds=lease)
        return self.store.claim_message(user_id, message_id, now.isoformat(timespec="seconds"),
                                        until.isoformat(timespec="seconds"))

    def mark_extracted(self, user_id: str, message_id: str, status: str) -> None:
        self.store.mark_message(user_id, message_id, status)

    # -- memories ---------------------------------------------------------------------------

    def add_facts(self, user_id: str, facts: Sequence[Fact], *, source_message_id: str | None = None) -> list[Memory]:
        """Remember ``facts`` (dropping those already held, superseding by key); return the new
        memories. When ``source_message_id`` is given the message is marked extracted in
        the same transaction. Raises :class:`UnknownUserError`."""
        texts = [fact.text for fact in facts]
        terms = [" ".join(tokens) for tokens in tokenize(texts)]
        vectors = self.embedder.embed(texts) if self.embedder is not None and texts else None
        embedder = self.embedder.name if self.embedder is not None else None
        now = utc_now()
        rows = [NewMemory(fact.key, fact.operator, fact.value, fact.text, fact.normalized, terms[index],
                          fact.confidence, embedder,
                          None if vectors is None else np.asarray(vectors[index], dtype="<f4").tobytes())
                for index, fact in enumerate(facts)]
        ids = self.store.add_memories(user_id, rows, source_message_id=source_message_id, created_at=now)
        return [Memory(memory_id, fact.key, fact.operator, fact.value, fact.text, fact.confidence, source_message_id,
                       now) for memory_id, fact in zip(ids, facts) if memory_id is not None]

    def list_memories(self, user_id: str, *, include_superseded: bool = False) -> list[Memory]:
        """The user's memories, oldest first: the active ones, or all with their superseded versions."""
        return [Memory(*row) for row in self.store.memory_rows(user_id, include_superseded=include_superseded)]

    def history(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """Each of the user's memories' events, oldest first, by memory id."""
        events: dict[str, list[dict[str, Any]]] = {}
        for memory_id, event, related, source, at in self.store.memory_history(user_id):
            events.setdefault(memory_id, []).append(
                {"event": event, "related_memory_id": related, "source_message_id": source, "at": at})
        return events

    def delete(self, user_id: str, memory_id: str) -> list[str]:
        """Hard-delete the memory, the earlier versions it superseded, and their history;
        return the ids deleted (empty when the user holds no such memory)."""
        return self.store.delete_memory(user_id, memory_id)

    def search(self, user_id: str, query: str, k: int) -> list[Memory]:
        """Up to ``k`` of the user's newest :data:`MAX_SEARCHED` active memories for
        ``query``: BM25 and, with an embedder, dense similarity, fused by reciprocal rank
        (BM25 ranks only those that share a word with the query; ties go to the newer).

        The user's memories are kept indexed in memory and brought up to date with only
        those written since (a superseded or deleted one makes it read them again), so a
        search does not cost more as they accumulate."""
        if k <= 0:
            return []
        with self._indexed(user_id) as cached:
            facts = self._fact_index(user_id, cached)
            if not facts.memories:
                return []
            # Rows are in the order memories were written: the newer wins a tie, as in a
            # ranking of the newest first.
            live = facts.live
            if not live.dim or self.embedder is None:
                return [Memory(*facts.memories[memory_id])
                        for memory_id, _ in live.top(tokenize([query])[0], k, ties="later")]
            lexical, _ = live.ranked(tokenize([query])[0], ties="later")
            rows, similarities = live.similarities(self.embedder.embed([query])[0])
            top = fused_top(lexical, rows, similarities, k, dense_first=False, later_first=True)
            return [Memory(*facts.memories[live.key(int(row))]) for row in top]

    def _fact_index(self, user_id: str, cached: _Indexed) -> _Facts:
        """The user's memories as searched, up to date with the store."""
        state = self.store.memory_state(user_id)
        facts = cached.facts
        if facts is not None and facts.state == state:
            return facts
        if facts is not None and facts.state[1] == state[1]:  # only additions: add them
            self._add_facts(facts, list(reversed(self.store.searchable_memories_after(user_id, facts.latest,
                                                                                      MAX_SEARCHED))))
            facts.state = state
            return facts
        # A memory was superseded or deleted (or this is the first search): read them all.
        facts = cached.facts = _Facts(state=state,
                                      live=LiveIndex(self.embedder_dim() if self.embedder is not None else None))
        self._add_facts(facts, list(reversed(self.store.searchable_memories_after(user_id, 0, MAX_SEARCHED))))
        return facts

    def embedder_dim(self) -> int:
        """The embedder's vector size (read off one embedded text when it does not say)."""
        dim = getattr(self.embedder, "dim", None)
        if isinstance(dim, int):
            return dim
        assert self.embedder is not None  # the caller checked
        return int(np.asarray(self.embedder.embed(["dimension"])).shape[1])

    @staticmethod
    def _vectors(embedder: TextEmbedder, rows: Sequence[Any], memories: Sequence[Memory]) -> np.ndarray:
        matrix: list[np.ndarray | None] = [
            np.frombuffer(row[12], dtype="<f4") if row[11] == embedder.name and row[12] is not None else None
            for row in rows]
        missing = [index for index, vector in enumerate(matrix) if vector is None]
        if missing:  # written under another embedder: embed now, for this search only
            fresh = embedder.embed([memories[index].text for index in missing])
            for position, index in enumerate(missing):
                matrix[index] = fresh[position]
        return np.stack([vector for vector in matrix if vector is not None]).astype(np.float32, copy=False)

    def _add_facts(self, facts: _Facts, rows: Sequence[Any]) -> None:
        """Index ``rows`` (oldest first), keeping the newest :data:`MAX_SEARCHED`."""
        if not rows:
            return
        memories = [Memory(*row[:10]) for row in rows]
        vectors = self._vectors(self.embedder, rows, memories) if self.embedder is not None else None
        for position, (row, memory) in enumerate(zip(rows, memories)):
            facts.memories[memory.id] = tuple(row[:10])
            facts.order.append(memory.id)
            facts.live.put(memory.id, row[10].split(), vectors[position] if vectors is not None else None)
            facts.latest = max(facts.latest, int(row[13]))
        while len(facts.order) > MAX_SEARCHED:  # the oldest beyond the newest MAX_SEARCHED
            memory_id = facts.order.popleft()
            facts.memories.pop(memory_id, None)
            facts.live.remove(memory_id)

    # -- export ------------------------------------------------------------------------------

    def export(self, user_id: str) -> dict[str, Any]:
        """The user's memories (superseded ones included, each with its history) and conversations."""
        history = self.history(user_id)
        memories = [{**memory.to_dict(), "history": history.get(memory.id, [])}
                    for memory in self.list_memories(user_id, include_superseded=True)]
        messages = [{"id": row[0], "completion_id": row[1], "role": row[2], "content": row[3], "created_at": row[4]}
                    for row in self.store.conversation(user_id)]
        return {"memories": memories, "conversations": messages}


def _episode(row: Sequence[str]) -> Episode:
    """A kept message as an episode: a day's messages are one session."""
    return Episode(row[0], row[1], row[2], session=row[3][:10], date=row[3][:10])


@dataclass
class _Facts:
    """A user's newest active memories as searched: in the order written, BM25 and vectors."""

    state: tuple[int, int]  # the store's memory_state when last read
    live: LiveIndex
    order: deque[str] = field(default_factory=deque)
    memories: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """Each memory's fields (:class:`Memory`'s, in order): plain tuples, which Python's
    garbage collector skips, where a server holds thousands per user."""
    latest: int = 0


@dataclass
class _Indexed:
    """What a process keeps in memory to search one user: their episodes and memories."""

    episodes: EpisodeIndex | None = None
    last_message: str | None = None
    facts: _Facts | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


__all__ = ["Memory", "MemoryStore"]
