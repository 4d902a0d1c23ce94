"""What only the SQLite store promises: persistence, WAL, threads, processes, derived data."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tailor.store import SQLiteProfileStore, UnknownUserError
from tailor.store.sqlite import SCHEMA_VERSION
from tailor.types import HistoryRecord, Profile


def record(record_id: str, text: str = "") -> HistoryRecord:
    return HistoryRecord(record_id, {"text": text or f"text of {record_id}"}, "2024-01-02")


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter: a second process with its own connection."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, check=True)


# -- the file -------------------------------------------------------------------------------


def test_data_persists_across_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "profiles.db"
    with SQLiteProfileStore(path) as store:
        store.add_profiles([Profile("alice", (record("b"), record("a")), {"age": "30"}), Profile("bob")])
    with SQLiteProfileStore(str(path)) as store:
        assert store.list_users() == ["alice", "bob"]
        profile = store.get_profile("alice")
        assert [r.id for r in profile.records] == ["b", "a"]
        assert profile.records[0] == record("b")
        assert dict(profile.attributes) == {"age": "30"}
        # Positions carry on from what the file holds, so order stays insertion order.
        assert store.add_records("alice", [record("c"), record("b", "replaced")]) == 1
    with SQLiteProfileStore(path) as store:
        assert [r.id for r in store.get_profile("alice").records] == ["b", "a", "c"]
        assert store.get_profile("alice").records[0].fields["text"] == "replaced"


def test_wal_mode_and_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "profiles.db"
    with SQLiteProfileStore(path) as store:
        assert store.journal_mode == "wal"
        with store.transaction() as connection:
            assert connection.execute("PRAGMA foreign_keys").fetchone()[0] == 1
            assert connection.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    raw = sqlite3.connect(path)
    try:
        # WAL is a property of the file: any later connection finds it on.
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"users", "attributes", "records"} <= tables
    finally:
        raw.close()


def test_memory_database_works_without_wal() -> None:
    with SQLiteProfileStore(":memory:") as store:
        assert store.journal_mode == "memory"
        store.add_records("alice", [record("a")])
        assert store.count_records("alice") == 1


def test_a_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "profiles.db"
    SQLiteProfileStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(sqlite3.DatabaseError, match="newer than this tailor"):
        SQLiteProfileStore(path)


def test_a_file_that_is_not_a_database_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, just some text that is long enough to fill a header " * 20)
    with pytest.raises(sqlite3.DatabaseError, match="notes.txt"):
        SQLiteProfileStore(path)


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        SQLiteProfileStore(tmp_path / "missing" / "profiles.db")


# -- transactions ---------------------------------------------------------------------------


def test_a_batch_failing_inside_the_database_is_rolled_back(tmp_path: Path) -> None:
    with SQLiteProfileStore(tmp_path / "profiles.db") as store:
        store.add_records("alice", [record("kept")])
        with store.transaction() as connection:
            connection.execute(
                "CREATE TRIGGER poison BEFORE INSERT ON records WHEN NEW.record_id = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned record'); END"
            )
        batch = [
            Profile("alice", (record("new"),), {"age": "1"}),
            Profile("bob", (record("b1"), record("b2"))),
            Profile("carol", (record("poison"),)),
        ]
        with pytest.raises(sqlite3.IntegrityError, match="poisoned"):
            store.add_profiles(batch)
        assert store.list_users() == ["alice"]
        assert [r.id for r in store.get_profile("alice").records] == ["kept"]
        assert dict(store.get_profile("alice").attributes) == {}
        # The store is still usable after the rollback.
        assert store.add_records("bob", [record("b1")]) == 1


def test_store_calls_inside_a_transaction_join_it(tmp_path: Path) -> None:
    with SQLiteProfileStore(tmp_path / "profiles.db") as store:
        with pytest.raises(RuntimeError, match="abandon"), store.transaction():
            store.add_records("alice", [record("a")])
            assert store.count_records("alice") == 1  # visible inside
            raise RuntimeError("abandon")
        assert not store.has_user("alice")


def test_a_failed_inner_write_does_not_undo_the_outer_transaction(tmp_path: Path) -> None:
    with SQLiteProfileStore(tmp_path / "profiles.db") as store:
        with store.transaction():
            store.add_records("alice", [record("a")])
            with pytest.raises(TypeError):
                store.add_records("alice", [record("b"), "bad"])  # type: ignore[list-item]
        assert [r.id for r in store.get_profile("alice").records] == ["a"]


# -- threads and processes ------------------------------------------------------------------


def test_a_read_neither_waits_for_a_write_in_progress_nor_sees_it(tmp_path: Path) -> None:
    with SQLiteProfileStore(tmp_path / "profiles.db") as store:
        store.add_records("alice", [record("a1")])
        writing, release = threading.Event(), threading.Event()

        def write() -> None:
            with store.transaction():
                store.add_records("alice", [record("a2")])
                writing.set()
                release.wait(30)

        writer = threading.Thread(target=write)
        writer.start()
        try:
            assert writing.wait(30)
            with ThreadPoolExecutor(max_workers=1) as pool:  # a reader on another thread
                seen = pool.submit(lambda: [r.id for r in store.get_profile("alice").records]).result(timeout=10)
            assert seen == ["a1"]  # the last commit, read while the writer holds its transaction
        finally:
            release.set()
            writer.join(30)
        assert [r.id for r in store.get_profile("alice").records] == ["a1", "a2"]


def test_reads_of_one_thread_share_a_snapshot_and_close_closes_their_connections(tmp_path: Path) -> None:
    store = SQLiteProfileStore(tmp_path / "profiles.db")
    store.add_records("alice", [record("a1")])
    with store._reading() as outer:
        assert outer.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 1  # the snapshot starts here
        with store._reading() as inner:
            assert inner is outer  # a read inside a read: the same snapshot
        store.add_records("alice", [record("a2")])  # committed meanwhile, through the writer
        assert outer.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 1
    assert store.count_records("alice") == 2
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.has_user("alice")
    with pytest.raises(sqlite3.ProgrammingError):
        outer.execute("SELECT 1")  # the pooled read connection was closed with the store



def test_concurrent_writes_from_threads_lose_nothing(tmp_path: Path) -> None:
    workers, batches, batch_size = 8, 25, 20
    with SQLiteProfileStore(tmp_path / "profiles.db") as store:

        def work(worker: int) -> None:
            for batch in range(batches):
                own = [record(f"w{worker}-b{batch}-r{i}") for i in range(batch_size)]
                store.add_records(f"user-{worker}", own)
                store.add_profiles([Profile("shared", (record(f"w{worker}-b{batch}"),))])
                store.get_profile(f"user-{worker}")

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for finished in [pool.submit(work, worker) for worker in range(workers)]:
                finished.result()  # re-raises anything a thread hit
        for worker in range(workers):
            records = store.get_profile(f"user-{worker}").records
            assert [r.id for r in records] == [
                f"w{worker}-b{batch}-r{i}" for batch in range(batches) for i in range(batch_size)
            ]
        assert store.count_records("shared") == workers * batches


def test_a_second_process_sees_committed_data(tmp_path: Path) -> None:
    path = tmp_path / "profiles.db"
    reader = (
        "import json, sys\n"
        "from tailor.store import SQLiteProfileStore\n"
        "with SQLiteProfileStore(sys.argv[1]) as store:\n"
        "    print(json.dumps(store.export_user('alice')))\n"
    )
    writer = (
        "import sys\n"
        "from tailor.store import SQLiteProfileStore\n"
        "from tailor.types import HistoryRecord\n"
        "with SQLiteProfileStore(sys.argv[1]) as store:\n"
        "    store.add_records('bob', [HistoryRecord('from-child', {'text': 'hi'})])\n"
    )
    with SQLiteProfileStore(path) as store:
        store.add_records("alice", [record("a", "hello")])
        store.set_attributes("alice", {"age": "30"})
        exported = json.loads(run_python(reader, str(path)).stdout)
        assert exported == store.export_user("alice")
        # And the other way: this still-open store sees what the child committed.
        run_python(writer, str(path))
        assert [r.id for r in store.get_profile("bob").records] == ["from-child"]


def test_concurrent_writes_from_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "profiles.db"
    SQLiteProfileStore(path).close()  # create the schema once, before the race
    writer = (
        "import sys\n"
        "from tailor.store import SQLiteProfileStore\n"
        "from tailor.types import HistoryRecord, Profile\n"
        "name = sys.argv[2]\n"
        "with SQLiteProfileStore(sys.argv[1]) as store:\n"
        "    for batch in range(50):\n"
        "        records = tuple(HistoryRecord(f'{name}-{batch}-{i}', {'text': 'x'}) for i in range(10))\n"
        "        store.add_profiles([Profile(name, records), Profile('shared', records)])\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", writer, str(path), f"proc{n}"], stderr=subprocess.PIPE, text=True)
        for n in range(3)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    with SQLiteProfileStore(path) as store:
        assert store.list_users() == ["proc0", "proc1", "proc2", "shared"]
        for n in range(3):
            assert store.count_records(f"proc{n}") == 500
        assert store.count_records("shared") == 1500


# -- the derived data rule ------------------------------------------------------------------


def test_delete_user_clears_tables_that_follow_the_derived_data_rule(tmp_path: Path) -> None:
    with SQLiteProfileStore(tmp_path / "profiles.db") as store:
        with store.transaction() as connection:
            # Per-user derived data references users directly ...
            connection.execute(
                "CREATE TABLE summaries (user_id TEXT NOT NULL PRIMARY KEY "
                "REFERENCES users(user_id) ON DELETE CASCADE, summary TEXT NOT NULL)"
            )
            # ... per-record derived data may reference records, which cascade from users.
            connection.execute(
                "CREATE TABLE embeddings (user_id TEXT NOT NULL, record_id TEXT NOT NULL, vector BLOB, "
                "PRIMARY KEY (user_id, record_id), FOREIGN KEY (user_id, record_id) "
                "REFERENCES records(user_id, record_id) ON DELETE CASCADE)"
            )
        assert store.tables_missing_cascade() == []
        for user_id in ("alice", "bob"):
            store.add_records(user_id, [record("r1"), record("r2")])
            with store.transaction() as connection:
                connection.execute("INSERT INTO summaries VALUES (?, ?)", (user_id, f"{user_id} writes"))
                connection.executemany(
                    "INSERT INTO embeddings VALUES (?, ?, ?)", [(user_id, "r1", b"\x00"), (user_id, "r2", b"\x01")]
                )

        assert store.delete_user("alice") is True
        with store.transaction() as connection:
            assert connection.execute("SELECT user_id FROM summaries").fetchall() == [("bob",)]
            assert connection.execute("SELECT DISTINCT user_id FROM embeddings").fetchall() == [("bob",)]
        with pytest.raises(UnknownUserError):
            store.get_profile("alice")


def test_tables_missing_cascade_names_tables_that_break_the_rule(tmp_path: Path) -> None:
    with SQLiteProfileStore(tmp_path / "profiles.db") as store:
        assert store.tables_missing_cascade() == []
        with store.transaction() as connection:
            connection.execute("CREATE TABLE scribbles (user_id TEXT NOT NULL, fact TEXT)")
            connection.execute(
                "CREATE TABLE notes (user_id TEXT NOT NULL REFERENCES users(user_id), note TEXT)"  # no CASCADE
            )
            connection.execute("CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT)")  # not per-user
        assert store.tables_missing_cascade() == ["notes", "scribbles"]


def test_a_write_lock_held_too_long_by_another_process_is_store_unavailable(tmp_path: Path) -> None:
    from tailor.store import StoreUnavailableError

    with SQLiteProfileStore(tmp_path / "profiles.db", busy_timeout=0.2) as store:
        store.add_records("alice", [HistoryRecord("a", {"text": "x"})])
        other = sqlite3.connect(tmp_path / "profiles.db", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another writer that does not let go
            with pytest.raises(StoreUnavailableError, match="locked by another writer"):
                store.add_records("alice", [HistoryRecord("b", {"text": "y"})])
            assert store.count_records("alice") == 1  # reads go on meanwhile (WAL)
            other.execute("ROLLBACK")
        finally:
            other.close()
        store.add_records("alice", [HistoryRecord("b", {"text": "y"})])
        assert store.count_records("alice") == 2
