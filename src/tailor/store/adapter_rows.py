"""Adapter weights kept in a SQL store: the rows :mod:`tailor.adapters.store` reads and writes.

:class:`AdapterData` is a base of both SQL stores; its statements read the same in SQLite
and PostgreSQL. An adapter is named by ``(scope, owner, task, kind, prompt)``: a ``user``
adapter is a row of ``adapters`` (its owner is the ``user_id``, so it cascades with the
user); a ``persona`` or ``global`` one is a row of ``shared_adapters``, with its
contributors in ``adapter_contributors`` (deleting a contributor deletes it, by trigger).
The tables are declared with the store's schema (version 3). What an adapter is (its key,
its checks, its size limit) is :mod:`tailor.adapters.store`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tailor.store.sql import ConnectionT, SQLStore

__all__ = ["AdapterData", "AdapterName", "AdapterRow"]

AdapterName = tuple[str, str, str, str, str]
"""``(scope, owner, task, kind, prompt)``."""
AdapterRow = tuple[str, str, str, str, bytes, str]
"""``(config, base_model, metadata, digest, weights, created_at)``: JSON text, then bytes."""

_COLUMNS = "config, base_model, metadata, digest, weights, created_at"
_INFO_COLUMNS = "config, base_model, metadata, digest, length(weights), created_at"
_USER_MATCH = "user_id = ? AND task = ? AND kind = ? AND prompt = ?"
_SHARED_MATCH = "scope = ? AND owner = ? AND task = ? AND kind = ? AND prompt = ?"


def _match(name: AdapterName) -> tuple[str, str, tuple[str, ...]]:
    """The table, the condition and its values that find the adapter ``name``."""
    if name[0] == "user":
        return "adapters", _USER_MATCH, name[1:]
    return "shared_adapters", _SHARED_MATCH, name


class AdapterData(SQLStore[ConnectionT]):
    """Per-user, per-persona and global adapters' rows."""

    def put_adapter(self, name: AdapterName, row: AdapterRow, contributors: Sequence[str] = ()) -> None:
        """Store (or replace) the adapter ``name``. A user adapter's user must exist
        (:class:`~tailor.store.contract.UnknownUserError`); a shared one's ``contributors`` the store does not
        hold are left out."""
        with self.transaction() as connection:
            if name[0] == "user":
                self._hold_user(connection, name[1])
                connection.execute(self._sql(
                    f"INSERT INTO adapters (user_id, task, kind, prompt, {_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, task, kind, prompt) DO UPDATE SET "
                    + ", ".join(f"{column} = excluded.{column}" for column in _COLUMNS.split(", "))),
                    (*name[1:], *row))
                return
            # Delete first: an upsert would keep the old contributor rows.
            connection.execute(self._sql(f"DELETE FROM shared_adapters WHERE {_SHARED_MATCH}"), name)
            connection.execute(self._sql(
                f"INSERT INTO shared_adapters (scope, owner, task, kind, prompt, {_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"), (*name, *row))
            self._execute_many(connection, self._sql(
                "INSERT INTO adapter_contributors (scope, owner, task, kind, prompt, user_id) "
                "SELECT ?, ?, ?, ?, ?, user_id FROM users WHERE user_id = ? ON CONFLICT DO NOTHING"),
                [(*name, user_id) for user_id in dict.fromkeys(contributors)])

    def delete_adapter(self, name: AdapterName) -> bool:
        """Delete one adapter; return whether it existed."""
        table, match, values = _match(name)
        with self.transaction() as connection:
            return connection.execute(self._sql(f"DELETE FROM {table} WHERE {match}"), values).rowcount > 0

    def delete_user_adapters(self, user_id: str) -> int:
        """Delete the user's own adapters and the shared ones they contributed to; return how many went."""
        with self.transaction() as connection:
            shared = connection.execute(self._sql(
                "SELECT COUNT(DISTINCT scope || '/' || owner || '/' || task || '/' || kind || '/' || prompt) "
                "FROM adapter_contributors WHERE user_id = ?"), (user_id,)).fetchone()[0]
            connection.execute(self._sql("DELETE FROM adapter_contributors WHERE user_id = ?"), (user_id,))
            own = connection.execute(self._sql("DELETE FROM adapters WHERE user_id = ?"), (user_id,)).rowcount
            return int(own) + int(shared)

    def get_adapter(self, name: AdapterName, *, weights: bool) -> tuple[Any, ...] | None:
        """``(config, base_model, metadata, digest, weights or their size in bytes,
        created_at)`` of the adapter, or ``None``."""
        table, match, values = _match(name)
        columns = _COLUMNS if weights else _INFO_COLUMNS
        with self._reading() as connection:
            row = connection.execute(self._sql(f"SELECT {columns} FROM {table} WHERE {match}"), values).fetchone()
        if row is None:
            return None
        return (*row[:4], bytes(row[4]) if weights else int(row[4]), row[5])

    def list_adapters(self) -> list[tuple[Any, ...]]:
        """Every adapter without its weights: ``(scope, owner, task, kind, prompt, config,
        base_model, metadata, digest, size, created_at)``, user adapters first."""
        with self._reading() as connection:
            rows = [("user", *row) for row in connection.execute(
                f"SELECT user_id, task, kind, prompt, {_INFO_COLUMNS} FROM adapters")]
            rows += [tuple(row) for row in connection.execute(
                f"SELECT scope, owner, task, kind, prompt, {_INFO_COLUMNS} FROM shared_adapters")]
        return rows

    def adapter_contributors(self, name: AdapterName) -> list[str]:
        """The users a shared adapter was trained on, sorted."""
        with self._reading() as connection:
            return [row[0] for row in connection.execute(self._sql(
                f"SELECT user_id FROM adapter_contributors WHERE {_SHARED_MATCH} ORDER BY user_id"), name)]

