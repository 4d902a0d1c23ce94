"""The default profile store: one SQLite file, safe for several threads and processes.

The schema and its migrations live in :mod:`tailor.store.migrations`, shared with the
PostgreSQL store (the version is kept in ``PRAGMA user_version``; an older file is brought
up to date when it is opened).

Derived data rule
-----------------
Every table that holds data derived from a user (embeddings, summaries, memories, adapter
index rows, ...) must reference ``users(user_id)`` with ``ON DELETE CASCADE``, directly or
through ``records(user_id, record_id)`` (which cascades from users in turn), and should
index its ``user_id`` column so the cascade is cheap. :meth:`SQLiteProfileStore.delete_user`
deletes the ``users`` row and SQLite removes everything else in the same transaction.

Why a schema rule rather than a registry of tables to clear: the rule is stored in the
file, so it holds for every process that opens it, survives restarts without anyone
re-registering anything, cannot be skipped by a code path that forgets to call a hook, and
carries over to PostgreSQL unchanged. Features create their tables through
:meth:`SQLiteProfileStore.transaction`; their tests can assert that
:meth:`SQLiteProfileStore.tables_missing_cascade` is empty. Cascades need
``PRAGMA foreign_keys=ON``, which this store sets on its connection; a raw ``sqlite3``
connection that deletes users without it would leave orphans, so go through the store.
Data outside the database (adapter weight files) is its owner's to delete.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tailor.store.checks import UserBatch, utc_now
from tailor.store.contract import StoreUnavailableError
from tailor.store.migrations import SCHEMA_VERSION, migrations_after, run_sqlite_steps
from tailor.store.server_data import ServingData

__all__ = ["SCHEMA_VERSION", "SQLiteProfileStore", "open_sqlite_url"]

# Long enough to ride out another process's large batch; short enough that a stuck
# writer surfaces as an error instead of a hang.
_BUSY_TIMEOUT_SECONDS = 30.0
# Read connections kept open between reads: as many as reads at once in a busy server.
_IDLE_READERS = 64

# A new user's memory_removals starts at a random number (see ConversationData.memory_state).
_INSERT_USER = ("INSERT INTO users (user_id, created_at, memory_removals) VALUES (?, ?, abs(random() / 2)) "
                "ON CONFLICT (user_id) DO NOTHING")
_UPSERT_ATTRIBUTE = (
    "INSERT INTO attributes (user_id, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value"
)
# A re-added record keeps its position, so re-ingesting data never reorders a profile; and
# an identical re-add writes nothing, so it counts as no change (rowcount) and bumps no version.
_UPSERT_RECORD = (
    "INSERT INTO records (user_id, record_id, position, fields, date) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (user_id, record_id) DO UPDATE SET fields = excluded.fields, date = excluded.date "
    "WHERE records.fields IS NOT excluded.fields OR records.date IS NOT excluded.date"
)


class SQLiteProfileStore(ServingData[sqlite3.Connection]):
    """A :class:`~tailor.store.contract.ProfileStore` kept in one SQLite file (or ``":memory:"``).

    The file runs in WAL mode with ``synchronous=NORMAL``: readers never block the writer,
    and a commit survives a process crash (an OS crash may lose the last commits, never
    corrupt the file). Writes go through one connection, one transaction at a time under a
    lock; reads take a connection of their own from a pool (:meth:`_reading`), so they
    neither wait for a write nor for each other, and run in parallel (SQLite releases the
    GIL while it works). Other processes open their own store on the same path and wait up
    to ``busy_timeout`` seconds (30) for the write lock, after which the write raises
    :class:`~tailor.store.contract.StoreUnavailableError` (the server answers 503).

    This class holds the connection, transactions, migrations and the batch write; the
    rest reads the same in PostgreSQL and is in :mod:`tailor.store.sql` and the modules
    built on it (adapters, conversations and memories, the server's data).
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = _BUSY_TIMEOUT_SECONDS) -> None:
        self._path = os.fspath(path)
        if not isinstance(self._path, str) or not self._path:
            raise ValueError(f"SQLiteProfileStore: path must be a non-empty str or os.PathLike, got {path!r}")
        if self._path != ":memory:":
            parent = Path(self._path).resolve().parent
            if not parent.is_dir():
                raise FileNotFoundError(f"SQLiteProfileStore: directory {str(parent)!r} does not exist")
        self._lock = threading.RLock()
        self._busy_timeout = busy_timeout
        self._local = threading.local()  # this thread's write depth and read connection
        self._readers: list[sqlite3.Connection] = []  # idle read connections
        self._readers_lock = threading.Lock()
        # mode=rw: a file deleted under a running process is an error, not a new empty database.
        self._reader_uri = "" if self._path == ":memory:" else f"{Path(self._path).resolve().as_uri()}?mode=rw"
        # isolation_level=None: the module never opens transactions behind our back;
        # this class issues BEGIN/COMMIT itself, so a batch is exactly one transaction.
        connection = sqlite3.connect(
            self._path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._journal_mode: str = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
            # Deleted rows are overwritten with zeros, not left in free space: with the
            # checkpoint after a user's deletion (delete_user), no file keeps their text.
            connection.execute("PRAGMA secure_delete = ON")
            self._connection: sqlite3.Connection | None = connection
            self._migrate()
        except sqlite3.DatabaseError as error:
            connection.close()
            self._connection = None
            raise type(error)(f"SQLiteProfileStore: cannot open {self._path!r}: {error}") from error

    @property
    def path(self) -> str:
        return self._path

    def delete_user(self, user_id: str) -> bool:
        """Delete the user and everything derived from them (see
        :meth:`~tailor.store.sql.SQLStore.delete_user`), then checkpoint the write-ahead log
        into the file and truncate it: with ``secure_delete`` on, neither the file nor its
        ``-wal`` holds the user's text once this returns (inside a caller's transaction, the
        checkpoint is left to the next deletion outside one)."""
        deleted = super().delete_user(user_id)
        if deleted:
            self.checkpoint()
        return deleted

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the file and truncate it to nothing; whether that
        completed (another process reading an older snapshot can keep it from completing)."""
        with self._lock:
            connection = self._open_connection()
            if connection.in_transaction or self._journal_mode != "wal":
                return False
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return not busy

    @property
    def journal_mode(self) -> str:
        """SQLite's journal mode for this file: ``"wal"``, or ``"memory"`` for ``":memory:"``."""
        return self._journal_mode

    def __repr__(self) -> str:
        return f"SQLiteProfileStore({self._path!r})"

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the store's connection, held under the store's lock.

        Commits when the block ends and rolls back if it raises. For features that keep
        derived data in the same file (see the module's derived data rule). Nested use,
        including store methods called inside the block, joins the outer transaction
        through a savepoint, so an inner failure undoes only the inner part.
        """
        with self._lock, self._writing():
            connection = self._open_connection()
            if connection.in_transaction:
                connection.execute("SAVEPOINT tailor_nested")
                try:
                    yield connection
                except BaseException:
                    connection.execute("ROLLBACK TO tailor_nested")
                    connection.execute("RELEASE tailor_nested")
                    raise
                connection.execute("RELEASE tailor_nested")
                return
            # IMMEDIATE takes the write lock up front: a transaction that starts as a reader
            # and later writes can fail at once (SQLITE_BUSY, no waiting) if another process
            # committed in between.
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                # Another process held the write lock for the whole busy timeout: the caller may
                # retry later (the server answers 503), the file is fine.
                if "locked" in str(error) or "busy" in str(error):
                    raise StoreUnavailableError(f"SQLite: {self._path!r} stayed locked by another writer for "
                                                f"{self._busy_timeout:g} s") from error
                raise
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One read snapshot, so a profile's attributes and records come from the same commit.

        Inside a write transaction of this thread, the transaction's connection (its own
        writes are seen); inside another read, that read's snapshot; else a pooled read
        connection, without the write lock (an in-memory database, which other connections
        cannot see, has the one connection only)."""
        writing: int = getattr(self._local, "writing", 0)
        if self._path == ":memory:" or writing > 0:
            with self._lock:
                connection = self._open_connection()
                if connection.in_transaction:
                    yield connection
                    return
                connection.execute("BEGIN")
                try:
                    yield connection
                finally:
                    connection.execute("ROLLBACK")
            return
        held = getattr(self._local, "reader", None)
        if held is not None:
            yield held
            return
        connection = self._take_reader()
        self._local.reader = connection
        healthy = False
        try:
            connection.execute("BEGIN")
            try:
                yield connection
            finally:
                connection.execute("ROLLBACK")
                healthy = True
        finally:
            self._local.reader = None
            self._give_back(connection, healthy)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Mark this thread as inside a write transaction (its reads use the writer's connection)."""
        self._local.writing = getattr(self._local, "writing", 0) + 1
        try:
            yield
        finally:
            self._local.writing -= 1

    def _take_reader(self) -> sqlite3.Connection:
        """An idle read connection, or a new one."""
        self._open_connection()  # raises once the store is closed
        with self._readers_lock:
            if self._readers:
                return self._readers.pop()
        try:
            connection = sqlite3.connect(self._reader_uri, uri=True, timeout=self._busy_timeout, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.OperationalError as error:
            raise StoreUnavailableError(f"SQLite: cannot open {self._path!r} to read: {error}") from error
        connection.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        connection.execute("PRAGMA query_only = ON")
        return connection

    def _give_back(self, connection: sqlite3.Connection, healthy: bool) -> None:
        """Keep a read connection for the next read (up to :data:`_IDLE_READERS`), else close it."""
        with self._readers_lock:
            if healthy and self._connection is not None and len(self._readers) < _IDLE_READERS:
                self._readers.append(connection)
                return
        connection.close()

    def close(self) -> None:
        """Close the connections; further calls raise RuntimeError. Closing twice is harmless."""
        with self._lock:
            super().close()
            with self._readers_lock:
                readers, self._readers = self._readers, []
            for connection in readers:
                connection.close()

    def _migrate(self) -> None:
        connection = self._open_connection()
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"schema version {version} is newer than this tailor's ({SCHEMA_VERSION}); upgrade tailor"
                )
            for migration in migrations_after(version):
                run_sqlite_steps(connection, migration.sqlite_steps())
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- writes ---------------------------------------------------------------------------

    def _execute_many(self, connection: sqlite3.Connection, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        connection.executemany(statement, rows)

    def _write(self, batches: Sequence[UserBatch]) -> int:
        # Serialize before taking the lock: it is the slowest part and needs no database.
        fields = [[json.dumps(dict(record.fields), ensure_ascii=False) for record in b.records] for b in batches]
        created_at = utc_now()
        with self.transaction() as connection:
            connection.executemany(_INSERT_USER, [(b.user_id, created_at) for b in batches])
            attribute_rows = [(b.user_id, key, value) for b in batches for key, value in b.attributes.items()]
            if attribute_rows:
                connection.executemany(_UPSERT_ATTRIBUTE, attribute_rows)
            new = 0
            for batch, batch_fields in zip(batches, fields):
                if not batch.records:
                    continue
                count, last_position = connection.execute(
                    "SELECT COUNT(*), COALESCE(MAX(position), -1) FROM records WHERE user_id = ?", (batch.user_id,)
                ).fetchone()
                written = connection.executemany(_UPSERT_RECORD, [
                    (batch.user_id, record.id, last_position + 1 + offset, record_fields, record.date)
                    for offset, (record, record_fields) in enumerate(zip(batch.records, batch_fields))
                ]).rowcount
                # rowcount counts inserts and real updates; an identical re-add is neither.
                if written > 0:
                    connection.execute(
                        "UPDATE users SET profile_version = profile_version + 1 WHERE user_id = ?", (batch.user_id,)
                    )
                # An upsert reports inserts and updates alike, so "new" is the growth in count.
                new += connection.execute(
                    "SELECT COUNT(*) FROM records WHERE user_id = ?", (batch.user_id,)
                ).fetchone()[0] - count
            return new

    # -- derived data -----------------------------------------------------------------------

    def tables_missing_cascade(self) -> list[str]:
        """Tables with a ``user_id`` column that break the derived data rule, sorted.

        A table follows the rule when one of its foreign keys references ``users`` or
        ``records`` with ``ON DELETE CASCADE``.
        """
        with self._reading() as connection:
            tables = [
                row[0]
                for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            missing = []
            for table in tables:
                if table == "users":
                    continue
                columns = {row[1] for row in connection.execute("SELECT * FROM pragma_table_info(?)", (table,))}
                if "user_id" not in columns:
                    continue
                cascades = any(
                    row[2] in ("users", "records") and row[6].upper() == "CASCADE"
                    for row in connection.execute("SELECT * FROM pragma_foreign_key_list(?)", (table,))
                )
                if not cascades:
                    missing.append(table)
            return missing


def open_sqlite_url(url: str) -> SQLiteProfileStore:
    """The store of a ``sqlite://`` URL, as SQLAlchemy writes them: ``sqlite:///relative.db``,
    ``sqlite:////absolute.db``, ``sqlite://`` (in memory)."""
    rest = url.partition("://")[2]
    if rest in ("", "/:memory:"):
        return SQLiteProfileStore(":memory:")
    if not rest.startswith("/") or rest == "/":
        raise ValueError(f"open_store: {url!r} names a host or no file; expected sqlite:///relative/path.db, "
                         "sqlite:////absolute/path.db or sqlite:// (in memory)")
    return SQLiteProfileStore(rest[1:])
