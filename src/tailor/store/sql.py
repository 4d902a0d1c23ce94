"""What the SQLite and PostgreSQL stores share: every method whose SQL reads the same in both.

:class:`SQLStore` is the base of :class:`~tailor.store.sqlite.SQLiteProfileStore` and
:class:`~tailor.store.postgres.PostgresProfileStore`. Its statements are written with
SQLite's ``?`` parameter marker, and each passes through :meth:`SQLStore._sql` on its way
to the database, which turns it into the store's dialect (PostgreSQL's marker is ``%s``).
Arguments pass through :meth:`SQLStore._check_text`, which refuses text the database
cannot hold (PostgreSQL's text cannot hold a NUL; SQLite's holds anything).

Each store keeps what really differs: opening its connection, its transactions
(``transaction`` and ``_reading``), running the migrations (:mod:`tailor.store.migrations`)
and keeping the schema's version, the batch write of records, and the few dialect hooks
under "dialect" below (PostgreSQL's ``unnest`` arrays and row locks).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import numpy as np

from tailor.store.checks import (
    check_name,
    check_personas,
    check_profile_version,
    check_user_id,
    check_vectors,
    decode_persona,
    dimension_mismatch,
    encode_value,
    export_profile,
    persona_rows,
    unknown_record,
    utc_now,
)
from tailor.store.contract import Artifact, UnknownUserError
from tailor.store.writes import StoreBase
from tailor.types import HistoryRecord, Persona, Profile

__all__ = ["SQLConnection", "SQLStore"]


class SQLCursor(Protocol):
    """What the shared methods use of a cursor; sqlite3's and psycopg's both have it."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class SQLConnection(Protocol):
    """What the shared methods use of a connection; sqlite3's and psycopg's both have it."""

    def execute(self, query: str, params: Sequence[Any] = ..., /) -> SQLCursor: ...

    def close(self) -> None: ...


ConnectionT = TypeVar("ConnectionT", bound=SQLConnection)

_ARTIFACT_COLUMNS = "kind, key, value, profile_version, created_at"
# Columns written in one batch: (name, PostgreSQL's type of its array parameter).
_EMBEDDING_COLUMNS = (("user_id", "text"), ("record_id", "text"), ("model", "text"), ("dim", "integer"),
                      ("vector", "bytea"))
_PERSONA_COLUMNS = (("persona_id", "text"), ("position", "integer"), ("description", "text"),
                    ("centroid", "bytea"), ("size", "integer"), ("metadata", "text"))
_MEMBER_COLUMNS = (("user_id", "text"), ("persona_id", "text"))

# SQLite's default limit on host parameters is 999 in older builds; stay well under it.
_CHUNK = 500


