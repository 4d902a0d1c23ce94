"""Two server processes sharing one store never extract the same message: a worker claims a
pending message before extracting it (``MemoryStore.claim_message``), and one claim wins."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tailor.memory.facts import Fact
from tailor.memory.store import MemoryStore
from tailor.memory.worker import ExtractionWorker
from tailor.store import SQLiteProfileStore, SQLProfileStore

Opener = Callable[[], SQLProfileStore]


@pytest.fixture(params=["sqlite", "postgres"])
def open_shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens another store object on one database, as another server process would."""
    opened: list[SQLProfileStore] = []

    def open_one() -> SQLProfileStore:
        if request.param == "sqlite":
            store: SQLProfileStore = SQLiteProfileStore(tmp_path / "store.db")
        else:
            from tailor.store.postgres import PostgresProfileStore

            store = PostgresProfileStore(request.getfixturevalue("postgres_url"))
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def test_one_claim_wins_and_a_claim_runs_out(open_shared: Opener) -> None:
    first, second = MemoryStore(open_shared()), MemoryStore(open_shared())
    first.store.set_attributes("alice", {})
    message = first.add_exchange("alice", "c1", "I live in Oslo", "ok")
    assert first.claim_message("alice", message) == "I live in Oslo"
    assert second.claim_message("alice", message) is None  # the other process has it
    assert first.claim_message("alice", message) is None  # a claim is not taken twice, even by its holder
    first.add_facts("alice", [Fact("user.city", "=", "Oslo", 0.9)], source_message_id=message)  # done
    assert second.claim_message("alice", message, lease=0) is None  # done: nothing left to claim
    other = first.add_exchange("alice", "c2", "I live in Rome", "ok")
    assert first.claim_message("alice", other, lease=0) == "I live in Rome"  # then its holder dies
    assert second.claim_message("alice", other) == "I live in Rome"  # the claim ran out
    assert first.claim_message("alice", "msg_gone") is None


def test_two_workers_resuming_the_same_messages_extract_each_once(open_shared: Opener) -> None:
    writer = MemoryStore(open_shared())
    writer.store.set_attributes("alice", {})
    for number in range(12):  # pending when both "processes" start, as after a restart
        writer.add_exchange("alice", f"c{number}", f"I live in City{number}", "ok")
    extracted: list[str] = []
    lock = threading.Lock()

    def extract(text: str) -> list[Fact]:
        with lock:
            extracted.append(text)
        return [Fact("user.city", "=", text.split()[-1], 0.9)]

    workers = [ExtractionWorker(MemoryStore(open_shared()), extract) for _ in range(2)]
    try:
        assert all(worker.flush(timeout=30) for worker in workers)
    finally:
        for worker in workers:
            worker.close()
    assert sorted(extracted) == sorted(f"I live in City{number}" for number in range(12))  # each once
    assert writer.store.pending_messages() == []
