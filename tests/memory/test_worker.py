"""Extraction in the background: nothing waits for it, nothing is lost, failures are contained."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tailor.memory.extraction import prompted_extractor
from tailor.memory.store import MemoryStore
from tailor.memory.worker import ExtractionWorker
from tailor.store.sqlite import SQLiteProfileStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteProfileStore]:
    with SQLiteProfileStore(tmp_path / "store.db") as opened:
        opened.set_attributes("alice", {})
        yield opened


def facts_for(messages: Sequence[dict[str, str]]) -> str:
    text = messages[-1]["content"]
    return f"FACT: user.city = {text.split()[-1]} | CONFIDENCE: 0.9\nFACT: user.mood = meh | CONFIDENCE: 0.2"


def test_facts_arrive_after_a_flush_and_low_confidence_is_dropped(store: SQLiteProfileStore) -> None:
    memory = MemoryStore(store)
    worker = ExtractionWorker(memory, prompted_extractor(facts_for))
    message = memory.add_exchange("alice", "c1", "I live in Lisbon", "ok")
    worker.submit("alice", message)
    assert worker.flush("alice", timeout=10)
    assert worker.pending() == 0
    assert [(m.text, m.source_message_id) for m in memory.list_memories("alice")] == [("user.city = Lisbon", message)]
    worker.close()


def test_submit_never_waits_for_the_model(store: SQLiteProfileStore) -> None:
    release = threading.Event()

    def slow(messages: Sequence[dict[str, str]]) -> str:
        release.wait(10)
        return facts_for(messages)

    memory = MemoryStore(store)
    worker = ExtractionWorker(memory, prompted_extractor(slow))
    for index in range(3):
        worker.submit("alice", memory.add_exchange("alice", f"c{index}", f"I live in City{index}", "ok"))
    assert worker.pending("alice") == 3  # all queued while the model is stuck
    assert not worker.flush("alice", timeout=0.05)
    release.set()
    assert worker.flush("alice", timeout=10)
    assert [m.value for m in memory.list_memories("alice")] == ["City2"]
    worker.close()


def test_messages_pending_at_a_crash_are_extracted_by_the_next_worker(store: SQLiteProfileStore) -> None:
    memory = MemoryStore(store)
    memory.add_exchange("alice", "c1", "I live in Oslo", "ok")  # stored, never handed to a worker
    worker = ExtractionWorker(memory, prompted_extractor(facts_for))
    assert worker.flush(timeout=10)
    assert [m.value for m in memory.list_memories("alice")] == ["Oslo"]
    worker.close()


def test_a_failing_model_marks_the_message_and_the_worker_goes_on(store: SQLiteProfileStore) -> None:
    calls = []

    def flaky(messages: Sequence[dict[str, str]]) -> str:
        calls.append(messages[-1]["content"])
        if len(calls) == 1:
            raise RuntimeError("model crashed")
        return facts_for(messages)

    memory = MemoryStore(store)
    worker = ExtractionWorker(memory, prompted_extractor(flaky))
    worker.submit("alice", memory.add_exchange("alice", "c1", "I live in Rome", "ok"))
    worker.submit("alice", memory.add_exchange("alice", "c2", "I live in Nice", "ok"))
    assert worker.flush(timeout=10)
    assert [m.value for m in memory.list_memories("alice")] == ["Nice"]
    assert memory.pending_messages() == []  # the failed one is not retried forever
    worker.close()


def test_a_user_deleted_before_extraction_leaves_nothing_behind(store: SQLiteProfileStore) -> None:
    release = threading.Event()

    def gated(messages: Sequence[dict[str, str]]) -> str:
        release.wait(10)
        return facts_for(messages)

    memory = MemoryStore(store)
    worker = ExtractionWorker(memory, prompted_extractor(gated))
    worker.submit("alice", memory.add_exchange("alice", "c1", "I live in Lima", "ok"))
    worker.submit("alice", memory.add_exchange("alice", "c2", "I live in Quito", "ok"))
    store.delete_user("alice")
    release.set()
    assert worker.flush(timeout=10)
    with store.transaction() as connection:
        assert connection.execute("SELECT COUNT(*) FROM memories").fetchone()[0] == 0
    worker.close()


def test_close_leaves_queued_messages_pending(store: SQLiteProfileStore) -> None:
    memory = MemoryStore(store)
    worker = ExtractionWorker(memory, prompted_extractor(facts_for))
    worker.close()
    message = memory.add_exchange("alice", "c1", "I live in Kyiv", "ok")
    worker.submit("alice", message)
    assert memory.pending_messages() == [("alice", message)]
    with pytest.raises(ValueError):
        ExtractionWorker(memory, prompted_extractor(facts_for), min_confidence=2.0)
