"""The profile store at scale: PostgreSQL through psycopg 3 (``pip install 'tailor-llm[postgres]'``).

It keeps the contract of :class:`~tailor.store.sqlite.SQLiteProfileStore` (the same
contract suites run over both), with the same tables (:mod:`tailor.store.migrations`),
created in the connection's current schema when the store is opened. The derived data
rule of :mod:`tailor.store.sqlite` holds here unchanged: every per-user table
references ``users`` (or ``records``) with ``ON DELETE CASCADE``, so
:meth:`PostgresProfileStore.delete_user` deletes one row and PostgreSQL removes the rest in
the same transaction, for every process and tool that deletes users, not only this one.

Concurrency: every write is one transaction, and locks the rows of the users it writes
(in one order, so writers never deadlock): several processes may write the same database,
and writers to one user take turns. Reads of more than one statement (a profile, an
export) run in one ``REPEATABLE READ`` snapshot. Within a process, the store's threads
share a connection pool (``psycopg_pool``): each transaction takes a connection of its
own, and a transaction opened inside another on the same thread joins it.

Faults: the pool checks a connection idle for over a second before lending it, and
replaces one that was lost (a database restart, a network fault) as it finds it or as it
comes back broken, so the store needs no reopening; a call that meets
the database unreachable, or waits longer than ``pool_timeout`` for a free connection,
raises :class:`~tailor.store.contract.StoreUnavailableError` (the server answers 503).
Once a call has found the database unreachable, the next ones wait at most
``outage_timeout`` for a connection (not ``pool_timeout``), so that during an outage
callers are told at once rather than queued, until a connection works again.

One limit PostgreSQL sets that SQLite does not: text cannot hold the NUL character, so
ids, names, dates and attributes with one are refused with a ValueError (record fields
and JSON values are stored as JSON, which escapes it, and are unaffected).
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tailor.registry import require

require("psycopg", "postgres")  # fails with the "pip install 'tailor-llm[postgres]'" hint
require("psycopg_pool", "postgres")

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from tailor.store.checks import UserBatch, utc_now
from tailor.store.contract import StoreUnavailableError, UnknownUserError
from tailor.store.migrations import SCHEMA_VERSION, migrations_after
from tailor.store.server_data import ServingData

__all__ = ["SCHEMA_VERSION", "SCHEMA_VERSION_TABLE", "PostgresProfileStore", "open_postgres_url"]

Connection = psycopg.Connection[tuple[Any, ...]]

# A connection returned to the pool this recently is lent again without a check.
_FRESH_SECONDS = 1.0

# Where the schema's version is kept (SQLite keeps it in PRAGMA user_version).
SCHEMA_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"

# Serializes schema creation between processes that open an empty database at once; the
# second number is the schema's name hashed, so stores in separate schemas do not wait on
# each other.
_ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(7461696, hashtext(current_schema()))"

# Tables with a user_id column that follow no cascade from users or records, in the
# current schema: the derived data rule's check (see tailor.store.sqlite).
_TABLES_MISSING_CASCADE = """
    SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname <> 'users'
      AND EXISTS (SELECT 1 FROM pg_attribute AS a
                  WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped)
      AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k
                      WHERE k.conrelid = c.oid AND k.contype = 'f' AND k.confdeltype = 'c'
                        AND k.confrelid IN ('users'::regclass, 'records'::regclass))
    ORDER BY c.relname COLLATE "C"
"""

# A new user's memory_removals starts at a random number (see ConversationData.memory_state).
_INSERT_USERS = (
    "INSERT INTO users (user_id, created_at, memory_removals) "
    "SELECT user_id, %s, floor(random() * 4611686018427387904)::bigint FROM unnest(%s::text[]) AS batch (user_id) "
    "ON CONFLICT (user_id) DO NOTHING"
)
# Every write locks its users' rows first, in one order, so concurrent writers to one user
# take turns (positions stay unique, counts stay right) and writers to several never deadlock.
# NO KEY UPDATE: it leaves other transactions free to insert rows that reference the user.
_LOCK_USERS = "SELECT user_id FROM users WHERE user_id = ANY(%s::text[]) ORDER BY user_id FOR NO KEY UPDATE"
_UPSERT_ATTRIBUTES = (
    "INSERT INTO attributes (user_id, key, value) SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) "
    "ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value"
)
# As in SQLite: a re-added record keeps its position, and an identical re-add writes
# nothing, so it is not returned and bumps no version.
_UPSERT_RECORDS = (
    "INSERT INTO records (user_id, record_id, position, fields, date) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[]) "
    "ON CONFLICT (user_id, record_id) DO UPDATE SET fields = excluded.fields, date = excluded.date "
    "WHERE records.fields IS DISTINCT FROM excluded.fields OR records.date IS DISTINCT FROM excluded.date "
    "RETURNING user_id"
)


def check_text(value: str, what: str, where: str) -> str:
    """``value`` unless it holds a NUL character, which PostgreSQL's text cannot store."""
    if "\x00" in value:
        raise ValueError(f"{where}: {what} {value!r} contains a NUL character (\\x00), which PostgreSQL cannot store")
    return value


