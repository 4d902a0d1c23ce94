"""Search kept up to date as a user chats: the live BM25 scores as a BM25 built from scratch,
an episode index updated message by message finds what one built anew finds, and a served
user's memory search after many exchanges, supersessions and deletions finds what a fresh
search does."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tailor.embeddings.hashing import HashingEmbedder
from tailor.memory.episodes import DEFAULT_EPISODE_METHOD, Episode, EpisodeMethod, EpisodeSearch
from tailor.memory.facts import Fact
from tailor.memory.search import hybrid_rank
from tailor.memory.store import MemoryStore
from tailor.retrieval.bm25 import BM25Index, tokenize
from tailor.retrieval.live import LiveIndex
from tailor.store.sqlite import SQLiteProfileStore

WORDS = ["dog", "hike", "alps", "cello", "bread", "tomato", "marathon", "lisbon", "jazz", "chess", "summer",
         "winter", "garden", "train", "novel", "coffee", "rain", "bike", "piano", "river"]


def sentence(rng: random.Random, length: int | None = None) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(length if length is not None else rng.randint(1, 12)))


def test_a_live_index_scores_as_a_bm25_built_from_scratch_through_adds_replaces_and_removes() -> None:
    rng = random.Random(7)
    live = LiveIndex()
    held: dict[int, list[str]] = {}
    for step in range(600):
        action = rng.random()
        if action < 0.6 or not held:
            key = step
            held[key] = tokenize([sentence(rng, rng.randint(0, 15))])[0]
            live.put(key, held[key])
        elif action < 0.8:
            key = rng.choice(list(held))
            held[key] = tokenize([sentence(rng)])[0]
            live.put(key, held[key])  # replaced in its place
        else:
            key = rng.choice(list(held))
            del held[key]
            live.remove(key)  # enough removals to renumber the rows on the way
        if step % 25 == 0 and held:
            keys = list(held)
            query = tokenize([sentence(rng, 4)])[0]
            built = BM25Index.build([str(key) for key in keys], [held[key] for key in keys])
            _, scores = live.scores(query)
            assert live.keys() == keys
            assert np.array_equal(built.scores(query).astype(np.float32), scores), step
            assert [int(i) for i, _ in built.top(query, 10)] == [keys.index(key) for key, _ in live.top(query, 10)]


def conversation(rng: random.Random, n: int) -> list[Episode]:
    return [Episode(f"m{i}", "user" if i % 2 == 0 else "assistant", sentence(rng),
                    session=f"2024-01-{1 + i // 7:02d}", date=f"2024-01-{1 + i // 7:02d}") for i in range(n)]


@pytest.mark.parametrize("method", [DEFAULT_EPISODE_METHOD, EpisodeMethod.parse("hybrid+speaker+context=1"),
                                    EpisodeMethod.parse("dense")])
def test_an_episode_index_kept_up_to_date_finds_what_one_built_anew_finds(method: EpisodeMethod) -> None:
    rng = random.Random(3)
    episodes = conversation(rng, 160)
    embedder = HashingEmbedder() if method.needs_embedder else None
    search = EpisodeSearch(method, embedder)
    live = search.index()
    window = 40
    for end in range(1, len(episodes) + 1, 3):  # a few new turns at a time; the oldest fall out of the window
        current = episodes[max(0, end - window):end]
        live.update(current)
        fresh = search.index(current)
        for _ in range(3):
            query = sentence(rng, 3)
            assert live.search(query, 8) == fresh.search(query, 8), (end, query)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteProfileStore]:
    with SQLiteProfileStore(tmp_path / "store.db") as opened:
        opened.set_attributes("alice", {})
        yield opened


def test_a_served_users_searches_after_many_exchanges_are_a_fresh_searchs(store: SQLiteProfileStore,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tailor.memory.store.MAX_SEARCHED", 60)  # the window slides within the test
    rng = random.Random(11)
    served = MemoryStore(store, embedder=HashingEmbedder())
    for exchange in range(90):
        served.add_exchange("alice", f"c{exchange}", sentence(rng), sentence(rng))
        if exchange % 3 == 0:
            served.add_facts("alice", [Fact(None, "", sentence(rng, 4), 0.8)])
        if exchange % 10 == 5:  # a fact that supersedes an earlier one of its key
            served.add_facts("alice", [Fact("user.city", "=", rng.choice(WORDS), 0.9)])
        if exchange % 17 == 16:
            served.delete("alice", served.list_memories("alice")[0].id)
        query = sentence(rng, 3)
        fresh = MemoryStore(store, embedder=HashingEmbedder())
        assert served.search_episodes("alice", query, 4) == fresh.search_episodes("alice", query, 4), exchange
        assert served.search_episodes("alice", query, 4, speaker="user") == fresh.search_episodes(
            "alice", query, 4, speaker="user")
        assert [m.id for m in served.search("alice", query, 5)] == [m.id for m in fresh.search("alice", query, 5)]


def test_memory_search_ranks_as_the_from_scratch_hybrid_rank(store: SQLiteProfileStore) -> None:
    rng = random.Random(5)
    served = MemoryStore(store, embedder=HashingEmbedder())
    for _ in range(40):
        served.add_facts("alice", [Fact(None, "", sentence(rng, 5), 0.8)])
        query = sentence(rng, 3)
        rows = store.searchable_memories("alice", 2000)  # newest first, as searched
        embedder = HashingEmbedder()
        expected = hybrid_rank(tokenize([query])[0], [row[10].split() for row in rows], k=5,
                               query_vector=embedder.embed([query])[0],
                               vectors=np.stack([np.frombuffer(row[12], dtype="<f4") for row in rows]))
        assert [m.id for m in served.search("alice", query, 5)] == [rows[i][0] for i, _ in expected]


def test_a_user_deleted_and_made_again_finds_nothing_of_the_earlier_one(store: SQLiteProfileStore) -> None:
    served = MemoryStore(store, embedder=HashingEmbedder())
    served.add_exchange("alice", "c1", "I keep bees on the roof", "nice")
    served.add_facts("alice", [Fact(None, "", "keeps bees", 0.8)])
    assert served.search_episodes("alice", "bees", 1) and served.search("alice", "bees", 1)
    store.delete_user("alice")  # by another process, say: this one's memory still holds her
    store.set_attributes("alice", {})  # the same id again: a new user
    assert served.search_episodes("alice", "bees", 1) == [] and served.search("alice", "bees", 1) == []


def test_the_memory_state_counts_changes_and_removals_and_differs_for_a_user_made_again(
        store: SQLiteProfileStore) -> None:
    served = MemoryStore(store)
    changes, removals = store.memory_state("alice")
    served.add_facts("alice", [Fact(None, "", "keeps bees", 0.8), Fact("user.city", "=", "Lisbon", 0.9)])
    assert store.memory_state("alice") == (changes + 1, removals)  # one write, nothing removed
    served.add_facts("alice", [Fact(None, "", "keeps bees", 0.8)])  # already held: no change
    assert store.memory_state("alice") == (changes + 1, removals)
    served.add_facts("alice", [Fact("user.city", "=", "Porto", 0.9)])  # supersedes Lisbon
    assert store.memory_state("alice") == (changes + 2, removals + 1)
    served.delete("alice", served.list_memories("alice")[0].id)
    assert store.memory_state("alice") == (changes + 3, removals + 2)
    store.delete_user("alice")
    assert store.memory_state("alice") == (0, 0)
    store.set_attributes("alice", {})
    assert store.memory_state("alice")[1] != removals + 2  # a new user: their own count of removals


def test_a_long_conversation_held_in_memory_adds_almost_nothing_for_the_garbage_collector() -> None:
    """A server holds thousands of messages per user: as plain tuples, strings and arrays,
    which Python's collector skips, its full passes do not grow with the conversations."""
    import gc

    rng = random.Random(3)
    said = [Episode(f"m{i}", "user" if i % 2 == 0 else "assistant", sentence(rng), session=f"2024-01-{1 + i // 100:02d}",
                    date=f"2024-01-{1 + i // 100:02d}") for i in range(1200)]
    gc.collect()
    before = len(gc.get_objects())
    index = EpisodeSearch().index(said[:1000])
    index.append(said[1000:], limit=1000)  # the window slides
    gc.collect()
    gc.collect()
    assert len(index) == 1000 and index.search("jazz piano", 3)
    assert len(gc.get_objects()) - before < 100
