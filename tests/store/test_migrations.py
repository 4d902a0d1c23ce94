"""A store file written by an earlier tailor opens, migrates, and keeps everything it held.

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

from tailor.store.sqlite import SCHEMA_VERSION, SQLiteProfileStore

FIXTURE = Path(__file__).parent / "data" / "store_v2.sqlite"
ADMIN_KEY = "tailor-5e89792c6638fe3a.OonM1aibXptv-uOF3Vq8b2eUjxsGVJdiNKLY17hbkEg"


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
    from tailor.store.postgres import SCHEMA_VERSION, PostgresProfileStore
    from tailor.store.postgres_schema import MIGRATIONS, SCHEMA_VERSION_TABLE

    with psycopg.connect(postgres_url, autocommit=True) as raw:  # what tailor before version 3 created
        raw.execute(SCHEMA_VERSION_TABLE)
        for statement in MIGRATIONS[2]:
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