def columns_of(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows turned into ``width`` column lists: one array parameter each for ``unnest``, so a
    whole batch is one statement."""
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]


class PostgresProfileStore(ServingData[Connection]):
    """A :class:`~tailor.store.contract.ProfileStore` in a PostgreSQL database.

    ``conninfo`` is a libpq URL (``postgresql://user:password@host:5432/dbname``, a unix
    socket as ``postgresql://user@/dbname?host=/run/postgresql``) or a ``key=value``
    string. The tables go in the connection's current schema (the first of its
    ``search_path``: add ``?options=-csearch_path%3Dtailor`` to pick one); give tailor a
    database or schema of its own.

    The process's threads share a pool of up to ``pool_size`` connections (autocommit;
    each store method is one transaction on one of them); a thread waits up to
    ``pool_timeout`` seconds for a free one. Lost connections are replaced as they are
    found (see the module's docstring); :meth:`close` closes the pool.

    This class holds the pool, transactions, migrations, the batch write and PostgreSQL's
    dialect of the shared methods; the rest reads the same in SQLite and is in
    :mod:`tailor.store.sql` and the modules built on it (adapters, conversations and
    memories, the server's data).
    """

    def __init__(self, conninfo: str, *, connect_timeout: int = 10, pool_size: int = 10,
                 pool_timeout: float = 10.0, outage_timeout: float = 0.5) -> None:
        if not isinstance(conninfo, str) or not conninfo.strip():
            raise ValueError(f"PostgresProfileStore: conninfo must be a non-empty string, got {conninfo!r}")
        if pool_size < 1:
            raise ValueError(f"PostgresProfileStore: pool_size must be at least 1, got {pool_size}")
        self._lock = threading.RLock()
        self._connection: Connection | None = None  # the pool lends connections; see transaction()
        self._local = threading.local()  # the connection of this thread's open transaction, if any
        self._pool: ConnectionPool[Connection] | None = None
        self._returned_at: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()
        self._outage_timeout = outage_timeout
        self._unreachable = False  # the last borrow met the database down: fail fast until one works
        try:
            # One connection of its own first: a wrong URL fails here, with a clear error, and
            # the schema is created or migrated before the pool lends anything.
            connection = psycopg.connect(conninfo, autocommit=True, connect_timeout=connect_timeout)
        except psycopg.Error as error:
            # The message names host, port and database, never the password.
            raise psycopg.OperationalError(f"PostgresProfileStore: cannot connect: {error}") from error
        self._description = connection.info.dsn  # the parameters, without the password
        try:
            self._migrate(connection)
        finally:
            connection.close()
        self._pool = ConnectionPool(
            conninfo, min_size=1, max_size=pool_size, timeout=pool_timeout, open=True,
            kwargs={"autocommit": True, "connect_timeout": connect_timeout},
            check=self._check_idle, reset=self._returned, name="tailor-store")

    def __repr__(self) -> str:
        return f"PostgresProfileStore({getattr(self, '_description', '')!r})"

    # -- dialect ---------------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        # The shared statements hold no "?" but their markers, and no "%" psycopg would read.
        return statement.replace("?", "%s")

    _row_order = "seq"

    def _check_text(self, value: str, what: str, where: str) -> str:
        return check_text(value, what, where)

    def _execute_many(self, connection: Connection, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with connection.cursor() as cursor:
                cursor.executemany(statement, rows)

    def _hold_user(self, connection: Connection, user_id: str) -> None:
        # KEY SHARE: a concurrent delete_user waits for this transaction, other writers do not.
        if connection.execute("SELECT 1 FROM users WHERE user_id = %s FOR KEY SHARE", (user_id,)).fetchone() is None:
            raise UnknownUserError(user_id)

    def _lock_user(self, connection: Connection, user_id: str) -> None:
        if connection.execute("SELECT 1 FROM users WHERE user_id = %s FOR NO KEY UPDATE",
                              (user_id,)).fetchone() is None:
            raise UnknownUserError(user_id)

    def _lock_personas(self, connection: Connection) -> None:
        # Self-conflicting but open to readers: two replacements take turns, reads go on.
        connection.execute("LOCK TABLE personas IN SHARE ROW EXCLUSIVE MODE")

    def _existing(self, connection: Connection, select: str, values: Sequence[Any], ids: Sequence[str]) -> set[str]:
        # One array parameter; an id with a NUL, which no text column holds, is found nowhere.
        return {row[0] for row in connection.execute(self._sql(f"{select} = ANY(?::text[])"),
                                                     (*values, [i for i in ids if "\x00" not in i]))}

    def _insert_rows(self, connection: Connection, table: str, columns: Sequence[tuple[str, str]],
                     rows: Sequence[Sequence[Any]], on_conflict: str = "") -> None:
        # One statement for the whole batch: each column is one array parameter of unnest.
        names = ", ".join(name for name, _ in columns)
        arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
        connection.execute(f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {on_conflict}".rstrip(),
                           columns_of(rows, len(columns)))

    # -- transactions -------------------------------------------------------------------

    def _returned(self, connection: Connection) -> None:
        self._returned_at[connection] = time.monotonic()

    def _check_idle(self, connection: Connection) -> None:
        """The pool's check before lending a connection: a round trip to the server, skipped
        for a connection that came back within the last second (a busy server lends each
        one many times a second; a connection lost meanwhile fails its first statement, and
        the pool replaces it when it is returned)."""
        if time.monotonic() - self._returned_at.get(connection, float("-inf")) > _FRESH_SECONDS:
            ConnectionPool.check_connection(connection)

    def close(self) -> None:
        """Close the pool; further calls raise RuntimeError. Closing twice is harmless."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    @contextmanager
    def _borrowed(self) -> Iterator[Connection]:
        """A connection of the pool for this thread's transaction; database faults become
        :class:`StoreUnavailableError`, raised wherever they meet the block."""
        pool = self._pool
        if pool is None:
            raise RuntimeError(f"{self!r} is closed")
        try:
            with pool.connection(timeout=self._outage_timeout if self._unreachable else None) as connection:
                self._unreachable = False
                self._local.connection = connection
                try:
                    yield connection
                finally:
                    self._local.connection = None
        except PoolTimeout as error:
            self._unreachable = True
            raise StoreUnavailableError(f"PostgreSQL: no connection free or reachable ({error})") from error
        except psycopg.OperationalError as error:
            self._unreachable = True
            raise StoreUnavailableError(f"PostgreSQL is unreachable: {error}") from error

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction on a connection of the pool, held by this thread.

        Commits when the block ends and rolls back if it raises. For features that keep
        derived data in the same database (see the derived data rule). Nested use on the
        same thread, including store methods called inside the block, joins the outer
        transaction through a savepoint, so an inner failure undoes only the inner part.
        """
        current: Connection | None = getattr(self._local, "connection", None)
        if current is not None:
            with current.transaction():
                yield current
            return
        with self._borrowed() as connection, connection.transaction():
            yield connection

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """One read snapshot, so a profile's attributes and records come from the same commit."""
        current: Connection | None = getattr(self._local, "connection", None)
        if current is not None:
            yield current  # inside a transaction already: read what it sees
            return
        with self._borrowed() as connection:
            # Set on the connection, so that BEGIN itself says it: one round trip fewer than a
            # SET TRANSACTION; reset before the connection goes back to the pool.
            connection.isolation_level, connection.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
            try:
                with connection.transaction():
                    yield connection
            finally:
                connection.isolation_level, connection.read_only = None, None

    def _migrate(self, connection: Connection) -> None:
        if self._schema_version(connection) == SCHEMA_VERSION:
            return
        with connection.transaction():
            # Under the lock, re-read: another process may have created the schema meanwhile.
            connection.execute(_ADVISORY_LOCK)
            connection.execute(SCHEMA_VERSION_TABLE)
            version = self._schema_version(connection)
            if version > SCHEMA_VERSION:
                raise psycopg.DatabaseError(f"PostgresProfileStore: schema version {version} is newer than "
                                            f"this tailor's ({SCHEMA_VERSION}); upgrade tailor")
            for migration in migrations_after(version):  # an empty schema (0) runs them all
                for statement in migration.postgres_statements():
                    connection.execute(statement)
            connection.execute("DELETE FROM schema_version")
            connection.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))

    @staticmethod
    def _schema_version(connection: Connection) -> int:
        """The version in the current schema's ``schema_version`` table; 0 when there is none."""
        found = connection.execute(
            "SELECT current_schema(), to_regclass(quote_ident(current_schema()) || '.schema_version') IS NOT NULL"
        ).fetchone()
        if found is None or found[0] is None:
            raise psycopg.DatabaseError("PostgresProfileStore: the connection has no current schema to keep its "
                                        "tables in (its search_path names no schema that exists)")
        if not found[1]:
            return 0
        row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    # -- writes ---------------------------------------------------------------------------

    def _check_batch_text(self, batch: UserBatch, where: str) -> None:
        """Refuse, naming the record and field, text that PostgreSQL cannot hold (a NUL)."""
        check_text(batch.user_id, "user_id", where)
        for record in batch.records:
            check_text(record.id, "record id", where)
            if record.date is not None:
                check_text(record.date, f"record {record.id!r}: date", where)
        for key, value in batch.attributes.items():
            check_text(key, "attribute name", where)
            check_text(value, f"attribute {key!r}", where)

    def _write(self, batches: Sequence[UserBatch]) -> int:
        # A record id repeated within one user's batch: later fields win, the first position
        # stays (a dict keeps first-insertion order when a key is reassigned). One statement
        # cannot upsert a row twice, so the batch is folded here rather than by the database.
        records = {b.user_id: list({r.id: r for r in b.records}.values()) for b in batches if b.records}
        fields = {user_id: [json.dumps(dict(r.fields), ensure_ascii=False) for r in rows]
                  for user_id, rows in records.items()}
        user_ids = sorted(b.user_id for b in batches)
        with self.transaction() as connection:
            connection.execute(_INSERT_USERS, (utc_now(), user_ids))
            connection.execute(_LOCK_USERS, (user_ids,))
            attributes = [(b.user_id, key, value) for b in batches for key, value in b.attributes.items()]
            if attributes:
                connection.execute(_UPSERT_ATTRIBUTES, columns_of(attributes, 3))
            if not records:
                return 0
            before = {row[0]: (int(row[1]), int(row[2])) for row in connection.execute(
                "SELECT user_id, COUNT(*), MAX(position) FROM records WHERE user_id = ANY(%s::text[]) GROUP BY user_id",
                (list(records),))}
            rows = [(user_id, record.id, before.get(user_id, (0, -1))[1] + 1 + offset, text, record.date)
                    for user_id, user_records in records.items()
                    for offset, (record, text) in enumerate(zip(user_records, fields[user_id]))]
            # RETURNING yields the inserted and really updated rows; an identical re-add is neither.
            changed = sorted({row[0] for row in connection.execute(_UPSERT_RECORDS, columns_of(rows, 5)).fetchall()})
            if changed:
                connection.execute("UPDATE users SET profile_version = profile_version + 1 "
                                   "WHERE user_id = ANY(%s::text[])", (changed,))
            after = connection.execute("SELECT COUNT(*) FROM records WHERE user_id = ANY(%s::text[])",
                                       (list(records),)).fetchone()
            return (int(after[0]) if after else 0) - sum(count for count, _ in before.values())

    # -- derived data -----------------------------------------------------------------------

    def tables_missing_cascade(self) -> list[str]:
        """Tables of the store's schema with a ``user_id`` column that break the derived data
        rule (no foreign key to ``users`` or ``records`` with ``ON DELETE CASCADE``), sorted."""
        with self._reading() as connection:
            return [row[0] for row in connection.execute(_TABLES_MISSING_CASCADE)]


