"""The schema's migrations: one numbered list for both dialects, and a store written by an
earlier tailor opens, migrates, and keeps everything it held.

``data/store_v2.sqlite`` was written by tailor at commit 0b86782 (schema version 2, with
the server's tables made beside it by each feature's own ``CREATE TABLE IF NOT EXISTS``):
two users (one in the tenant ``acme``), records, attributes, an admin key and a revoked
tenant key, a BM25 index and a vector matrix, conversations, two memories (one superseding
the other) and their history, a summary, a persona, a user adapter and a global one. It is
copied, opened with today's code, and read back through today's interfaces.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tailor.store import migrations
from tailor.store.sqlite import SCHEMA_VERSION, SQLiteProfileStore

FIXTURE = Path(__file__).parent / "data" / "store_v2.sqlite"
ADMIN_KEY = "tailor-5e89792c6638fe3a.OonM1aibXptv-uOF3Vq8b2eUjxsGVJdiNKLY17hbkEg"


# -- one list of migrations -----------------------------------------------------------------


def test_the_migrations_are_one_numbered_sequence_that_both_stores_use() -> None:
    from tailor.store import sqlite

    versions = [migration.version for migration in migrations.MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))
    assert migrations.SCHEMA_VERSION == versions[-1] == sqlite.SCHEMA_VERSION
    assert migrations.migrations_after(0) == migrations.MIGRATIONS
    assert [m.version for m in migrations.migrations_after(2)] == versions[2:]
    assert migrations.migrations_after(versions[-1]) == ()
    for migration in migrations.MIGRATIONS:  # every step is spelled in each dialect, no placeholder left
        for statement in [*migration.postgres_statements(), *migration.sqlite_steps()]:
            assert not isinstance(statement, str) or ("{" not in statement and "}" not in statement), statement
        assert not any(" IF NOT EXISTS " in statement for statement in migration.postgres_statements())


def _sqlite_schema(path: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()


def test_a_sqlite_store_is_exactly_the_migrations_run_in_order(tmp_path: Path) -> None:
    SQLiteProfileStore(tmp_path / "store.sqlite").close()
    with sqlite3.connect(tmp_path / "raw.sqlite") as raw:
        for migration in migrations.MIGRATIONS:
            migrations.run_sqlite_steps(raw, migration.sqlite_steps())
    raw.close()
    assert _sqlite_schema(tmp_path / "store.sqlite") == _sqlite_schema(tmp_path / "raw.sqlite")


def _postgres_schema(url: str) -> str:
    """The schema's tables, constraints, indexes, triggers and functions, with its name left out."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        name = connection.execute("SELECT current_schema()").fetchone()[0]
        return repr({
            "columns": connection.execute(
                "SELECT table_name, ordinal_position, column_name, data_type, collation_name, is_nullable, "
                "column_default, is_identity FROM information_schema.columns WHERE table_schema = current_schema() "
                "ORDER BY table_name, ordinal_position").fetchall(),
            "constraints": connection.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2").fetchall(),
            "indexes": connection.execute("SELECT tablename, indexname, indexdef FROM pg_indexes "
                                          "WHERE schemaname = current_schema() ORDER BY 1, 2").fetchall(),
            "triggers": connection.execute(
                "SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid "
                "WHERE c.relnamespace = current_schema()::regnamespace AND NOT tgisinternal ORDER BY 1").fetchall(),
            "functions": connection.execute("SELECT proname, prosrc FROM pg_proc "
                                            "WHERE pronamespace = current_schema()::regnamespace ORDER BY 1").fetchall(),
        }).replace(name, "SCHEMA")


