"""Episodic memory in the store: every kept message, dated, searchable per user, exported
with the user and deleted with them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tailor.memory.episodes import Episode, EpisodeMethod, episode_documents
from tailor.memory.store import MemoryStore
from tailor.store.sqlite import SQLiteProfileStore

MARIA = ["I'm Maria, I live in Lisbon and I work as a nurse",
         "I'm vegetarian, so please never suggest meat recipes",
         "My daughter Ana turns 7 next week; she loves dinosaurs",
         "Actually I moved to Porto last month"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteProfileStore]:
    with SQLiteProfileStore(tmp_path / "store.db") as opened:
        for user in ("maria", "bob"):
            opened.set_attributes(user, {})
        yield opened


@pytest.fixture
def memory(store: SQLiteProfileStore) -> MemoryStore:
    memory = MemoryStore(store)
    for index, message in enumerate(MARIA):
        memory.add_exchange("maria", f"c{index}", message, f"Noted ({index}).", extract=False)
    memory.add_exchange("bob", "b0", "I eat steak every day", "Noted.", extract=False)
    return memory


def test_both_sides_are_kept_in_order_with_their_date(memory: MemoryStore) -> None:
    episodes = memory.episodes("maria")
    assert [(e.speaker, e.text) for e in episodes[:2]] == [("user", MARIA[0]), ("assistant", "Noted (0).")]
    assert len(episodes) == 8 and all(e.date and len(e.date) == 10 and e.session == e.date for e in episodes)


def test_search_finds_the_turn_a_request_needs_within_one_user(memory: MemoryStore) -> None:
    found = memory.search_episodes("maria", "a vegetarian dinner without meat", 1, speaker="user")
    assert [e.text for e in found] == [MARIA[1]]
    found = memory.search_episodes("maria", "gift for my daughter who loves dinosaurs", 2, speaker="user")
    assert found[0].text == MARIA[2]
    assert all("steak" not in e.text for e in memory.search_episodes("maria", "steak every day", 8))
    assert [e.text for e in memory.search_episodes("bob", "steak", 5, speaker="user")] == ["I eat steak every day"]
    assert memory.search_episodes("maria", "dinner", 0) == []


def test_episodes_are_exported_and_deleted_with_the_user(store: SQLiteProfileStore, memory: MemoryStore) -> None:
    exported = memory.export("maria")["conversations"]
    assert [m["content"] for m in exported if m["role"] == "user"] == MARIA
    assert all(m["created_at"] for m in exported)
    assert memory.search_episodes("maria", "vegetarian", 1)  # warms the search before the delete

    assert store.delete_user("maria")
    store.set_attributes("maria", {})  # the same id again: a new, empty user
    assert memory.episodes("maria") == []
    assert memory.search_episodes("maria", "vegetarian dinner", 5) == []
    assert memory.export("maria")["conversations"] == []
    assert [e.text for e in memory.search_episodes("bob", "steak", 1)] == ["I eat steak every day"]


def test_the_indexed_text_holds_speaker_date_and_weighted_neighbours() -> None:
    episodes = [Episode("a", "Ana", "I adopted a puppy", session="1", date="2023-05-08"),
                Episode("b", "Rui", "What is its name?", session="1", date="2023-05-08"),
                Episode("c", "Ana", "Happy new year", session="2", date="2024-01-01")]
    first, second, third = episode_documents(episodes, EpisodeMethod.parse("bm25+speaker+date+context"))
    assert first == "Ana: I adopted a puppy Ana: I adopted a puppy Rui: What is its name? (8 May 2023)"
    assert second.count("Rui: What is its name?") == 2 and "Ana: I adopted a puppy" in second
    assert "puppy" not in third  # another session is no neighbour