def open_postgres_url(url: str) -> PostgresProfileStore:
    """The store of a ``postgresql://`` URL (also ``postgres://`` and SQLAlchemy's
    ``postgresql+psycopg://``): the connection pool's own query parameters, ``pool_size``
    (default 10) and ``pool_timeout`` (seconds, default 10), are taken out before the rest
    goes to libpq."""
    # libpq reads postgresql:// and postgres:// URLs; the driver suffix is SQLAlchemy's.
    conninfo, pool_size, pool_timeout = _pool_options("postgresql://" + url.partition("://")[2])
    return PostgresProfileStore(conninfo, pool_size=pool_size or 10, pool_timeout=pool_timeout or 10.0)


def _pool_options(url: str) -> tuple[str, int | None, float | None]:
    """``url`` without the pool's own query parameters, and their values (``None``: not given)."""
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    found = {key: value for key, value in query if key in ("pool_size", "pool_timeout")}
    if not found:
        return url, None, None
    numbers: dict[str, float] = {}
    for key, value in found.items():
        try:
            numbers[key] = int(value) if key == "pool_size" else float(value)
        except ValueError:
            raise ValueError(f"open_store: {key} must be a number, got {value!r}") from None
        if not numbers[key] > 0:
            raise ValueError(f"open_store: {key} must be positive, got {value!r}")
    kept = urlencode([(key, value) for key, value in query if key not in found], quote_via=quote, safe="/")
    size = numbers.get("pool_size")
    return urlunsplit(parts._replace(query=kept)), None if size is None else int(size), numbers.get("pool_timeout")
