"""A profile store held in a dict: the fake shipped for users' tests.

It behaves exactly like :class:`~tailor.profiles.sqlite.SQLiteProfileStore` (the same
contract suite runs over both) but keeps nothing after the process ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tailor.profiles._batch import UserBatch, check_attributes, check_records, check_user_id, user_batches
from tailor.profiles.base import UnknownUserError
from tailor.types import HistoryRecord, Profile

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs 3.11; annotations are never evaluated here

__all__ = ["InMemoryProfileStore"]


@dataclass
class _UserData:
    # A dict keeps first-insertion order when a key is reassigned, which is exactly the
    # "re-adding a record keeps its position" rule.
    records: dict[str, HistoryRecord] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


def _copy(record: HistoryRecord) -> HistoryRecord:
    # Records carry the caller's fields mapping; copying on the way in and out keeps a
    # caller's later mutation from reaching into the store (SQLite copies by nature).
    return HistoryRecord(record.id, dict(record.fields), record.date)


class InMemoryProfileStore:
    """A :class:`~tailor.profiles.base.ProfileStore` in process memory, safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._users: dict[str, _UserData] | None = {}

    def __repr__(self) -> str:
        return "InMemoryProfileStore()"

    def _open_users(self) -> dict[str, _UserData]:
        if self._users is None:
            raise RuntimeError(f"{self!r} is closed")
        return self._users

    # -- writes ---------------------------------------------------------------------------

    def add_records(self, user_id: str, records: Iterable[HistoryRecord]) -> int:
        """Store ``records`` under ``user_id`` (creating the user); return how many were new."""
        where = f"add_records(user_id={user_id!r})"
        return self._write([UserBatch(check_user_id(user_id, where), check_records(records, where), {})])

    def add_profiles(self, profiles: Iterable[Profile]) -> int:
        """Store many users' records and attributes at once; return how many records were new."""
        return self._write(user_batches(profiles, "add_profiles"))

    def set_attributes(self, user_id: str, attributes: Mapping[str, str]) -> None:
        """Merge ``attributes`` into the user's attributes (creating the user)."""
        where = f"set_attributes(user_id={user_id!r})"
        self._write([UserBatch(check_user_id(user_id, where), (), check_attributes(attributes, where))])

    def _write(self, batches: Sequence[UserBatch]) -> int:
        # Batches arrive fully checked and nothing below can fail, so a batch is applied
        # whole or (having failed its checks earlier) not at all.
        new = 0
        with self._lock:
            users = self._open_users()
            for batch in batches:
                data = users.setdefault(batch.user_id, _UserData())
                data.attributes.update(batch.attributes)
                for record in batch.records:
                    if record.id not in data.records:
                        new += 1
                    data.records[record.id] = _copy(record)
        return new

    def delete_user(self, user_id: str) -> bool:
        """Delete the user and everything held about them; return whether they existed."""
        check_user_id(user_id, "delete_user")
        with self._lock:
            return self._open_users().pop(user_id, None) is not None

    # -- reads ----------------------------------------------------------------------------

    def _user(self, user_id: str, where: str) -> _UserData:
        check_user_id(user_id, where)
        data = self._open_users().get(user_id)
        if data is None:
            raise UnknownUserError(user_id)
        return data

    def get_profile(self, user_id: str) -> Profile:
        """The user's profile, records in insertion order; raises :class:`UnknownUserError`."""
        with self._lock:
            data = self._user(user_id, "get_profile")
            records = tuple(_copy(record) for record in data.records.values())
            attributes = dict(sorted(data.attributes.items()))
        return Profile(user_id, records, attributes)

    def has_user(self, user_id: str) -> bool:
        check_user_id(user_id, "has_user")
        with self._lock:
            return user_id in self._open_users()

    def list_users(self) -> list[str]:
        """All user ids, sorted."""
        with self._lock:
            return sorted(self._open_users())

    def count_records(self, user_id: str) -> int:
        """How many records the user holds; raises :class:`UnknownUserError`."""
        with self._lock:
            return len(self._user(user_id, "count_records").records)

    def export_user(self, user_id: str) -> dict[str, Any]:
        """``{"user_id", "attributes", "records"}``, records in LaMP's profile-item layout."""
        profile = self.get_profile(user_id)
        return {
            "user_id": profile.user_id,
            "attributes": dict(profile.attributes),
            "records": [record.to_dict() for record in profile.records],
        }

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Drop everything; further calls raise RuntimeError. Closing twice is harmless."""
        with self._lock:
            self._users = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
