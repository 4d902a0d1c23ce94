"""The PostgreSQL store's derived data writes whose statements are PostgreSQL's own.

A base of :class:`~tailor.store.postgres.PostgresProfileStore`, kept apart so that each
module reads in one sitting, as :mod:`tailor.store.sqlite_derived` is for SQLite; what
reads the same in SQLite (the reads, artifacts) is in :mod:`tailor.store.sql`.
Its tables follow the derived data rule, so ``delete_user`` removes them without any code here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tailor.registry import require

require("psycopg", "postgres")  # fails with the "pip install 'tailor-llm[postgres]'" hint

import psycopg

from tailor.store.contract import UnknownUserError
from tailor.store.derived_checks import check_personas, check_vectors, persona_rows, unknown_record
from tailor.store.server_data import ServingData
from tailor.types import Persona

Connection = psycopg.Connection[tuple[Any, ...]]


def check_text(value: str, what: str, where: str) -> str:
    """``value`` unless it holds a NUL character, which PostgreSQL's text cannot store."""
    if "\x00" in value:
        raise ValueError(f"{where}: {what} {value!r} contains a NUL character (\\x00), which PostgreSQL cannot store")
    return value


def columns_of(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows turned into ``width`` column lists: one array parameter each for ``unnest``, so a
    whole batch is one statement."""
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]


class PostgresDerivedData(ServingData[Connection]):
    """PostgreSQL's dialect of the shared methods, and the embeddings and personas writes
    whose statements are its own."""

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

    def _require_user(self, connection: Connection, user_id: str, *, lock: bool = False) -> None:
        """Raise :class:`UnknownUserError` unless the user exists; with ``lock``, hold their
        row until the transaction ends, so writers to one user take turns."""
        query = "SELECT 1 FROM users WHERE user_id = %s FOR NO KEY UPDATE" if lock else \
            "SELECT 1 FROM users WHERE user_id = %s"
        if connection.execute(query, (user_id,)).fetchone() is None:
            raise UnknownUserError(user_id)

    # -- record embeddings -----------------------------------------------------------------

    def put_embeddings(self, user_id: str, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store one vector per record id under ``model``, replacing any held before.

        Every id must be one of the user's records (ValueError naming the first that is
        not); the vectors share one dimension, which must match what the user already
        holds for ``model``. Kept as little-endian float32 bytes (``bytea``) with their dimension.
        """
        where = f"put_embeddings(user_id={user_id!r})"
        self._check_user(user_id, where)
        self._check_name(model, "model", where)
        checked, dim = check_vectors(vectors, where)
        with self.transaction() as connection:
            # Locked: two writers must not store two dimensions for one model.
            self._require_user(connection, user_id, lock=True)
            if dim is None:
                return
            ids = list(checked)
            known = {row[0] for row in connection.execute(
                "SELECT record_id FROM records WHERE user_id = %s AND record_id = ANY(%s::text[])",
                (user_id, [record_id for record_id in ids if "\x00" not in record_id]))}
            for record_id in ids:
                if record_id not in known:
                    raise unknown_record(where, record_id)
            self._check_stored_dimension(connection, where, user_id, model, dim)
            connection.execute(
                "INSERT INTO record_embeddings (user_id, record_id, model, dim, vector) "
                "SELECT %s, record_id, %s, %s, vector FROM unnest(%s::text[], %s::bytea[]) AS batch (record_id, vector) "
                "ON CONFLICT (user_id, record_id, model) DO UPDATE SET dim = excluded.dim, vector = excluded.vector",
                (user_id, model, dim, ids, [checked[record_id].tobytes() for record_id in ids]),
            )

    # -- personas (cross-user) -------------------------------------------------------------

    def put_personas(self, personas: Sequence[Persona], memberships: Mapping[str, str]) -> None:
        """Replace every persona and every membership in one transaction."""
        where = "put_personas"
        checked, members = check_personas(personas, memberships, where)
        for persona in checked:
            check_text(persona.persona_id, "persona id", where)
            check_text(persona.description, f"persona {persona.persona_id!r}: description", where)
        for user_id in members:
            check_text(user_id, "user_id", where)
        rows = persona_rows(checked)
        with self.transaction() as connection:
            # Self-conflicting but open to readers: two replacements take turns, reads go on.
            connection.execute("LOCK TABLE personas IN SHARE ROW EXCLUSIVE MODE")
            known = {row[0] for row in connection.execute(
                "SELECT user_id FROM users WHERE user_id = ANY(%s::text[])", (list(members),))}
            for user_id in members:
                if user_id not in known:
                    raise UnknownUserError(user_id)
            connection.execute("DELETE FROM personas")  # memberships go with them (cascade)
            connection.execute(
                "INSERT INTO personas (persona_id, position, description, centroid, size, metadata) "
                "SELECT * FROM unnest(%s::text[], %s::integer[], %s::text[], %s::bytea[], %s::integer[], %s::text[])",
                columns_of(rows, 6))
            connection.execute(
                "INSERT INTO persona_members (user_id, persona_id) SELECT * FROM unnest(%s::text[], %s::text[])",
                (list(members), list(members.values())))


__all__ = ["Connection", "PostgresDerivedData", "check_text", "columns_of"]
