"""What only the PostgreSQL store promises, beyond the contract suites it also passes:
deletion down to the last row, stores that share a database, its schema, its limits,
and an import that stays light until a PostgreSQL URL is opened.

The server comes from conftest.py (``postgres_url``: a schema of its own per test).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tailor.registry import MissingExtraError
from tailor.store import UnknownUserError, open_store
from tailor.types import HistoryRecord, Persona, Profile


def record(record_id: str, text: str = "", date: str | None = None) -> HistoryRecord:
    return HistoryRecord(record_id, {"text": text or f"text of {record_id}"}, date)


@pytest.fixture
def store(postgres_url: str) -> Iterator[Any]:
    from tailor.store.postgres import PostgresProfileStore

    with PostgresProfileStore(postgres_url) as opened:
        yield opened


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


# -- deleting a user ------------------------------------------------------------------------


def test_delete_user_leaves_no_row_of_the_user_in_any_table(store: Any, postgres_url: str) -> None:
    gone, kept = "user-to-forget", "user-to-keep"
    for user_id in (gone, kept):
        store.add_profiles([Profile(user_id, (record("r1"), record("r2", date="2024-01-01")), {"age": "30"})])
        store.put_embeddings(user_id, "m", {"r1": np.ones(3, dtype=np.float32), "r2": np.zeros(3)})
        store.put_artifact(user_id, "summary", "k", {"text": "a summary"}, store.profile_version(user_id))
    store.put_personas([Persona("p", "Everyone.", (1.0,), 2)], {gone: "p", kept: "p"})
    assert store.tables_missing_cascade() == []

    assert store.delete_user(gone) is True
    with _connect(postgres_url) as raw:
        tables = [row[0] for row in raw.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name")]
        assert {"users", "attributes", "records", "record_embeddings", "artifacts", "personas",
                "persona_members", "schema_version"} <= set(tables)
        for table in tables:
            # Every column of every row, as text: no table may mention the user any more.
            mentions = raw.execute(f"SELECT COUNT(*) FROM {table} AS t WHERE position(%s IN t::text) > 0",
                                   (gone,)).fetchone()
            assert mentions == (0,), table
        # The other user's rows are all still there.
        for table, expected in [("users", 1), ("attributes", 1), ("records", 2), ("record_embeddings", 2),
                                ("artifacts", 1), ("persona_members", 1)]:
            assert raw.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = %s", (kept,)).fetchone() == (expected,)


# -- two stores on one database ---------------------------------------------------------------


def test_two_stores_on_one_database_see_each_others_writes(postgres_url: str) -> None:
    from tailor.store.postgres import PostgresProfileStore

    with PostgresProfileStore(postgres_url) as first, PostgresProfileStore(postgres_url) as second:
        first.add_records("alice", [record("a"), record("b")])
        first.set_attributes("alice", {"age": "30"})
        assert second.get_profile("alice") == first.get_profile("alice")
        assert second.add_records("alice", [record("b", "changed"), record("c")]) == 1
        assert [r.id for r in first.get_profile("alice").records] == ["a", "b", "c"]
        assert first.profile_version("alice") == second.profile_version("alice") == 2

        second.put_embeddings("alice", "m", {"a": np.array([1.0, 2.0])})
        np.testing.assert_array_equal(first.get_embeddings("alice", "m")[1], [[1.0, 2.0]])
        first.put_artifact("alice", "summary", "k", {"text": "hi"}, 2)
        assert second.export_user("alice") == first.export_user("alice")

        assert second.delete_user("alice") is True
        assert not first.has_user("alice")
        assert first.list_users() == []


def test_concurrent_writers_to_one_user_keep_every_record_once_in_order(postgres_url: str) -> None:
    from tailor.store.postgres import PostgresProfileStore

    stores = [PostgresProfileStore(postgres_url) for _ in range(2)]
    new = [0, 0]

    def write(index: int) -> None:
        for batch in range(10):
            new[index] += stores[index].add_records(
                "alice", [record(f"w{index}-{batch}-{n}") for n in range(5)] + [record("shared")])

    threads = [threading.Thread(target=write, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        ids = [r.id for r in stores[0].get_profile("alice").records]
        assert sum(new) == len(ids) == 101
        assert len(set(ids)) == 101
        for index in range(2):  # each writer's batches appear in the order it wrote them
            own = [i for i in ids if i.startswith(f"w{index}-")]
            assert own == [f"w{index}-{batch}-{n}" for batch in range(10) for n in range(5)]
    finally:
        for opened in stores:
            opened.close()


# -- open_store and the schema --------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_open_store_opens_postgres_urls(postgres_url: str, scheme: str) -> None:
    from tailor.store.postgres import PostgresProfileStore

    url = scheme + postgres_url[len("postgresql"):]
    opened = open_store(url)
    try:
        assert isinstance(opened, PostgresProfileStore)
        opened.add_records("alice", [record("a")])
        assert opened.count_records("alice") == 1
        assert "password" not in repr(opened)
    finally:
        opened.close()


def test_a_url_sets_the_connection_pool(postgres_url: str) -> None:
    opened = open_store(postgres_url + "&pool_size=3&pool_timeout=2.5")
    try:
        pool = opened._pool  # type: ignore[attr-defined]
        assert (pool.max_size, pool.timeout) == (3, 2.5)
        opened.add_records("alice", [record("a")])  # the rest of the URL went to libpq as it was
        assert opened.count_records("alice") == 1
    finally:
        opened.close()
    with pytest.raises(ValueError, match="pool_size must be positive"):
        open_store(postgres_url + "&pool_size=0")


def test_the_schema_is_created_once_and_versioned(store: Any, postgres_url: str) -> None:
    from tailor.store.postgres import SCHEMA_VERSION, PostgresProfileStore

    store.add_records("alice", [record("a")])
    with PostgresProfileStore(postgres_url) as again:  # an existing schema is opened, not recreated
        assert again.count_records("alice") == 1
    with _connect(postgres_url) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)] == [(6,)]
        raw.execute("UPDATE schema_version SET version = version + 1")
    with pytest.raises(Exception, match="newer than this tailor"):
        PostgresProfileStore(postgres_url)


def test_a_search_path_naming_no_schema_is_refused_clearly(postgres_url: str) -> None:
    import psycopg

    from tailor.store.postgres import PostgresProfileStore

    with pytest.raises(psycopg.DatabaseError, match="no current schema"):
        PostgresProfileStore(postgres_url.replace("search_path%3D", "search_path%3Dno_such_schema_"))


def test_replacing_a_records_fields_drops_its_embeddings_even_for_a_raw_update(store: Any, postgres_url: str) -> None:
    store.add_records("alice", [record("a"), record("b")])
    store.put_embeddings("alice", "m", {"a": np.ones(2), "b": np.ones(2)})
    with _connect(postgres_url) as raw:  # the trigger lives in the database, not in the store's code
        raw.execute("UPDATE records SET fields = '{\"text\": \"edited\"}' WHERE record_id = 'a'")
        raw.execute("UPDATE records SET date = '2024-01-01' WHERE record_id = 'b'")
    assert store.get_embeddings("alice", "m")[0] == ["b"]


def test_an_unreachable_server_fails_with_a_clear_error(tmp_path: Any) -> None:
    import psycopg

    from tailor.store.postgres import PostgresProfileStore

    with pytest.raises(psycopg.OperationalError, match="PostgresProfileStore: cannot connect"):
        PostgresProfileStore(f"postgresql://nobody@/nowhere?host={tmp_path}", connect_timeout=2)


# -- what PostgreSQL cannot hold -----------------------------------------------------------------


def test_text_with_a_nul_character_is_refused_naming_the_record_and_field(store: Any) -> None:
    store.add_records("alice", [record("kept")])
    with pytest.raises(ValueError, match=r"record 'b'.*date.*NUL"):
        store.add_records("alice", [record("a"), record("b", date="2024\x00")])
    with pytest.raises(ValueError, match=r"user_id='carol'.*attribute 'city'"):
        store.add_profiles([Profile("bob", (record("b1"),)), Profile("carol", (), {"city": "Ly\x00on"})])
    with pytest.raises(ValueError, match="record id"):
        store.add_records("alice", [record("a\x00")])
    with pytest.raises(ValueError, match="user_id"):
        store.get_profile("al\x00ice")
    assert store.list_users() == ["alice"]
    assert [r.id for r in store.get_profile("alice").records] == ["kept"]
    # Inside JSON, a NUL is escaped and stored like any other character.
    store.add_records("alice", [HistoryRecord("nul", {"text": "a\x00b"})])
    assert store.get_profile("alice").records[-1].fields == {"text": "a\x00b"}
    with pytest.raises(UnknownUserError):
        store.put_personas([Persona("p", "x")], {"nobody": "p"})


# -- light import ---------------------------------------------------------------------------------


def test_importing_tailor_and_its_stores_imports_no_psycopg() -> None:
    code = ("import sys, tailor, tailor.store, tailor.store.sqlite; from tailor.store import open_store; "
            "open_store('memory'); print('psycopg' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("missing", ["psycopg", "psycopg_pool"])
def test_a_postgres_url_without_psycopg_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch,
                                                                   missing: str) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # what `import psycopg` sees when it is not installed
    monkeypatch.delitem(sys.modules, "tailor.store.postgres", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'tailor-llm\[postgres\]'"):
        open_store("postgresql://someone@localhost/tailor")
