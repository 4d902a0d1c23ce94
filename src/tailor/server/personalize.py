"""Personalizing one chat request: what the model is told about the user, and where.

For a user the store holds, the user's latest message is the query. The serving method
(:class:`~tailor.server.config.ServeMethod`) picks the ``k`` records to show (BM25,
recency, dense or hybrid), and whether the user's profile summary and persona
description are added; the ``k_memories`` best memories are added whenever memory is on,
and so are the user's ``k_episodes`` most relevant earlier messages, dated, within
``episode_tokens`` (episodic memory, :mod:`tailor.memory.episodes`: it needs no model, so
it works with any backend and from the second message on).
All of it goes into one system message ahead of the conversation (the client's own system
messages come first in it). The user's adapter, where the model has one, is named in the
context so that the reply reports it. An unknown user, or a request without ``user``, is
served as is: no personalization, granularity ``global``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tailor.memory.episodes import Episode
from tailor.memory.store import Memory, MemoryStore
from tailor.profiles.sqlite import SQLiteProfileStore
from tailor.prompting.builder import TokenCounter, fit_record
from tailor.server.config import ServeMethod
from tailor.server.profile_notes import PersonaChooser, SummaryWorker, newest_summary
from tailor.server.record_index import RecordIndex
from tailor.server.record_vectors import RecordVectors, fuse_rankings
from tailor.tasks.chat import CHAT_TASK, ChatTask
from tailor.types import Granularity, HistoryRecord


@dataclass(frozen=True)
class ChatContext:
    """What was found about the user for one request. ``adapter`` is the adapter the
    model runs with (``"user"``, ``"persona:ID"``, ``"global"``; ``None``: the base model)."""

    records: tuple[HistoryRecord, ...] = ()
    memories: tuple[Memory, ...] = ()
    notes: tuple[str, ...] = ()
    adapter: str | None = None
    episodes: tuple[Episode, ...] = ()

    @property
    def granularity(self) -> Granularity:
        """The narrowest level the reply is personalized at."""
        if self.records or self.memories or self.notes or self.episodes or self.adapter == "user":
            return "user"
        if self.adapter is not None and self.adapter.startswith("persona"):
            return "persona"
        return "global"


EPISODES_HEADER = "Earlier in your conversations with this user (most relevant first):"

# How deep each ranking goes before hybrid fusion: deeper than k, so that a record ranked
# well by both methods but first by neither still makes the cut.
FUSION_DEPTH = 50


class ChatPersonalizer:
    """Retrieves a user's context and places it in a conversation."""

    def __init__(self, store: SQLiteProfileStore, index: RecordIndex, memory: MemoryStore | None, *,
                 method: ServeMethod, k: int, k_memories: int, count_tokens: TokenCounter,
                 vectors: RecordVectors | None = None, personas: PersonaChooser | None = None,
                 summaries: SummaryWorker | None = None, adapter_label: Callable[[str | None], str | None] | None = None,
                 context_tokens: int = 384, task: ChatTask = CHAT_TASK, k_episodes: int = 4,
                 episode_tokens: int = 256) -> None:
        if method.needs_vectors and vectors is None:
            raise ValueError(f"serving method {method} needs record vectors (an embedder)")
        self.store = store
        self.index = index
        self.memory = memory
        self.method = method
        self.k = k
        self.k_memories = k_memories
        self.count_tokens = count_tokens
        self.vectors = vectors
        self.personas = personas
        self.summaries = summaries
        self.adapter_label = adapter_label
        self.context_tokens = context_tokens
        self.task = task
        self.k_episodes = k_episodes
        self.episode_tokens = episode_tokens

    def context(self, user_id: str, query: str) -> ChatContext | None:
        """The user's context for ``query``; ``None`` when the store does not hold the user."""
        records = self._records(user_id, query)
        if records is None:
            return None
        memories = self.memory.search(user_id, query, self.k_memories) if self.memory is not None else []
        # The user's own words only: a small model's replies can be wrong, and showing them
        # again would make its mistakes self-reinforcing. Replies still help find messages.
        episodes = (self.memory.search_episodes(user_id, query, self.k_episodes, speaker="user")
                    if self.memory is not None else [])
        adapter = self.adapter_label(user_id) if self.adapter_label is not None else None
        return ChatContext(tuple(records), tuple(memories), tuple(self._notes(user_id, query)), adapter,
                           tuple(episodes))

    def _records(self, user_id: str, query: str) -> list[HistoryRecord] | None:
        retrieval = self.method.retrieval
        if retrieval == "recency":
            return self.index.recent(user_id, self.k)
        if retrieval == "none":
            return [] if self.store.has_user(user_id) else None
        ids: list[str] | None
        if retrieval == "bm25":
            ids = self.index.rank(user_id, query, self.k)
        elif retrieval == "dense" and self.vectors is not None:
            ids = self.vectors.rank(user_id, query, self.k)
        elif self.vectors is not None:  # hybrid
            depth = max(self.k, FUSION_DEPTH)
            ids = fuse_rankings([self.index.rank(user_id, query, depth), self.vectors.rank(user_id, query, depth)],
                                self.k)
        else:
            raise AssertionError(f"unhandled retrieval {retrieval!r}")
        return None if ids is None else self.index.records(user_id, ids)

    def _notes(self, user_id: str, query: str) -> list[str]:
        notes = []
        if self.method.persona and self.personas is not None:
            persona = self.personas.persona(user_id, query)
            if persona is not None and persona.description.strip():
                notes.append(persona.description.strip())
        if self.method.summary:
            summary, current = newest_summary(self.store, user_id)
            if not current and self.summaries is not None and self.store.count_records(user_id):
                self.summaries.submit(user_id)  # written in the background; this reply uses what exists
            if summary is not None:
                notes.append(summary)
        return notes

    def messages(self, conversation: Sequence[dict[str, str]], context: ChatContext) -> tuple[dict[str, str], ...]:
        """The conversation with the user's context in a leading system message."""
        if not (context.records or context.memories or context.notes or context.episodes):
            return tuple(conversation)
        system = [m["content"] for m in conversation if m["role"] == "system" and m["content"].strip()]
        blocks = ["\n\n".join(system) if system else self.task.instruction]
        if context.notes:
            blocks.append("About the user:\n" + "\n".join(context.notes))
        if context.memories:
            blocks.append(self.task.memory_header + "\n" + "\n".join(f"- {m.text}" for m in context.memories))
        if context.episodes:
            lines = self._episode_lines(context.episodes)
            if lines:
                blocks.append(EPISODES_HEADER + "\n" + "\n".join(lines))
        if context.records:
            share = self.context_tokens // len(context.records)
            fitted = [fit_record(self.task, record, share, self.count_tokens) for record in context.records]
            blocks.append(self.task.context_header + "\n"
                          + "\n".join(f"- {self.task.render_item(record)}" for record in fitted))
        rest = [m for m in conversation if m["role"] != "system"]
        return ({"role": "system", "content": "\n\n".join(blocks)}, *rest)

    def _episode_lines(self, episodes: Sequence[Episode]) -> list[str]:
        """``On DATE the user said: ...`` lines, most relevant first, within ``episode_tokens``
        (a line that does not fit whole is cut to what is left, then no more are added)."""
        lines: list[str] = []
        left = self.episode_tokens
        for episode in episodes:
            who = "you replied" if episode.speaker == "assistant" else "the user said"
            line = f"- On {episode.date} {who}: {' '.join(episode.text.split())}" if episode.date else (
                f"- Earlier {who}: {' '.join(episode.text.split())}")
            cost = self.count_tokens(line)
            if cost > left:
                words = line.split(" ")
                while words and self.count_tokens(" ".join(words) + " ...") > left:
                    words = words[:max(0, len(words) - max(1, len(words) // 8))]
                if len(words) > 6:
                    lines.append(" ".join(words) + " ...")
                break
            lines.append(line)
            left -= cost
        return lines


__all__ = ["EPISODES_HEADER", "FUSION_DEPTH", "ChatContext", "ChatPersonalizer"]
