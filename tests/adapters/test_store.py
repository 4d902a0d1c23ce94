"""The adapter store: round trips, listing, the size limit, and deletion with the user, on
a SQLite file and on PostgreSQL (the same tables, declared with each store's schema)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tailor.adapters.store import AdapterKey, AdapterStore
from tailor.store import SQLiteProfileStore, SQLProfileStore
from tailor.store.migrations import MIGRATIONS
from tailor.types import HistoryRecord, Persona, Profile

BASE = {"path": "/models/m", "fingerprint": "abc123"}
CONFIG = {"lora": {"rank": 4, "alpha": 8.0, "target_modules": ["q_proj"], "layers": None}}


@pytest.fixture(params=["sqlite", "postgres"])
def adapter_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AdapterStore]:
    """An adapter store on a store holding alice, bob and carol (this module's own: the
    folder's fixture stays on SQLite for the training tests)."""
    if request.param == "sqlite":
        profiles: SQLProfileStore = SQLiteProfileStore(tmp_path / "profiles.sqlite")
    else:
        from tailor.store.postgres import PostgresProfileStore

        profiles = PostgresProfileStore(request.getfixturevalue("postgres_url"))
    profiles.add_profiles([Profile(user_id, (HistoryRecord("r1", {"title": "t", "text": f"{user_id} writes"}),))
                           for user_id in ("alice", "bob", "carol")])
    yield AdapterStore(profiles)
    profiles.close()


def test_save_load_round_trip_keeps_weights_config_and_identity(adapter_store: AdapterStore) -> None:
    key = AdapterKey("user", "alice", "LaMP-4")
    weights = bytes(range(256)) * 10
    saved = adapter_store.save(key, weights, config=CONFIG, base_model=BASE, metadata={"items": 4})
    loaded = adapter_store.load(key)
    assert loaded is not None and loaded.weights == weights
    assert dict(loaded.config) == CONFIG and dict(loaded.base_model) == BASE
    assert loaded.metadata["items"] == 4 and loaded.size == len(weights) == saved.size
    assert loaded.digest == saved.digest
    assert adapter_store.load(AdapterKey("user", "bob", "LaMP-4")) is None


def test_replacing_an_adapter_changes_its_digest(adapter_store: AdapterStore) -> None:
    key = AdapterKey("user", "alice", "LaMP-4")
    first = adapter_store.save(key, b"one", config=CONFIG, base_model=BASE)
    second = adapter_store.save(key, b"two", config=CONFIG, base_model=BASE)
    assert first.digest != second.digest
    assert [a.key for a in adapter_store.list()] == [key]


def test_list_filters_and_orders_by_scope(adapter_store: AdapterStore) -> None:
    adapter_store.save(AdapterKey.global_("LaMP-4"), b"g", config=CONFIG, base_model=BASE, contributors=["alice"])
    adapter_store.save(AdapterKey("user", "bob", "LaMP-4"), b"b", config=CONFIG, base_model=BASE)
    adapter_store.save(AdapterKey("persona", "p1", "LaMP-4"), b"p", config=CONFIG, base_model=BASE,
                       contributors=["alice", "bob"])
    adapter_store.save(AdapterKey("user", "bob", "LaMP-5"), b"b5", config=CONFIG, base_model=BASE)
    assert [a.key.scope for a in adapter_store.list()] == ["user", "user", "persona", "global"]
    assert [str(a.key) for a in adapter_store.list(task="LaMP-5")] == ["user/bob/LaMP-5/lora"]
    assert [a.key.owner for a in adapter_store.list(scope="persona")] == ["p1"]
    assert adapter_store.contributors(AdapterKey("persona", "p1", "LaMP-4")) == ["alice", "bob"]


def test_deleting_the_user_deletes_their_adapter_by_cascade(adapter_store: AdapterStore) -> None:
    alice = AdapterKey("user", "alice", "LaMP-4")
    bob = AdapterKey("user", "bob", "LaMP-4")
    for key in (alice, bob):
        adapter_store.save(key, b"w" * 100, config=CONFIG, base_model=BASE)
    assert adapter_store.profiles.delete_user("alice")
    assert adapter_store.load(alice) is None
    assert adapter_store.load(bob) is not None
    assert adapter_store.profiles.tables_missing_cascade() == []


def test_deleting_a_contributor_deletes_pooled_adapters(adapter_store: AdapterStore) -> None:
    persona = AdapterKey("persona", "p1", "LaMP-4")
    other = AdapterKey("persona", "p2", "LaMP-4")
    adapter_store.save(persona, b"p", config=CONFIG, base_model=BASE, contributors=["alice", "bob"])
    adapter_store.save(other, b"q", config=CONFIG, base_model=BASE, contributors=["carol"])
    adapter_store.save(AdapterKey.global_("LaMP-4"), b"g", config=CONFIG, base_model=BASE,
                       contributors=["alice", "bob", "carol"])
    adapter_store.profiles.delete_user("bob")
    assert adapter_store.load(persona) is None
    assert adapter_store.load(AdapterKey.global_("LaMP-4")) is None
    assert adapter_store.load(other) is not None


def test_a_user_adapter_needs_the_user_and_a_size_within_the_limit(adapter_store: AdapterStore) -> None:
    with pytest.raises(ValueError, match="not in the profile store"):
        adapter_store.save(AdapterKey("user", "nobody", "LaMP-4"), b"w", config=CONFIG, base_model=BASE)
    small = AdapterStore(adapter_store.profiles, max_bytes=10)
    with pytest.raises(ValueError, match="over the store's limit"):
        small.save(AdapterKey("user", "alice", "LaMP-4"), b"w" * 11, config=CONFIG, base_model=BASE)


def test_keys_are_validated() -> None:
    with pytest.raises(ValueError, match="scope"):
        AdapterKey("team", "x", "LaMP-4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="global adapter's owner"):
        AdapterKey("global", "x", "LaMP-4")


def test_the_server_hook_exports_and_deletes_a_users_adapters(adapter_store: AdapterStore) -> None:
    from tailor.adapters.serving import AdapterHook

    adapter_store.save(AdapterKey("user", "alice", "LaMP-4"), b"w", config=CONFIG, base_model=BASE)
    hook = adapter_store.hook()
    assert isinstance(hook, AdapterHook)
    exported = hook.metadata("alice")
    assert exported is not None and exported["adapters"][0]["owner"] == "alice"
    assert hook.metadata("bob") is None
    assert hook.delete("alice") == 1 and hook.metadata("alice") is None
    assert adapter_store.profiles.has_user("alice")  # the adapter went, the user stays


def test_store_personas_resolve_through_the_store(adapter_store: AdapterStore) -> None:
    adapter_store.profiles.put_personas([Persona("p1", "writers")], {"alice": "p1"})
    assert adapter_store.persona_of("alice") == "p1" and adapter_store.persona_of("bob") is None


def test_the_prompt_an_adapter_was_trained_on_is_part_of_its_key(adapter_store: AdapterStore) -> None:
    plain = AdapterKey("user", "alice", "LaMP-4")
    retrieval = AdapterKey("user", "alice", "LaMP-4", prompt="bm25:lamp:k=1")
    adapter_store.save(plain, b"plain", config=CONFIG, base_model=BASE)
    adapter_store.save(retrieval, b"rag", config=CONFIG, base_model=BASE)
    adapter_store.save(AdapterKey.global_("LaMP-4", prompt="bm25:lamp:k=1"), b"g", config=CONFIG, base_model=BASE,
                       contributors=["alice"])
    loaded = adapter_store.load(retrieval)
    assert loaded is not None and loaded.weights == b"rag" and adapter_store.load(plain).weights == b"plain"  # type: ignore[union-attr]
    assert str(retrieval) == "user/alice/LaMP-4/lora/bm25:lamp:k=1" and str(plain) == "user/alice/LaMP-4/lora"
    assert [str(a.key) for a in adapter_store.list(prompt="bm25:lamp:k=1")] == [
        "user/alice/LaMP-4/lora/bm25:lamp:k=1", "global/all/LaMP-4/lora/bm25:lamp:k=1"]
    assert adapter_store.delete_user_adapters("alice") == 3
    assert adapter_store.list() == []


def test_a_store_made_before_prompts_keeps_its_adapters_under_none(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    columns = "task TEXT NOT NULL, kind TEXT NOT NULL, config TEXT NOT NULL, base_model TEXT NOT NULL, " \
              "metadata TEXT NOT NULL, digest TEXT NOT NULL, weights BLOB NOT NULL, created_at TEXT NOT NULL"
    with sqlite3.connect(path) as connection:  # a version 2 file with the tables as the first adapter store wrote them
        for migration in MIGRATIONS[:2]:
            for statement in migration.sqlite_steps():
                connection.execute(statement)  # type: ignore[arg-type]
        connection.execute("PRAGMA user_version = 2")
        connection.execute("INSERT INTO users (user_id, created_at) VALUES ('alice', '2026-01-01')")
        connection.execute(f"CREATE TABLE adapters (user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE "
                           f"CASCADE, {columns}, PRIMARY KEY (user_id, task, kind))")
        connection.execute(f"CREATE TABLE shared_adapters (scope TEXT NOT NULL, owner TEXT NOT NULL, {columns}, "
                           "PRIMARY KEY (scope, owner, task, kind))")
        connection.execute("CREATE TABLE adapter_contributors (scope TEXT NOT NULL, owner TEXT NOT NULL, task TEXT "
                           "NOT NULL, kind TEXT NOT NULL, user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE "
                           "CASCADE, PRIMARY KEY (scope, owner, task, kind, user_id), FOREIGN KEY (scope, owner, "
                           "task, kind) REFERENCES shared_adapters(scope, owner, task, kind) ON DELETE CASCADE)")
        row = ("LaMP-4", "lora", json.dumps(CONFIG), json.dumps(BASE), "{}", "d", b"w", "2026-01-01")
        connection.execute("INSERT INTO adapters VALUES ('alice', ?, ?, ?, ?, ?, ?, ?, ?)", row)
        connection.execute("INSERT INTO shared_adapters VALUES ('global', 'all', ?, ?, ?, ?, ?, ?, ?, ?)", row)
        connection.execute("INSERT INTO adapter_contributors VALUES ('global', 'all', 'LaMP-4', 'lora', 'alice')")
    connection.close()
    profiles = SQLiteProfileStore(path)  # the migration to version 3 rebuilds the adapter tables
    store = AdapterStore(profiles)
    assert [str(a.key) for a in store.list()] == ["user/alice/LaMP-4/lora", "global/all/LaMP-4/lora"]
    assert store.contributors(AdapterKey.global_("LaMP-4")) == ["alice"]
    assert profiles.tables_missing_cascade() == []
    profiles.delete_user("alice")  # the contributor trigger still deletes the pooled adapter
    assert store.list() == []
