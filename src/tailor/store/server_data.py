"""What the server keeps in a SQL store beside the profiles: API keys, and the per-user
search structures compiled from records (BM25 terms and postings, unit vector matrices).

:class:`ServingData` is a base of both SQL stores; its statements read the same in SQLite
and PostgreSQL (each passes through ``_sql``), so the server runs on either through these
methods and never through SQL of its own. The tables are declared with the store's schema
(:mod:`tailor.store.migrations`, version 3) and follow the derived data rule.

Each method is one transaction, or joins the caller's: a feature that must commit several
of them together (records with their index) opens :meth:`transaction` around them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tailor.store.conversations import ConnectionT
from tailor.store.feedback import FeedbackData
from tailor.types import HistoryRecord

__all__ = ["ApiKeyRow", "CompiledIndex", "CompiledMatrix", "ServingData"]

ApiKeyRow = tuple[str, "str | None", bool, str, "str | None"]
"""``(key_id, tenant, admin, created_at, revoked_at)``."""
CompiledIndex = tuple[str, list[str], list[str], bytes]
"""``(build_id, record_ids, vocabulary, arrays)``."""
CompiledMatrix = tuple[int, list[str], int, bytes]
"""``(profile_version, record_ids, dim, matrix)``."""


def _records(rows: Sequence[Sequence[Any]]) -> list[HistoryRecord]:
    return [HistoryRecord(record_id, json.loads(fields), date) for record_id, fields, date in rows]


class ServingData(FeedbackData[ConnectionT]):
    """API keys and compiled per-user search structures, in the store's own database."""

    # -- API keys (no user data) --------------------------------------------------------------

    def add_api_key(self, key_id: str, tenant: str | None, admin: bool, salt: bytes, digest: bytes,
                    created_at: str) -> None:
        with self.transaction() as connection:
            connection.execute(self._sql(
                "INSERT INTO api_keys (key_id, tenant, admin, salt, digest, created_at, revoked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL)"), (key_id, tenant, int(admin), salt, digest, created_at))

    def has_active_api_key(self) -> bool:
        """Whether any unrevoked key exists."""
        with self._reading() as connection:
            return connection.execute("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1").fetchone() is not None

    def active_api_key(self, key_id: str) -> tuple[str | None, bool, bytes, bytes] | None:
        """``(tenant, admin, salt, digest)`` of the unrevoked key ``key_id``, or ``None``."""
        with self._reading() as connection:
            row = connection.execute(self._sql("SELECT tenant, admin, salt, digest FROM api_keys "
                                               "WHERE key_id = ? AND revoked_at IS NULL"), (key_id,)).fetchone()
        return None if row is None else (row[0], bool(row[1]), bytes(row[2]), bytes(row[3]))

    def list_api_keys(self) -> list[ApiKeyRow]:
        """Every key, revoked ones included, oldest first."""
        with self._reading() as connection:
            rows = connection.execute("SELECT key_id, tenant, admin, created_at, revoked_at FROM api_keys "
                                      "ORDER BY created_at, key_id").fetchall()
        return [(key_id, tenant, bool(admin), created, revoked) for key_id, tenant, admin, created, revoked in rows]

    def revoke_api_key(self, key_id: str, revoked_at: str) -> bool:
        """Revoke a key; return whether an active key of that id existed."""
        with self.transaction() as connection:
            return connection.execute(
                self._sql("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"),
                (revoked_at, key_id)).rowcount > 0

    # -- records, as search reads them ------------------------------------------------------------

    def records_by_id(self, user_id: str, ids: Sequence[str]) -> list[HistoryRecord]:
        """The user's records of these ids, in this order (ids the user does not hold are left out)."""
        if not ids:
            return []
        found: dict[str, HistoryRecord] = {}
        with self._reading() as connection:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start:start + 500])
                marks = ",".join("?" * len(chunk))
                found.update((record.id, record) for record in _records(connection.execute(self._sql(
                    f"SELECT record_id, fields, date FROM records WHERE user_id = ? AND record_id IN ({marks})"),
                    (user_id, *chunk)).fetchall()))
        return [found[record_id] for record_id in ids if record_id in found]

    def record_ids(self, user_id: str) -> list[str]:
        """The user's record ids in profile order (none for an unknown user)."""
        with self._reading() as connection:
            return [row[0] for row in connection.execute(
                self._sql("SELECT record_id FROM records WHERE user_id = ? ORDER BY position"), (user_id,))]

    def recent_records(self, user_id: str, k: int) -> list[HistoryRecord] | None:
        """The user's ``k`` most recent records: latest date first, undated last, later
        additions first among equals; ``None`` when the store does not hold the user."""
        with self._reading() as connection:
            if connection.execute(self._sql("SELECT 1 FROM users WHERE user_id = ?"), (user_id,)).fetchone() is None:
                return None
            return _records(connection.execute(self._sql(
                "SELECT record_id, fields, date FROM records WHERE user_id = ? "
                "ORDER BY CASE WHEN date IS NULL THEN 1 ELSE 0 END, date DESC, position DESC LIMIT ?"),
                (user_id, max(int(k), 0))).fetchall())

    # -- BM25: each record's terms and the user's compiled postings -------------------------------

    def record_index_state(self, user_id: str) -> tuple[int, int | None, str | None] | None:
        """``(profile_version, indexed_version, build_id)`` of the user's BM25 index (the
        last two ``None`` before the first build); ``None`` for an unknown user."""
        with self._reading() as connection:
            row = connection.execute(self._sql(
                "SELECT u.profile_version, i.profile_version, i.build_id FROM users u "
                "LEFT JOIN serve_record_index i ON i.user_id = u.user_id WHERE u.user_id = ?"), (user_id,)).fetchone()
        return None if row is None else (int(row[0]), None if row[1] is None else int(row[1]), row[2])

    def records_without_terms(self, user_id: str) -> list[HistoryRecord]:
        """The user's records that have no stored terms (new, or changed since), in profile order."""
        with self._reading() as connection:
            return _records(connection.execute(self._sql(
                "SELECT r.record_id, r.fields, r.date FROM records r LEFT JOIN serve_record_terms t "
                "ON t.user_id = r.user_id AND t.record_id = r.record_id "
                "WHERE r.user_id = ? AND t.record_id IS NULL ORDER BY r.position"), (user_id,)).fetchall())

    def put_record_terms(self, user_id: str, terms: Mapping[str, str]) -> None:
        """Keep each record's terms (space-separated tokens), replacing any held."""
        if not terms:
            return
        with self.transaction() as connection:
            self._execute_many(connection, self._sql(
                "INSERT INTO serve_record_terms (user_id, record_id, terms) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, record_id) DO UPDATE SET terms = excluded.terms"),
                [(user_id, record_id, text) for record_id, text in terms.items()])

    def record_terms(self, user_id: str) -> list[tuple[str, str]]:
        """``(record_id, terms)`` of the user's records that have terms, in profile order."""
        with self._reading() as connection:
            return [(row[0], row[1]) for row in connection.execute(self._sql(
                "SELECT r.record_id, t.terms FROM records r JOIN serve_record_terms t "
                "ON t.user_id = r.user_id AND t.record_id = r.record_id WHERE r.user_id = ? ORDER BY r.position"),
                (user_id,))]

    def put_record_index(self, user_id: str, profile_version: int, build_id: str, record_ids: Sequence[str],
                         vocabulary: Sequence[str], arrays: bytes) -> None:
        """Keep the user's compiled BM25 postings, built at ``profile_version``."""
        with self.transaction() as connection:
            connection.execute(self._sql(
                "INSERT INTO serve_record_index (user_id, profile_version, build_id, record_ids, vocabulary, arrays) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                "profile_version = excluded.profile_version, build_id = excluded.build_id, "
                "record_ids = excluded.record_ids, vocabulary = excluded.vocabulary, arrays = excluded.arrays"),
                (user_id, profile_version, build_id, json.dumps(list(record_ids), ensure_ascii=False),
                 json.dumps(list(vocabulary), ensure_ascii=False), arrays))

    def get_record_index(self, user_id: str) -> CompiledIndex | None:
        """The user's compiled BM25 postings, or ``None`` before the first build."""
        with self._reading() as connection:
            row = connection.execute(self._sql(
                "SELECT build_id, record_ids, vocabulary, arrays FROM serve_record_index WHERE user_id = ?"),
                (user_id,)).fetchone()
        return None if row is None else (row[0], json.loads(row[1]), json.loads(row[2]), bytes(row[3]))

    # -- dense: the user's unit vectors as one matrix ------------------------------------------------

    def records_without_embeddings(self, user_id: str, model: str) -> list[HistoryRecord]:
        """The user's records with no ``model`` vector, in profile order."""
        with self._reading() as connection:
            return _records(connection.execute(self._sql(
                "SELECT r.record_id, r.fields, r.date FROM records r LEFT JOIN record_embeddings e "
                "ON e.user_id = r.user_id AND e.record_id = r.record_id AND e.model = ? "
                "WHERE r.user_id = ? AND e.record_id IS NULL ORDER BY r.position"), (model, user_id)).fetchall())

    def put_record_matrix(self, user_id: str, model: str, profile_version: int, record_ids: Sequence[str],
                          dim: int, matrix: bytes) -> None:
        """Keep the user's ``model`` matrix (little-endian float32 rows), built at ``profile_version``."""
        with self.transaction() as connection:
            connection.execute(self._sql(
                "INSERT INTO serve_record_matrix (user_id, model, profile_version, record_ids, dim, matrix) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, model) DO UPDATE SET "
                "profile_version = excluded.profile_version, record_ids = excluded.record_ids, dim = excluded.dim, "
                "matrix = excluded.matrix"),
                (user_id, model, profile_version, json.dumps(list(record_ids), ensure_ascii=False), dim, matrix))

    def get_record_matrix(self, user_id: str, model: str) -> CompiledMatrix | None:
        """The user's compiled ``model`` matrix, or ``None`` before the first build."""
        with self._reading() as connection:
            row = connection.execute(self._sql(
                "SELECT profile_version, record_ids, dim, matrix FROM serve_record_matrix "
                "WHERE user_id = ? AND model = ?"), (user_id, model)).fetchone()
        return None if row is None else (int(row[0]), json.loads(row[1]), int(row[2]), bytes(row[3]))
