"""The SQLite store's derived data: record embeddings, artifacts and personas.

A mixin of :class:`~tailor.profiles.sqlite.SQLiteProfileStore`, kept apart so that each
module reads in one sitting. Its tables (schema version 2, :mod:`tailor.profiles._schema`)
follow the derived data rule, so ``delete_user`` removes them without any code here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from tailor.profiles._batch import check_user_id
from tailor.profiles._derived import (
    check_name,
    check_personas,
    check_profile_version,
    check_vectors,
    decode_persona,
    dimension_mismatch,
    encode_centroid,
    encode_value,
    unknown_record,
    utc_now,
)
from tailor.profiles.base import Artifact
from tailor.types import Persona

# SQLite's default limit on host parameters is 999 in older builds; stay well under it.
_CHUNK = 500


class SQLiteDerivedData:
    """Embeddings, artifacts and personas on the store's connection and transactions."""

    if TYPE_CHECKING:
        def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _reading(self) -> AbstractContextManager[sqlite3.Connection]: ...

        @staticmethod
        def _require_user(connection: sqlite3.Connection, user_id: str) -> None: ...

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
            stored = connection.execute(
                "SELECT dim FROM record_embeddings WHERE user_id = ? AND model = ? AND dim != ? LIMIT 1",
                (user_id, model, dim),
            ).fetchone()
            if stored is not None:
                raise dimension_mismatch(where, model, stored[0], dim)
            connection.executemany(
                "INSERT INTO record_embeddings (user_id, record_id, model, dim, vector) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id, record_id, model) DO UPDATE SET dim = excluded.dim, vector = excluded.vector",
                [(user_id, record_id, model, dim, vector.tobytes()) for record_id, vector in checked.items()],
            )

    def get_embeddings(self, user_id: str, model: str) -> tuple[list[str], np.ndarray]:
        """Record ids with a ``model`` vector, in profile order, and their float32 matrix
        (shape ``(0, 0)`` when there is none); raises :class:`UnknownUserError`."""
        check_user_id(user_id, "get_embeddings")
        check_name(model, "model", f"get_embeddings(user_id={user_id!r})")
        with self._reading() as connection:
            self._require_user(connection, user_id)
            rows = connection.execute(
                "SELECT r.record_id, e.dim, e.vector FROM records AS r JOIN record_embeddings AS e "
                "ON e.user_id = r.user_id AND e.record_id = r.record_id AND e.model = ? "
                "WHERE r.user_id = ? ORDER BY r.position",
                (model, user_id),
            ).fetchall()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        # One buffer for all rows: far cheaper than a frombuffer per row.
        matrix = np.frombuffer(b"".join(row[2] for row in rows), dtype="<f4").reshape(len(rows), rows[0][1])
        return [row[0] for row in rows], matrix.astype(np.float32)

    def delete_embeddings(self, user_id: str, model: str | None = None) -> int:
        """Delete the user's vectors of ``model`` (of every model when ``None``); return how many went."""
        check_user_id(user_id, "delete_embeddings")
        with self.transaction() as connection:
            if model is None:
                cursor = connection.execute("DELETE FROM record_embeddings WHERE user_id = ?", (user_id,))
            else:
                check_name(model, "model", f"delete_embeddings(user_id={user_id!r})")
                cursor = connection.execute(
                    "DELETE FROM record_embeddings WHERE user_id = ? AND model = ?", (user_id, model))
            return cursor.rowcount

    def _embedding_counts(self, user_id: str) -> dict[str, int]:
        with self._reading() as connection:
            return dict(connection.execute(
                "SELECT model, COUNT(*) FROM record_embeddings WHERE user_id = ? GROUP BY model ORDER BY model",
                (user_id,)))

    # -- artifacts ----------------------------------------------------------------------------

    def put_artifact(self, user_id: str, kind: str, key: str, value: Mapping[str, Any],
                     profile_version: int) -> Artifact:
        """Store (or replace) the user's artifact ``(kind, key)``; return it as stored."""
        where = f"put_artifact(user_id={user_id!r})"
        check_user_id(user_id, where)
        check_name(kind, "kind", where)
        check_name(key, "key", where)
        text = encode_value(value, where)
        check_profile_version(profile_version, where)
        created_at = utc_now()
        with self.transaction() as connection:
            self._require_user(connection, user_id)
            connection.execute(
                "INSERT INTO artifacts (user_id, kind, key, value, profile_version, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, kind, key) DO UPDATE SET value = excluded.value, "
                "profile_version = excluded.profile_version, created_at = excluded.created_at",
                (user_id, kind, key, text, profile_version, created_at),
            )
        return Artifact(kind, key, json.loads(text), profile_version, created_at)

    def get_artifact(self, user_id: str, kind: str, key: str) -> Artifact | None:
        """The artifact, or ``None``; raises :class:`UnknownUserError`."""
        check_user_id(user_id, "get_artifact")
        with self._reading() as connection:
            self._require_user(connection, user_id)
            row = connection.execute(
                "SELECT kind, key, value, profile_version, created_at FROM artifacts "
                "WHERE user_id = ? AND kind = ? AND key = ?", (user_id, kind, key)).fetchone()
        return None if row is None else Artifact(row[0], row[1], json.loads(row[2]), row[3], row[4])

    def list_artifacts(self, user_id: str) -> list[Artifact]:
        """The user's artifacts, sorted by kind then key; raises :class:`UnknownUserError`."""
        check_user_id(user_id, "list_artifacts")
        with self._reading() as connection:
            self._require_user(connection, user_id)
            rows = connection.execute(
                "SELECT kind, key, value, profile_version, created_at FROM artifacts "
                "WHERE user_id = ? ORDER BY kind, key", (user_id,)).fetchall()
        return [Artifact(kind, key, json.loads(value), version, created) for kind, key, value, version, created in rows]

    def delete_artifacts(self, user_id: str, kind: str | None = None) -> int:
        """Delete the user's artifacts of ``kind`` (all when ``None``); return how many went."""
        check_user_id(user_id, "delete_artifacts")
        with self.transaction() as connection:
            if kind is None:
                return connection.execute("DELETE FROM artifacts WHERE user_id = ?", (user_id,)).rowcount
            return connection.execute(
                "DELETE FROM artifacts WHERE user_id = ? AND kind = ?", (user_id, kind)).rowcount

    # -- personas (cross-user) ------------------------------------------------------------------

    def put_personas(self, personas: Sequence[Persona], memberships: Mapping[str, str]) -> None:
        """Replace every persona and every membership in one transaction."""
        checked, members = check_personas(personas, memberships, "put_personas")
        rows = [(p.persona_id, position, p.description, encode_centroid(p), p.size,
                 json.dumps(dict(p.metadata), ensure_ascii=False)) for position, p in enumerate(checked)]
        with self.transaction() as connection:
            for user_id in members:
                self._require_user(connection, user_id)
            connection.execute("DELETE FROM personas")  # memberships go with them (cascade)
            connection.executemany(
                "INSERT INTO personas (persona_id, position, description, centroid, size, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?)", rows)
            connection.executemany("INSERT INTO persona_members (user_id, persona_id) VALUES (?, ?)",
                                   list(members.items()))

    def list_personas(self) -> list[Persona]:
        """The personas in the order they were given to :meth:`put_personas`."""
        with self._reading() as connection:
            rows = connection.execute(
                "SELECT persona_id, description, centroid, size, metadata FROM personas ORDER BY position").fetchall()
        return [decode_persona(*row) for row in rows]

    def persona_of(self, user_id: str) -> str | None:
        """The id of the user's persona; ``None`` when they have none or are unknown."""
        check_user_id(user_id, "persona_of")
        with self._reading() as connection:
            row = connection.execute("SELECT persona_id FROM persona_members WHERE user_id = ?", (user_id,)).fetchone()
        return None if row is None else str(row[0])


__all__ = ["SQLiteDerivedData"]
