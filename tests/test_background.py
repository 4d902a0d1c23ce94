"""The background worker: order, coalescing, flush per key, failures that do not stop it."""

from __future__ import annotations

import threading

from tailor.background import KeyedWorker


def test_items_run_in_order_and_a_failure_does_not_stop_the_worker() -> None:
    seen: list[tuple[str, int]] = []

    def handle(key: str, item: int) -> None:
        if item == 2:
            raise RuntimeError("boom")
        seen.append((key, item))

    worker: KeyedWorker[int] = KeyedWorker(handle, name="test-worker")
    for item in range(5):
        assert worker.submit("a" if item % 2 else "b", item)
    assert worker.flush(timeout=5)
    assert seen == [("b", 0), ("a", 1), ("a", 3), ("b", 4)]
    assert worker.pending() == 0
    worker.close()
    assert not worker.submit("a", 9) and worker.closed


def test_coalescing_drops_an_item_whose_key_is_waiting_and_flush_waits_per_key() -> None:
    gate = threading.Event()
    handled: list[str] = []

    def handle(key: str, item: None) -> None:
        gate.wait(5)
        handled.append(key)

    worker: KeyedWorker[None] = KeyedWorker(handle, name="test-coalesce", coalesce=True)
    assert worker.submit("ana", None)
    assert not worker.submit("ana", None)  # ana is waiting: asked twice, done once
    assert worker.submit("ben", None)
    assert worker.pending("ana") == 1 and worker.pending() == 2
    assert not worker.flush("ben", timeout=0.05)  # ben waits behind ana, who waits on the gate
    gate.set()
    assert worker.flush("ben", timeout=5)
    assert handled == ["ana", "ben"]
    worker.close()