def test_a_postgres_store_is_exactly_the_migrations_run_in_order(postgres_url: str,
                                                                 postgres_server_url: str) -> None:
    import uuid

    import psycopg
    from tests.postgres_fixtures import url_with_schema

    from tailor.store.postgres import SCHEMA_VERSION_TABLE, PostgresProfileStore

    PostgresProfileStore(postgres_url).close()
    schema = f"tailor_test_raw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        raw_url = url_with_schema(postgres_server_url, schema)
        with psycopg.connect(raw_url, autocommit=True) as raw:
            raw.execute(SCHEMA_VERSION_TABLE)
            for migration in migrations.MIGRATIONS:
                for statement in migration.postgres_statements():
                    raw.execute(statement)
        assert _postgres_schema(postgres_url) == _postgres_schema(raw_url)
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_sqlite_and_postgres_hold_the_same_tables_columns_indexes_and_triggers(tmp_path: Path,
                                                                               postgres_url: str) -> None:
    import psycopg

    from tailor.store.postgres import PostgresProfileStore

    SQLiteProfileStore(tmp_path / "store.sqlite").close()
    with sqlite3.connect(tmp_path / "store.sqlite") as connection:
        sqlite_tables = {table: [row[1] for row in connection.execute("SELECT * FROM pragma_table_info(?)", (table,))]
                         for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        sqlite_indexes = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}  # not the implicit ones
        sqlite_triggers = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    connection.close()
    PostgresProfileStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as raw:
        postgres_tables: dict[str, list[str]] = {}
        for table, column in raw.execute("SELECT table_name, column_name FROM information_schema.columns "
                                         "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"):
            postgres_tables.setdefault(table, []).append(column)
        postgres_indexes = {row[0] for row in raw.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND right(indexname, 5) <> '_pkey'")}
        postgres_triggers = {row[0] for row in raw.execute(
            "SELECT tgname FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid "
            "WHERE c.relnamespace = current_schema()::regnamespace AND NOT tgisinternal")}
    # Each dialect's own, and nothing else: PostgreSQL's schema_version table (SQLite keeps the
    # version in PRAGMA user_version) and seq columns (SQLite orders by rowid); SQLite's
    # sqlite_sequence, where AUTOINCREMENT keeps its counters.
    assert sqlite_tables.pop("sqlite_sequence") == ["name", "seq"]
    assert postgres_tables.pop("schema_version") == ["version"]
    for table in ("conversation_messages", "memories"):
        postgres_tables[table].remove("seq")
    assert postgres_tables == sqlite_tables
    assert len(sqlite_tables) == 19
    assert postgres_indexes == sqlite_indexes and len(sqlite_indexes) == 10
    assert postgres_triggers == sqlite_triggers == {
        "record_fields_changed", "serve_record_terms_stale", "adapter_contributor_deleted"}


# -- files and schemas of earlier versions ------------------------------------------------------


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    copy = tmp_path / "store.sqlite"
    shutil.copyfile(FIXTURE, copy)
    with sqlite3.connect(copy) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 2
    return copy


def test_a_version_2_file_migrates_to_the_current_schema_and_keeps_its_profiles(old_file: Path) -> None:
    with SQLiteProfileStore(old_file) as store:
        assert store.list_users() == ["acme\x1fbob", "alice"]
        alice = store.get_profile("alice")
        assert [record.id for record in alice.records] == ["a1", "a2"]
        assert alice.attributes == {"city": "Porto"}
        assert alice.records[0].date == "2024-01-02"
        assert [artifact.kind for artifact in store.list_artifacts("alice")] == ["summary"]
        assert store.persona_of("alice") == "p0"
        assert store.tables_missing_cascade() == []
    with sqlite3.connect(old_file) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with SQLiteProfileStore(old_file) as store:  # opening a migrated file again changes nothing
        assert store.count_records("alice") == 2


def test_the_server_reads_a_migrated_file(old_file: Path) -> None:
    from tailor.embeddings.hashing import HashingEmbedder
    from tailor.memory.store import MemoryStore
    from tailor.retrieval.record_index import RecordIndex
    from tailor.retrieval.record_vectors import RecordVectors
    from tailor.server.keys import KeyStore

    with SQLiteProfileStore(old_file) as store:
        keys = KeyStore(store)
        principal = keys.verify(ADMIN_KEY)
        assert principal is not None and principal.admin
        assert [(info.tenant, info.revoked_at is not None) for info in keys.list()] == [(None, False), ("acme", True)]
        assert RecordIndex(store).rank("alice", "tomatoes", 2) == ["a1"]
        assert RecordVectors(store, HashingEmbedder()).rank("alice", "blue bicycle", 1) == ["a2"]
        memory = MemoryStore(store, embedder=HashingEmbedder())
        assert [m.value for m in memory.list_memories("alice")] == ["Porto"]
        assert [m.value for m in memory.list_memories("alice", include_superseded=True)] == ["Lisbon", "Porto"]
        history = memory.history("alice")
        assert sorted(event["event"] for events in history.values() for event in events) == [
            "ADD", "ADD", "SUPERSEDED", "SUPERSEDES"]
        exported = memory.export("alice")
        assert [m["content"] for m in exported["conversations"]] == ["I live in Porto", "noted", "I like jazz", "ok"]
        assert [message_id for _, message_id in memory.pending_messages()] != []


def test_adapters_of_a_migrated_file_are_kept_and_go_with_their_user(old_file: Path) -> None:
    pytest.importorskip("numpy")
    from tailor.adapters.store import AdapterKey, AdapterStore

    with SQLiteProfileStore(old_file) as store:
        adapters = AdapterStore(store)
        assert [str(info.key) for info in adapters.list()] == ["user/alice/chat/lora", "global/all/chat/lora"]
        stored = adapters.load(AdapterKey("user", "alice", "chat"))
        assert stored is not None and stored.weights == b"\x01\x02"
        assert adapters.contributors(AdapterKey.global_("chat")) == ["alice"]
        assert store.delete_user("alice")
        assert adapters.list() == []  # the global adapter learned from alice: it went too


def test_a_postgres_schema_of_version_2_migrates_and_keeps_its_profiles(postgres_url: str) -> None:
    import psycopg

    from tailor.server.keys import KeyStore
    from tailor.store.migrations import MIGRATIONS
    from tailor.store.postgres import SCHEMA_VERSION, SCHEMA_VERSION_TABLE, PostgresProfileStore

    with psycopg.connect(postgres_url, autocommit=True) as raw:  # what tailor before version 3 created
        raw.execute(SCHEMA_VERSION_TABLE)
        for migration in MIGRATIONS[:2]:
            for statement in migration.postgres_statements():
                raw.execute(statement)
        raw.execute("INSERT INTO schema_version (version) VALUES (2)")
        raw.execute("INSERT INTO users (user_id, created_at, profile_version) VALUES ('alice', 'then', 1)")
        raw.execute("INSERT INTO records (user_id, record_id, position, fields) VALUES ('alice', 'a1', 0, %s)",
                    ('{"text": "tomatoes"}',))
    with PostgresProfileStore(postgres_url) as store:
        assert [record.fields for record in store.get_profile("alice").records] == [{"text": "tomatoes"}]
        assert store.tables_missing_cascade() == []
        keys = KeyStore(store)
        _, key = keys.create(admin=True)
        assert keys.verify(key) is not None
    with psycopg.connect(postgres_url, autocommit=True) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
