"""The PostgreSQL store's derived data: record embeddings, artifacts and personas.

A mixin of :class:`~tailor.profiles.postgres.PostgresProfileStore`, kept apart so that each
module reads in one sitting, as :mod:`tailor.profiles.sqlite_derived` is for SQLite. Its
tables follow the derived data rule, so ``delete_user`` removes them without any code here.
"""

from __future__ import annotations

import json
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
from tailor.profiles.base import Artifact, UnknownUserError
from tailor.types import Persona

if TYPE_CHECKING:
    import psycopg

_ARTIFACT_COLUMNS = "kind, key, value, profile_version, created_at"


def check_text(value: str, what: str, where: str) -> str:
    """``value`` unless it holds a NUL character, which PostgreSQL's text cannot store."""
    if "\x00" in value:
        raise ValueError(f"{where}: {what} {value!r} contains a NUL character (\\x00), which PostgreSQL cannot store")
    return value


def check_user(user_id: object, where: str) -> str:
    """``user_id`` if it is a non-empty string that PostgreSQL can store."""
    return check_text(check_user_id(user_id, where), "user_id", where)


def _check_name(value: object, what: str, where: str) -> str:
    return check_text(check_name(value, what, where), what, where)


def columns_of(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows turned into ``width`` column lists: one array parameter each for ``unnest``, so a
    whole batch is one statement."""
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]


class PostgresDerivedData:
    """Embeddings, artifacts and personas on the store's connection and transactions."""

    if TYPE_CHECKING:
        def transaction(self) -> AbstractContextManager[psycopg.Connection[tuple[Any, ...]]]: ...

        def _reading(self) -> AbstractContextManager[psycopg.Connection[tuple[Any, ...]]]: ...

        @staticmethod
        def _require_user(connection: psycopg.Connection[tuple[Any, ...]], user_id: str, *,
                          lock: bool = False) -> None: ...

    # -- record embeddings ------------------------------------------------------------------

    def put_embeddings(self, user_id: str, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store one vector per record id under ``model``, replacing any held before.

        Every id must be one of the user's records (ValueError naming the first that is
        not); the vectors share one dimension, which must match what the user already
        holds for ``model``. Kept as little-endian float32 bytes (``bytea``) with their dimension.
        """
        where = f"put_embeddings(user_id={user_id!r})"
        check_user(user_id, where)
        _check_name(model, "model", where)
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
            stored = connection.execute(
                "SELECT dim FROM record_embeddings WHERE user_id = %s AND model = %s AND dim <> %s LIMIT 1",
                (user_id, model, dim),
            ).fetchone()
            if stored is not None:
                raise dimension_mismatch(where, model, stored[0], dim)
            connection.execute(
                "INSERT INTO record_embeddings (user_id, record_id, model, dim, vector) "
                "SELECT %s, record_id, %s, %s, vector FROM unnest(%s::text[], %s::bytea[]) AS batch (record_id, vector) "
                "ON CONFLICT (user_id, record_id, model) DO UPDATE SET dim = excluded.dim, vector = excluded.vector",
                (user_id, model, dim, ids, [checked[record_id].tobytes() for record_id in ids]),
            )

    def get_embeddings(self, user_id: str, model: str) -> tuple[list[str], np.ndarray]:
        """Record ids with a ``model`` vector, in profile order, and their float32 matrix
        (shape ``(0, 0)`` when there is none); raises :class:`UnknownUserError`."""
        check_user(user_id, "get_embeddings")
        _check_name(model, "model", f"get_embeddings(user_id={user_id!r})")
        with self._reading() as connection:
            self._require_user(connection, user_id)
            rows = connection.execute(
                "SELECT r.record_id, e.dim, e.vector FROM records AS r JOIN record_embeddings AS e "
                "ON e.user_id = r.user_id AND e.record_id = r.record_id AND e.model = %s "
                "WHERE r.user_id = %s ORDER BY r.position",
                (model, user_id),
            ).fetchall()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        # One buffer for all rows: far cheaper than a frombuffer per row.
        matrix = np.frombuffer(b"".join(bytes(row[2]) for row in rows), dtype="<f4").reshape(len(rows), rows[0][1])
        return [row[0] for row in rows], matrix.astype(np.float32)

    def delete_embeddings(self, user_id: str, model: str | None = None) -> int:
        """Delete the user's vectors of ``model`` (of every model when ``None``); return how many went."""
        where = f"delete_embeddings(user_id={user_id!r})"
        check_user(user_id, where)
        with self.transaction() as connection:
            if model is None:
                cursor = connection.execute("DELETE FROM record_embeddings WHERE user_id = %s", (user_id,))
            else:
                _check_name(model, "model", where)
                cursor = connection.execute(
                    "DELETE FROM record_embeddings WHERE user_id = %s AND model = %s", (user_id, model))
            return cursor.rowcount

    def _embedding_counts(self, user_id: str) -> dict[str, int]:
        with self._reading() as connection:
            return {model: int(count) for model, count in connection.execute(
                "SELECT model, COUNT(*) FROM record_embeddings WHERE user_id = %s GROUP BY model ORDER BY model",
                (user_id,))}

    # -- artifacts ----------------------------------------------------------------------------

    def put_artifact(self, user_id: str, kind: str, key: str, value: Mapping[str, Any],
                     profile_version: int) -> Artifact:
        """Store (or replace) the user's artifact ``(kind, key)``; return it as stored."""
        where = f"put_artifact(user_id={user_id!r})"
        check_user(user_id, where)
        _check_name(kind, "kind", where)
        _check_name(key, "key", where)
        text = encode_value(value, where)
        check_profile_version(profile_version, where)
        created_at = utc_now()
        with self.transaction() as connection:
            self._require_user(connection, user_id)
            connection.execute(
                f"INSERT INTO artifacts (user_id, {_ARTIFACT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (user_id, kind, key) DO UPDATE SET value = excluded.value, "
                "profile_version = excluded.profile_version, created_at = excluded.created_at",
                (user_id, kind, key, text, profile_version, created_at),
            )
        return Artifact(kind, key, json.loads(text), profile_version, created_at)

    def get_artifact(self, user_id: str, kind: str, key: str) -> Artifact | None:
        """The artifact, or ``None``; raises :class:`UnknownUserError`."""
        check_user(user_id, "get_artifact")
        for name in (kind, key):
            if isinstance(name, str):
                check_text(name, "kind or key", "get_artifact")
        with self._reading() as connection:
            self._require_user(connection, user_id)
            row = connection.execute(
                f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE user_id = %s AND kind = %s AND key = %s",
                (user_id, kind, key)).fetchone()
        return None if row is None else Artifact(row[0], row[1], json.loads(row[2]), int(row[3]), row[4])

    def list_artifacts(self, user_id: str) -> list[Artifact]:
        """The user's artifacts, sorted by kind then key; raises :class:`UnknownUserError`."""
        check_user(user_id, "list_artifacts")
        with self._reading() as connection:
            self._require_user(connection, user_id)
            rows = connection.execute(
                f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE user_id = %s ORDER BY kind, key",
                (user_id,)).fetchall()
        return [Artifact(kind, key, json.loads(value), int(version), created)
                for kind, key, value, version, created in rows]

    def delete_artifacts(self, user_id: str, kind: str | None = None) -> int:
        """Delete the user's artifacts of ``kind`` (all when ``None``); return how many went."""
        where = f"delete_artifacts(user_id={user_id!r})"
        check_user(user_id, where)
        with self.transaction() as connection:
            if kind is None:
                return connection.execute("DELETE FROM artifacts WHERE user_id = %s", (user_id,)).rowcount
            check_text(kind, "kind", where)
            return connection.execute(
                "DELETE FROM artifacts WHERE user_id = %s AND kind = %s", (user_id, kind)).rowcount

    # -- personas (cross-user) ------------------------------------------------------------------

    def put_personas(self, personas: Sequence[Persona], memberships: Mapping[str, str]) -> None:
        """Replace every persona and every membership in one transaction."""
        where = "put_personas"
        checked, members = check_personas(personas, memberships, where)
        for persona in checked:
            check_text(persona.persona_id, "persona id", where)
            check_text(persona.description, f"persona {persona.persona_id!r}: description", where)
        for user_id in members:
            check_text(user_id, "user_id", where)
        rows = [(p.persona_id, position, p.description, encode_centroid(p), p.size,
                 json.dumps(dict(p.metadata), ensure_ascii=False)) for position, p in enumerate(checked)]
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

    def list_personas(self) -> list[Persona]:
        """The personas in the order they were given to :meth:`put_personas`."""
        with self._reading() as connection:
            rows = connection.execute(
                "SELECT persona_id, description, centroid, size, metadata FROM personas ORDER BY position").fetchall()
        return [decode_persona(persona_id, description, bytes(centroid), int(size), metadata)
                for persona_id, description, centroid, size, metadata in rows]

    def persona_of(self, user_id: str) -> str | None:
        """The id of the user's persona; ``None`` when they have none or are unknown."""
        check_user(user_id, "persona_of")
        with self._reading() as connection:
            row = connection.execute("SELECT persona_id FROM persona_members WHERE user_id = %s",
                                     (user_id,)).fetchone()
        return None if row is None else str(row[0])


__all__ = ["PostgresDerivedData", "check_text", "check_user", "columns_of"]
