"""Fact extraction off the request path: a background thread fed by a queue.

A chat reply stores the user's message marked ``pending`` and hands its id to the worker;
it never waits for the extraction. The worker asks the model for facts (see
:mod:`tailor.memory.facts`), keeps those confident enough, and marks the message done in
the same transaction that stores them. Messages still pending when the process stops
(or is killed) are picked up again when the next worker starts.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from tailor.memory.facts import EXTRACTION_INSTRUCTION, parse_facts
from tailor.memory.store import MemoryStore
from tailor.profiles.base import UnknownUserError

logger = logging.getLogger(__name__)

# messages -> the model's answer; the server routes it through its backend at low priority.
Generate = Callable[[Sequence[dict[str, str]]], str]


def extraction_messages(text: str) -> list[dict[str, str]]:
    """The chat messages that ask a model for the facts in one user message."""
    return [{"role": "system", "content": EXTRACTION_INSTRUCTION}, {"role": "user", "content": text}]


class ExtractionWorker:
    """Extracts facts from queued messages, one at a time, on a daemon thread."""

    def __init__(self, memory: MemoryStore, generate: Generate, *, min_confidence: float = 0.5,
                 resume: bool = True) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, got {min_confidence}")
        self.memory = memory
        self.generate = generate
        self.min_confidence = min_confidence
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._pending: dict[str, int] = {}
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tailor-memory-extraction", daemon=True)
        self._thread.start()
        if resume:
            for user_id, message_id in memory.pending_messages():
                self.submit(user_id, message_id)

    def submit(self, user_id: str, message_id: str) -> None:
        """Queue a stored message for extraction; returns at once."""
        with self._changed:
            if self._closed:
                return  # stays pending in the database; the next worker picks it up
            self._pending[user_id] = self._pending.get(user_id, 0) + 1
        self._queue.put((user_id, message_id))

    def pending(self, user_id: str | None = None) -> int:
        """Messages queued and not yet done: the user's, or everyone's."""
        with self._changed:
            return sum(self._pending.values()) if user_id is None else self._pending.get(user_id, 0)

    def flush(self, user_id: str | None = None, timeout: float = 30.0) -> bool:
        """Wait until the user's queued messages (everyone's with ``None``) are done; return
        whether that happened within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (sum(self._pending.values()) if user_id is None else self._pending.get(user_id, 0)) > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the message in hand; queued ones stay pending in the database."""
        with self._changed:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            user_id, message_id = item
            try:
                with self._changed:
                    closed = self._closed
                if not closed:
                    self._extract(user_id, message_id)
            finally:
                with self._changed:
                    left = self._pending.get(user_id, 0) - 1
                    if left > 0:
                        self._pending[user_id] = left
                    else:
                        self._pending.pop(user_id, None)
                    self._changed.notify_all()

    def _extract(self, user_id: str, message_id: str) -> None:
        try:
            text = self.memory.message_text(user_id, message_id)
            if text is None:
                return  # the user (and their messages) were deleted meanwhile
            answer = self.generate(extraction_messages(text))
            facts = [fact for fact in parse_facts(answer) if fact.confidence >= self.min_confidence]
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


__all__ = ["ExtractionWorker", "extraction_messages"]