class SQLStore(StoreBase, Generic[ConnectionT]):
    """The methods of a SQL profile store that read the same in every dialect.

    A subclass sets ``_lock`` and ``_connection`` (``None`` once closed) and provides
    ``transaction``, ``_reading`` and ``_write``. The methods under "dialect" are written
    for SQLite; a dialect other than SQLite's overrides ``_sql`` and, where it has better
    means (row locks, array parameters) or its text cannot hold every string, the others.
    """

    _lock: threading.RLock
    _connection: ConnectionT | None

    if TYPE_CHECKING:
        def transaction(self) -> AbstractContextManager[ConnectionT]: ...

        def _reading(self) -> AbstractContextManager[ConnectionT]: ...

    # -- dialect ---------------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        """``statement``, written with ``?`` markers, in this store's dialect (SQLite's: as it is)."""
        return statement

    _row_order = "rowid"
    """The column that orders a user's conversations and memories by insertion."""

    def _check_text(self, value: str, what: str, where: str) -> str:
        """``value`` if the database can store it (SQLite's text holds any string)."""
        return value

    def _execute_many(self, connection: ConnectionT, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``statement`` (already in the dialect) once per row, in one round of the driver where it can."""
        for row in rows:
            connection.execute(statement, row)

    def _hold_user(self, connection: ConnectionT, user_id: str) -> None:
        """Raise :class:`UnknownUserError` unless the user exists, and keep them from being
        deleted until the transaction ends (SQLite's write transactions hold the file)."""
        self._require_user(connection, user_id)

    def _lock_user(self, connection: ConnectionT, user_id: str) -> None:
        """Raise :class:`UnknownUserError` unless the user exists, and make other writers to
        them wait until the transaction ends (SQLite's write transactions hold the file)."""
        self._require_user(connection, user_id)

    def _lock_personas(self, connection: ConnectionT) -> None:
        """Make other replacements of the personas wait until the transaction ends (SQLite's
        write transactions hold the file)."""

    def _existing(self, connection: ConnectionT, select: str, values: Sequence[Any], ids: Sequence[str]) -> set[str]:
        """Those of ``ids`` that ``select`` finds: a query with ``?`` markers for ``values``
        whose condition ends with the column compared to the ids (``... WHERE user_id``)."""
        found: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in connection.execute(self._sql(f"{select} IN ({marks})"), (*values, *chunk)))
        return found

    def _insert_rows(self, connection: ConnectionT, table: str, columns: Sequence[tuple[str, str]],
                     rows: Sequence[Sequence[Any]], on_conflict: str = "") -> None:
        """Insert ``rows`` into ``columns`` (name, PostgreSQL's array type) of ``table``,
        followed by ``on_conflict`` (an ``ON CONFLICT`` clause, or nothing)."""
        names = ", ".join(name for name, _ in columns)
        marks = ", ".join("?" * len(columns))
        statement = f"INSERT INTO {table} ({names}) VALUES ({marks}) {on_conflict}".rstrip()
        self._execute_many(connection, self._sql(statement), rows)

    def _check_user(self, user_id: object, where: str) -> str:
        """``user_id`` if it is a non-empty string that the database can store."""
        return self._check_text(check_user_id(user_id, where), "user_id", where)

    def _check_name(self, value: object, what: str, where: str) -> str:
        """``value`` if it is a non-empty string (a model, a kind, a key) that the database can store."""
        return self._check_text(check_name(value, what, where), what, where)

    # -- connection ------------------------------------------------------------------------

    def _open_connection(self) -> ConnectionT:
        if self._connection is None:
            raise RuntimeError(f"{self!r} is closed")
        return self._connection

    def _require_user(self, connection: ConnectionT, user_id: str) -> None:
        if connection.execute(self._sql("SELECT 1 FROM users WHERE user_id = ?"), (user_id,)).fetchone() is None:
            raise UnknownUserError(user_id)

    def close(self) -> None:
        """Close the connection; further calls raise RuntimeError. Closing twice is harmless."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # -- users and records -----------------------------------------------------------------

    def ping(self) -> None:
        """One trivial read: returns when the database answers, raises
        :class:`~tailor.store.contract.StoreUnavailableError` when it does not."""
        with self._reading() as connection:
            connection.execute("SELECT 1").fetchone()

    def delete_user(self, user_id: str) -> bool:
        """Delete the user and everything derived from them; return whether they existed.

        Attributes, records and every table that follows the derived data rule go with the
        ``users`` row, through ``ON DELETE CASCADE``, in one transaction. The description of
        the user's persona was written from its members' records, so it is emptied in the
        same transaction (the persona is kept, without text, until it is rebuilt).
        """
        self._check_user(user_id, "delete_user")
        with self.transaction() as connection:
            connection.execute(self._sql(
                "UPDATE personas SET description = '' WHERE persona_id IN "
                "(SELECT persona_id FROM persona_members WHERE user_id = ?)"), (user_id,))
            return connection.execute(self._sql("DELETE FROM users WHERE user_id = ?"), (user_id,)).rowcount > 0

    def get_profile(self, user_id: str) -> Profile:
        """The user's profile, records in insertion order; raises :class:`UnknownUserError`."""
        self._check_user(user_id, "get_profile")
        with self._reading() as connection:
            self._require_user(connection, user_id)
            attributes = dict(connection.execute(
                self._sql("SELECT key, value FROM attributes WHERE user_id = ? ORDER BY key"), (user_id,)))
            rows = connection.execute(
                self._sql("SELECT record_id, fields, date FROM records WHERE user_id = ? ORDER BY position"),
                (user_id,),
            ).fetchall()
        records = tuple(HistoryRecord(record_id, json.loads(fields), date) for record_id, fields, date in rows)
        return Profile(user_id, records, attributes)

    def has_user(self, user_id: str) -> bool:
        self._check_user(user_id, "has_user")
        with self._reading() as connection:
            return connection.execute(
                self._sql("SELECT 1 FROM users WHERE user_id = ?"), (user_id,)).fetchone() is not None

    def list_users(self) -> list[str]:
        """All user ids, sorted by code point, as Python sorts them (SQLite's byte order on
        UTF-8 is code-point order; PostgreSQL's columns use the ``"C"`` collation)."""
        with self._reading() as connection:
            return [row[0] for row in connection.execute("SELECT user_id FROM users ORDER BY user_id")]

    def count_records(self, user_id: str) -> int:
        """How many records the user holds; raises :class:`UnknownUserError`."""
        self._check_user(user_id, "count_records")
        with self._reading() as connection:
            self._require_user(connection, user_id)
            return int(connection.execute(
                self._sql("SELECT COUNT(*) FROM records WHERE user_id = ?"), (user_id,)).fetchone()[0])

    def export_user(self, user_id: str) -> dict[str, Any]:
        """``{"user_id", "attributes", "records"}``, records in LaMP's profile-item layout,
        plus ``embeddings``, ``artifacts`` and ``persona_id`` where the store holds any."""
        with self._reading():  # one snapshot for the profile and what is derived from it
            profile = self.get_profile(user_id)
            return export_profile(profile, self._embedding_counts(user_id), self.list_artifacts(user_id),
                                  self.persona_of(user_id))

    def profile_version(self, user_id: str) -> int:
        """Grows whenever the user's records change; raises :class:`UnknownUserError`."""
        self._check_user(user_id, "profile_version")
        with self._reading() as connection:
            row = connection.execute(
                self._sql("SELECT profile_version FROM users WHERE user_id = ?"), (user_id,)).fetchone()
        if row is None:
            raise UnknownUserError(user_id)
        return int(row[0])

    # -- record embeddings -----------------------------------------------------------------

    def get_embeddings(self, user_id: str, model: str) -> tuple[list[str], np.ndarray]:
        """Record ids with a ``model`` vector, in profile order, and their float32 matrix
        (shape ``(0, 0)`` when there is none); raises :class:`UnknownUserError`."""
        self._check_user(user_id, "get_embeddings")
        self._check_name(model, "model", f"get_embeddings(user_id={user_id!r})")
        with self._reading() as connection:
            self._require_user(connection, user_id)
            rows = connection.execute(self._sql(
                "SELECT r.record_id, e.dim, e.vector FROM records AS r JOIN record_embeddings AS e "
                "ON e.user_id = r.user_id AND e.record_id = r.record_id AND e.model = ? "
                "WHERE r.user_id = ? ORDER BY r.position"),
                (model, user_id),
            ).fetchall()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        # One buffer for all rows: far cheaper than a frombuffer per row. bytes() is free on
        # SQLite's bytes and turns what a driver may hand back for bytea into bytes.
        matrix = np.frombuffer(b"".join(bytes(row[2]) for row in rows), dtype="<f4").reshape(len(rows), rows[0][1])
        return [row[0] for row in rows], matrix.astype(np.float32)

    def put_embeddings(self, user_id: str, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store one vector per record id under ``model``, replacing any held before.

        Every id must be one of the user's records (ValueError naming the first that is
        not); the vectors share one dimension, which must match what the user already
        holds for ``model``. Kept as little-endian float32 bytes with their dimension.
        """
        where = f"put_embeddings(user_id={user_id!r})"
        self._check_user(user_id, where)
        self._check_name(model, "model", where)
        checked, dim = check_vectors(vectors, where)
        with self.transaction() as connection:
            # Locked: two writers must not store two dimensions for one model.
            self._lock_user(connection, user_id)
            if dim is None:
                return
            known = self._existing(connection, "SELECT record_id FROM records WHERE user_id = ? AND record_id",
                                   (user_id,), list(checked))
            for record_id in checked:
                if record_id not in known:
                    raise unknown_record(where, record_id)
            self._check_stored_dimension(connection, where, user_id, model, dim)
            self._insert_rows(
                connection, "record_embeddings", _EMBEDDING_COLUMNS,
                [(user_id, record_id, model, dim, vector.tobytes()) for record_id, vector in checked.items()],
                "ON CONFLICT (user_id, record_id, model) DO UPDATE SET dim = excluded.dim, vector = excluded.vector")

    def _check_stored_dimension(self, connection: ConnectionT, where: str, user_id: str, model: str,
                                dim: int) -> None:
        """Raise unless the user's ``model`` vectors, if any, have dimension ``dim`` (for ``put_embeddings``)."""
        stored = connection.execute(
            self._sql("SELECT dim FROM record_embeddings WHERE user_id = ? AND model = ? AND dim <> ? LIMIT 1"),
            (user_id, model, dim),
        ).fetchone()
        if stored is not None:
            raise dimension_mismatch(where, model, stored[0], dim)

    def _embedding_counts(self, user_id: str) -> dict[str, int]:
        with self._reading() as connection:
            return {model: int(count) for model, count in connection.execute(self._sql(
                "SELECT model, COUNT(*) FROM record_embeddings WHERE user_id = ? GROUP BY model ORDER BY model"),
                (user_id,))}

    def delete_embeddings(self, user_id: str, model: str | None = None) -> int:
        """Delete the user's vectors of ``model`` (of every model when ``None``); return how many went."""
        self._check_user(user_id, "delete_embeddings")
        with self.transaction() as connection:
            if model is None:
                cursor = connection.execute(self._sql("DELETE FROM record_embeddings WHERE user_id = ?"), (user_id,))
            else:
                self._check_name(model, "model", f"delete_embeddings(user_id={user_id!r})")
                cursor = connection.execute(
                    self._sql("DELETE FROM record_embeddings WHERE user_id = ? AND model = ?"), (user_id, model))
            return int(cursor.rowcount)

    # -- artifacts -------------------------------------------------------------------------

    def delete_artifacts(self, user_id: str, kind: str | None = None) -> int:
        """Delete the user's artifacts of ``kind`` (all when ``None``); return how many went."""
        self._check_user(user_id, "delete_artifacts")
        with self.transaction() as connection:
            if kind is None:
                cursor = connection.execute(self._sql("DELETE FROM artifacts WHERE user_id = ?"), (user_id,))
            else:
                if isinstance(kind, str):
                    self._check_text(kind, "kind", f"delete_artifacts(user_id={user_id!r})")
                cursor = connection.execute(
                    self._sql("DELETE FROM artifacts WHERE user_id = ? AND kind = ?"), (user_id, kind))
            return int(cursor.rowcount)

    def put_artifact(self, user_id: str, kind: str, key: str, value: Mapping[str, Any],
                     profile_version: int) -> Artifact:
        """Store (or replace) the user's artifact ``(kind, key)``; return it as stored."""
        where = f"put_artifact(user_id={user_id!r})"
        self._check_user(user_id, where)
        self._check_name(kind, "kind", where)
        self._check_name(key, "key", where)
        text = encode_value(value, where)
        check_profile_version(profile_version, where)
        created_at = utc_now()
        with self.transaction() as connection:
            self._require_user(connection, user_id)
            connection.execute(self._sql(
                f"INSERT INTO artifacts (user_id, {_ARTIFACT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id, kind, key) DO UPDATE SET value = excluded.value, "
                "profile_version = excluded.profile_version, created_at = excluded.created_at"),
                (user_id, kind, key, text, profile_version, created_at),
            )
        return Artifact(kind, key, json.loads(text), profile_version, created_at)

    def get_artifact(self, user_id: str, kind: str, key: str) -> Artifact | None:
        """The artifact, or ``None``; raises :class:`UnknownUserError`."""
        self._check_user(user_id, "get_artifact")
        for name in (kind, key):
            if isinstance(name, str):
                self._check_text(name, "kind or key", "get_artifact")
        with self._reading() as connection:
            self._require_user(connection, user_id)
            row = connection.execute(
                self._sql(f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE user_id = ? AND kind = ? AND key = ?"),
                (user_id, kind, key)).fetchone()
        return None if row is None else Artifact(row[0], row[1], json.loads(row[2]), int(row[3]), row[4])

    def list_artifacts(self, user_id: str) -> list[Artifact]:
        """The user's artifacts, sorted by kind then key; raises :class:`UnknownUserError`."""
        self._check_user(user_id, "list_artifacts")
        with self._reading() as connection:
            self._require_user(connection, user_id)
            rows = connection.execute(
                self._sql(f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE user_id = ? ORDER BY kind, key"),
                (user_id,)).fetchall()
        return [Artifact(kind, key, json.loads(value), int(version), created)
                for kind, key, value, version, created in rows]

    # -- personas (cross-user) -------------------------------------------------------------

    def put_personas(self, personas: Sequence[Persona], memberships: Mapping[str, str]) -> None:
        """Replace every persona and every membership in one transaction."""
        where = "put_personas"
        checked, members = check_personas(personas, memberships, where)
        for persona in checked:
            self._check_text(persona.persona_id, "persona id", where)
            self._check_text(persona.description, f"persona {persona.persona_id!r}: description", where)
        for user_id in members:
            self._check_text(user_id, "user_id", where)
        rows = persona_rows(checked)
        with self.transaction() as connection:
            self._lock_personas(connection)
            known = self._existing(connection, "SELECT user_id FROM users WHERE user_id", (), list(members))
            for user_id in members:
                if user_id not in known:
                    raise UnknownUserError(user_id)
            connection.execute("DELETE FROM personas")  # memberships go with them (cascade)
            self._insert_rows(connection, "personas", _PERSONA_COLUMNS, rows)
            self._insert_rows(connection, "persona_members", _MEMBER_COLUMNS, list(members.items()))

    def list_personas(self) -> list[Persona]:
        """The personas in the order they were given to :meth:`put_personas`."""
        with self._reading() as connection:
            rows = connection.execute(
                "SELECT persona_id, description, centroid, size, metadata FROM personas ORDER BY position").fetchall()
        return [decode_persona(persona_id, description, bytes(centroid), int(size), metadata)
                for persona_id, description, centroid, size, metadata in rows]

    def persona_of(self, user_id: str) -> str | None:
        """The id of the user's persona; ``None`` when they have none or are unknown."""
        self._check_user(user_id, "persona_of")
        with self._reading() as connection:
            row = connection.execute(
                self._sql("SELECT persona_id FROM persona_members WHERE user_id = ?"), (user_id,)).fetchone()
        return None if row is None else str(row[0])
