"""Summaries of served users' profiles, written off the request path.

A request that finds the user's summary missing or older than their records
(:func:`summary_due`) queues the user for :class:`SummaryWorker`, and is answered with
whatever summary exists now (the previous one, or none); the worker writes the new one
through the backend at background priority, with :func:`served_summarizer` (as
:mod:`tailor.prompting.summary` writes them for ``tailor eval``). ``tailor summaries
build`` writes the same summaries ahead of the requests, with the same two functions
(:mod:`tailor.batch.summaries`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tailor.backends.contract import Backend
from tailor.background import KeyedWorker
from tailor.prompting.summary import SUMMARY_KIND, ProfileSummarizer
from tailor.store import SQLProfileStore
from tailor.store.contract import ProfileStore, UnknownUserError
from tailor.tasks.chat import CHAT_TASK
from tailor.types import GenerationRequest, GenerationResult

GenerateOne = Callable[[GenerationRequest], GenerationResult]


def newest_summary(store: ProfileStore, user_id: str) -> tuple[str | None, bool]:
    """The user's newest stored summary (any model) and whether it is current for their
    profile; ``(None, False)`` when they have none."""
    summaries = [a for a in store.list_artifacts(user_id) if a.kind == SUMMARY_KIND]
    if not summaries:
        return None, False
    newest = max(summaries, key=lambda artifact: artifact.created_at)
    text = newest.value.get("summary")
    current = newest.profile_version == store.profile_version(user_id)
    return (text.strip() if isinstance(text, str) and text.strip() else None), current


def summary_due(store: ProfileStore, user_id: str) -> tuple[str | None, bool]:
    """The user's newest stored summary (:func:`newest_summary`) and whether a new one is
    due: theirs is missing or stale, and they have records to summarize."""
    summary, current = newest_summary(store, user_id)
    return summary, not current and store.count_records(user_id) > 0


def served_summarizer(store: ProfileStore, backend: Backend) -> ProfileSummarizer:
    """The summarizer the server writes a user's summary with: the chat task's, one user
    at a time, into ``store``."""
    return ProfileSummarizer(backend, CHAT_TASK, store, batch_size=1)


class QueuedBackend:
    """A backend view whose calls go through the server's gate, one request at a time in
    the calling thread (``generate``: at background priority for summaries, as a reply
    for ``refine``'s style notes)."""

    def __init__(self, backend: Backend, generate: GenerateOne) -> None:
        self.name = backend.name
        self.model_id = str(getattr(backend, "model_id", backend.name))
        self._backend = backend
        self._generate = generate

    def count_tokens(self, text: str) -> int:
        return self._backend.count_tokens(text)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return [self._generate(request) for request in requests]


class SummaryWorker:
    """Writes users' profile summaries on a daemon thread, one user at a time.

    ``generate`` runs one request at background priority (the server's gate); a user
    queued twice before their turn is summarized once.
    """

    def __init__(self, store: SQLProfileStore, backend: Backend, generate: GenerateOne) -> None:
        self.summarizer = served_summarizer(store, QueuedBackend(backend, generate))
        self._worker: KeyedWorker[None] = KeyedWorker(self._summarize, name="tailor-summaries", coalesce=True)

    def summary(self, user_id: str) -> str:
        """The user's newest stored summary (empty when none); a missing or stale one is
        queued to be written, and this request goes on with what exists."""
        summary, due = summary_due(self.summarizer.store, user_id)
        if due:
            self.submit(user_id)
        return summary or ""

    def submit(self, user_id: str) -> None:
        """Queue the user for a new summary; returns at once."""
        self._worker.submit(user_id, None)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued user is done; whether that happened within ``timeout``."""
        return self._worker.flush(None, timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._worker.close(timeout)

    def _summarize(self, user_id: str, _: None) -> None:
        try:
            self.summarizer.summaries([user_id])
        except UnknownUserError:
            pass  # deleted meanwhile


__all__ = ["QueuedBackend", "SummaryWorker", "newest_summary", "served_summarizer", "summary_due"]
