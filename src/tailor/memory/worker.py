"""Fact extraction off the request path: a background thread fed by a queue.

A chat reply stores the user's message marked ``pending`` and hands its id to the worker;
it never waits for the extraction. The worker hands the message to an extractor (on the
server, :class:`tailor.memory.extraction.FactExtractor`: statements found by code, judged
by the model), keeps the facts confident enough, and marks the message done in the same
transaction that stores them. Messages still pending when the process stops
(or is killed) are picked up again when the next worker starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from tailor.background import KeyedWorker
from tailor.memory.facts import Fact
from tailor.memory.store import MemoryStore
from tailor.store.contract import UnknownUserError

logger = logging.getLogger(__name__)

# A user's message -> the facts it states; the server's runs its model at low priority.
Extract = Callable[[str], Sequence[Fact]]


class ExtractionWorker:
    """Extracts facts from queued messages, one at a time, on a daemon thread."""

    def __init__(self, memory: MemoryStore, extract: Extract, *, min_confidence: float = 0.5,
                 resume: bool = True) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, got {min_confidence}")
        self.memory = memory
        self.extract = extract
        self.min_confidence = min_confidence
        self._worker: KeyedWorker[str] = KeyedWorker(self._extract, name="tailor-memory-extraction")
        if resume:
            for user_id, message_id in memory.pending_messages():
                self.submit(user_id, message_id)

    def submit(self, user_id: str, message_id: str) -> None:
        """Queue a stored message for extraction; returns at once. After :meth:`close` the
        message stays pending in the database, and the next worker picks it up."""
        self._worker.submit(user_id, message_id)

    def pending(self, user_id: str | None = None) -> int:
        """Messages queued and not yet done: the user's, or everyone's."""
        return self._worker.pending(user_id)

    def flush(self, user_id: str | None = None, timeout: float = 30.0) -> bool:
        """Wait until the user's queued messages (everyone's with ``None``) are done; return
        whether that happened within ``timeout`` seconds."""
        return self._worker.flush(user_id, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the message in hand; queued ones stay pending in the database."""
        self._worker.close(timeout)

    def _extract(self, user_id: str, message_id: str) -> None:
        try:
            text = self.memory.claim_message(user_id, message_id)
            if text is None:
                return  # deleted meanwhile, or another server process sharing the store has it
            facts = [fact for fact in self.extract(text) if fact.confidence >= self.min_confidence]
            self.memory.add_facts(user_id, facts, source_message_id=message_id)
        except UnknownUserError:
            return
        except Exception:
            # A failing model must not stop the worker nor retry forever: mark it and move on.
            logger.exception("memory extraction failed for message %s", message_id)
            try:
                self.memory.mark_extracted(user_id, message_id, "failed")
            except Exception:
                logger.exception("could not mark message %s as failed", message_id)


__all__ = ["Extract", "ExtractionWorker"]
