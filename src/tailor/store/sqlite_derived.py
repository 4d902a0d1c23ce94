"""The SQLite store's derived data writes whose statements are SQLite's own.

A base of :class:`~tailor.store.sqlite.SQLiteProfileStore`, kept apart so that each
module reads in one sitting; what reads the same in PostgreSQL (the reads, artifacts) is
in :mod:`tailor.store.sql`. Its tables (schema version 2,
:mod:`tailor.store.sqlite_schema`) follow the derived data rule, so ``delete_user`` removes
them without any code here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tailor.store.checks import check_user_id
from tailor.store.derived_checks import (
    check_name,
    check_personas,
    check_vectors,
    persona_rows,
    unknown_record,
)
from tailor.store.server_data import ServingData
from tailor.types import Persona

# SQLite's default limit on host parameters is 999 in older builds; stay well under it.
_CHUNK = 500


class SQLiteDerivedData(ServingData[sqlite3.Connection]):
    """Embeddings and personas written on the store's connection and transactions."""

    def _execute_many(self, connection: sqlite3.Connection, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        connection.executemany(statement, rows)

    # -- record embeddings ------------------------------------------------------------------

    def put_embeddings(self, user_id: str, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store one vector per record id under ``model``, replacing any held before.

        Every id must be one of the user's records (ValueError naming the first that is
        not); the vectors share one dimension, which must match what the user already
        holds for ``model``. Kept as little-endian float32 with their dimension.
        """
        where = f"put_embeddings(user_id={user_id!r})"
        check_user_id(user_id, where)
        check_name(model, "model", where)
        checked, dim = check_vectors(vectors, where)
        with self.transaction() as connection:
            self._require_user(connection, user_id)
            if dim is None:
                return
            ids = list(checked)
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                known = {row[0] for row in connection.execute(
                    f"SELECT record_id FROM records WHERE user_id = ? AND record_id IN ({marks})", (user_id, *chunk))}
                for record_id in chunk:
                    if record_id not in known:
                        raise unknown_record(where, record_id)
            self._check_stored_dimension(connection, where, user_id, model, dim)
            connection.executemany(
                "INSERT INTO record_embeddings (user_id, record_id, model, dim, vector) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id, record_id, model) DO UPDATE SET dim = excluded.dim, vector = excluded.vector",
                [(user_id, record_id, model, dim, vector.tobytes()) for record_id, vector in checked.items()],
            )

    # -- personas (cross-user) ------------------------------------------------------------------

    def put_personas(self, personas: Sequence[Persona], memberships: Mapping[str, str]) -> None:
        """Replace every persona and every membership in one transaction."""
        checked, members = check_personas(personas, memberships, "put_personas")
        rows = persona_rows(checked)
        with self.transaction() as connection:
            for user_id in members:
                self._require_user(connection, user_id)
            connection.execute("DELETE FROM personas")  # memberships go with them (cascade)
            connection.executemany(
                "INSERT INTO personas (persona_id, position, description, centroid, size, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?)", rows)
            connection.executemany("INSERT INTO persona_members (user_id, persona_id) VALUES (?, ?)",
                                   list(members.items()))


__all__ = ["SQLiteDerivedData"]
