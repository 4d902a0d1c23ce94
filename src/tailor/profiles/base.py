"""The profile store contract: what every store (SQLite, in-memory, PostgreSQL) provides.

A store holds, per ``user_id``, that user's history records (in insertion order) and
attributes. Every read is scoped to one user. The store knows nothing of prompts,
tasks or models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from tailor.types import HistoryRecord, Profile


class UnknownUserError(KeyError):
    """Raised when a store is asked about a user it does not hold."""

    def __init__(self, user_id: str) -> None:
        super().__init__(user_id)
        self.user_id = user_id

    def __str__(self) -> str:
        return f"unknown user_id {self.user_id!r}"


@runtime_checkable
class ProfileStore(Protocol):
    """Per-user storage of history records and attributes.

    Writes are atomic: a batch is stored whole or not at all. Adding a record whose id
    the user already holds replaces it, so re-ingesting the same data changes nothing.
    """

    def add_records(self, user_id: str, records: Iterable[HistoryRecord]) -> int:
        """Store ``records`` under ``user_id`` (creating the user); return how many were new."""
        ...

    def add_profiles(self, profiles: Iterable[Profile]) -> int:
        """Store many users' records and attributes in one transaction; return how many records were new."""
        ...

    def set_attributes(self, user_id: str, attributes: Mapping[str, str]) -> None:
        """Merge ``attributes`` into the user's attributes (creating the user)."""
        ...

    def get_profile(self, user_id: str) -> Profile:
        """The user's profile; raises :class:`UnknownUserError` if the store does not hold them."""
        ...

    def has_user(self, user_id: str) -> bool: ...

    def list_users(self) -> list[str]:
        """All user ids, sorted."""
        ...

    def count_records(self, user_id: str) -> int: ...

    def export_user(self, user_id: str) -> dict[str, Any]:
        """Everything held about the user, as JSON-ready data."""
        ...

    def delete_user(self, user_id: str) -> bool:
        """Delete the user and everything derived from them; return whether they existed."""
        ...

    def close(self) -> None: ...
