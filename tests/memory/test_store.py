"""Memory semantics: no duplicates, supersession with history, hard deletes, per-user scope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tailor.embeddings.hashing import HashingEmbedder
from tailor.memory.facts import Fact
from tailor.memory.store import MemoryStore
from tailor.store.contract import UnknownUserError
from tailor.store.sqlite import SQLiteProfileStore
from tailor.types import HistoryRecord


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteProfileStore]:
    with SQLiteProfileStore(tmp_path / "store.db") as opened:
        for user in ("alice", "bob"):
            opened.set_attributes(user, {})
        yield opened


@pytest.fixture
def memory(store: SQLiteProfileStore) -> MemoryStore:
    return MemoryStore(store, embedder=HashingEmbedder())


def city(value: str, confidence: float = 0.9) -> Fact:
    return Fact("user.city", "=", value, confidence)


def test_the_same_fact_is_kept_once(memory: MemoryStore) -> None:
    assert len(memory.add_facts("alice", [city("Lisbon")])) == 1
    assert memory.add_facts("alice", [city("  lisbon!"), Fact("user.likes", "+=", "jazz", 0.8)])[0].value == "jazz"
    assert memory.add_facts("alice", [Fact("user.likes", "+=", "Jazz", 0.8), Fact(None, "", "Runs daily", 0.7),
                                      Fact(None, "", "runs  daily.", 0.7)])[0].value == "Runs daily"
    assert sorted(m.text for m in memory.list_memories("alice")) == ["Runs daily", "user.city = Lisbon",
                                                                     "user.likes += jazz"]


def test_a_contradicting_fact_supersedes_and_keeps_history(memory: MemoryStore) -> None:
    porto = memory.add_facts("alice", [city("Porto")], source_message_id="msg_1")[0]
    lisbon = memory.add_facts("alice", [city("Lisbon", 0.6)], source_message_id="msg_2")[0]
    assert [m.id for m in memory.list_memories("alice")] == [lisbon.id]
    everything = {m.id: m for m in memory.list_memories("alice", include_superseded=True)}
    assert everything[porto.id].superseded_by == lisbon.id
    assert everything[porto.id].superseded_at is not None
    assert everything[lisbon.id].source_message_id == "msg_2"
    history = memory.history("alice")
    assert [e["event"] for e in history[porto.id]] == ["ADD", "SUPERSEDED"]
    assert history[porto.id][1]["related_memory_id"] == lisbon.id
    assert [e["event"] for e in history[lisbon.id]] == ["ADD", "SUPERSEDES"]
    # Back to an earlier value: a new version, the old one stays history.
    again = memory.add_facts("alice", [city("Porto")])[0]
    assert again.id != porto.id
    assert [m.value for m in memory.list_memories("alice")] == ["Porto"]


def test_many_valued_facts_accumulate(memory: MemoryStore) -> None:
    memory.add_facts("alice", [Fact("user.likes", "+=", "jazz", 0.8), Fact("user.likes", "+=", "opera", 0.8)])
    assert sorted(m.value for m in memory.list_memories("alice")) == ["jazz", "opera"]


def test_deleting_a_memory_takes_its_earlier_versions_and_history(memory: MemoryStore) -> None:
    first = memory.add_facts("alice", [city("Porto")])[0]
    second = memory.add_facts("alice", [city("Braga")])[0]
    third = memory.add_facts("alice", [city("Lisbon")])[0]
    other = memory.add_facts("alice", [Fact("user.job", "=", "nurse", 0.9)])[0]
    # Deleting the middle version takes it and what it superseded, and the newest's link to it.
    assert sorted(memory.delete("alice", second.id)) == sorted([second.id, first.id])
    assert [e["event"] for e in memory.history("alice")[third.id]] == ["ADD"]
    assert {m.id for m in memory.list_memories("alice", include_superseded=True)} == {third.id, other.id}
    assert memory.delete("alice", third.id) == [third.id]
    assert memory.delete("alice", third.id) == []
    assert set(memory.history("alice")) == {other.id}


def test_every_call_is_scoped_to_one_user(memory: MemoryStore) -> None:
    secret = memory.add_facts("alice", [city("Lisbon")])[0]
    assert memory.list_memories("bob") == []
    assert memory.search("bob", "Lisbon city", 5) == []
    assert memory.delete("bob", secret.id) == []
    memory.add_facts("bob", [city("Oslo")])  # bob's city never supersedes alice's
    assert [m.value for m in memory.list_memories("alice")] == ["Lisbon"]
    assert memory.history("bob").keys().isdisjoint(memory.history("alice").keys())


def test_hybrid_search_finds_by_word_and_by_similarity(memory: MemoryStore) -> None:
    memory.add_facts("alice", [city("Lisbon"), Fact("user.diet", "=", "vegetarian", 0.9),
                               Fact("user.likes", "+=", "playing chess", 0.8)])
    assert memory.search("alice", "chess openings", 1)[0].value == "playing chess"
    assert memory.search("alice", "vegetarians recipes", 1)[0].value == "vegetarian"  # trigram similarity
    assert len(memory.search("alice", "anything at all", 3)) == 3
    assert memory.search("alice", "chess", 0) == []


def test_search_without_an_embedder_is_bm25_alone(store: SQLiteProfileStore) -> None:
    memory = MemoryStore(store)
    memory.add_facts("alice", [city("Lisbon"), Fact("user.likes", "+=", "chess", 0.8)])
    assert [m.value for m in memory.search("alice", "chess club", 5)] == ["chess"]


def test_memories_written_under_another_embedder_are_embedded_on_search(store: SQLiteProfileStore) -> None:
    MemoryStore(store).add_facts("alice", [Fact("user.likes", "+=", "chess", 0.8)])
    assert MemoryStore(store, embedder=HashingEmbedder()).search("alice", "board games", 1)[0].value == "chess"


def test_unknown_users_are_refused(memory: MemoryStore) -> None:
    with pytest.raises(UnknownUserError):
        memory.add_facts("ghost", [city("Lisbon")])
    with pytest.raises(UnknownUserError):
        memory.add_exchange("ghost", "chatcmpl-1", "hi", "hello")


def test_deleting_the_user_deletes_memories_conversations_and_history(store: SQLiteProfileStore,
                                                                      memory: MemoryStore) -> None:
    store.add_records("alice", [HistoryRecord("r", {"text": "x"})])
    message = memory.add_exchange("alice", "chatcmpl-1", "I live in Lisbon", "nice")
    memory.add_facts("alice", [city("Porto")])
    memory.add_facts("alice", [city("Lisbon")], source_message_id=message)
    assert store.delete_user("alice")
    with store.transaction() as connection:
        for table in ("conversation_messages", "memories", "memory_history"):
            assert connection.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = 'alice'").fetchone()[0] == 0
    assert store.tables_missing_cascade() == []


def test_conversations_are_exported_and_extraction_is_tracked(memory: MemoryStore) -> None:
    message = memory.add_exchange("alice", "chatcmpl-1", "I live in Lisbon", "nice")
    assert memory.pending_messages() == [("alice", message)]
    memory.add_facts("alice", [city("Lisbon")], source_message_id=message)
    assert memory.pending_messages() == []
    exported = memory.export("alice")
    assert [m["content"] for m in exported["conversations"]] == ["I live in Lisbon", "nice"]
    assert exported["memories"][0]["history"][0]["source_message_id"] == message
