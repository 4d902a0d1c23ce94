"""Work done off the request path: items handled one at a time on a daemon thread.

Used by the server for what a reply must never wait for: fact extraction from a
conversation (:mod:`tailor.memory.worker`) and profile summaries
(:mod:`tailor.chat.summaries`). Items carry a key (a user id) so that callers can
wait for one user's work to finish.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

Item = TypeVar("Item")


class KeyedWorker(Generic[Item]):
    """Runs ``handle(key, item)`` for each submitted item, in order, on one thread.

    With ``coalesce``, an item whose key is already waiting is dropped (a summary asked for
    twice before its turn is written once). An exception from ``handle`` is logged and the
    worker goes on; :meth:`close` stops after the item in hand, dropping what is queued.
    """

    def __init__(self, handle: Callable[[str, Item], None], *, name: str, coalesce: bool = False) -> None:
        self._handle = handle
        self._coalesce = coalesce
        self._queue: queue.Queue[tuple[str, Item] | None] = queue.Queue()
        self._pending: dict[str, int] = {}
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        with self._changed:
            return self._closed

    def submit(self, key: str, item: Item) -> bool:
        """Queue an item; returns at once, with whether it was queued."""
        with self._changed:
            if self._closed or (self._coalesce and key in self._pending):
                return False
            self._pending[key] = self._pending.get(key, 0) + 1
        self._queue.put((key, item))
        return True

    def pending(self, key: str | None = None) -> int:
        """Items queued or in hand and not yet done: the key's, or all."""
        with self._changed:
            return sum(self._pending.values()) if key is None else self._pending.get(key, 0)

    def flush(self, key: str | None = None, timeout: float = 30.0) -> bool:
        """Wait until the key's items (all items with ``None``) are done; whether that
        happened within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (sum(self._pending.values()) if key is None else self._pending.get(key, 0)) > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        with self._changed:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            key, item = entry
            try:
                if not self.closed:
                    self._handle(key, item)
            except Exception:
                logger.exception("background work on %s failed", self._thread.name)
            finally:
                with self._changed:
                    left = self._pending.get(key, 0) - 1
                    if left > 0:
                        self._pending[key] = left
                    else:
                        self._pending.pop(key, None)
                    self._changed.notify_all()


__all__ = ["KeyedWorker"]
