"""The write methods every profile store shares (``add_records``, ``add_profiles``,
``set_attributes``), and its use as a context manager, in :class:`StoreBase`.

Each write method checks its arguments into :class:`~tailor.store.checks.UserBatch`
values before anything is stored, then hands them to the store's ``_write``, which stores
them whole or not at all. So every store rejects the same inputs with the same messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from tailor.store.checks import UserBatch, check_add_records, check_set_attributes, user_batches
from tailor.types import HistoryRecord, Profile

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs 3.11; annotations are never evaluated here


class StoreBase:
    """The base of the stores: a subclass provides ``_write`` and ``close``."""

    if TYPE_CHECKING:
        def _write(self, batches: Sequence[UserBatch]) -> int:
            """Store the checked batches whole in one step; return how many records were new."""
            ...

        def close(self) -> None: ...

    def add_records(self, user_id: str, records: Iterable[HistoryRecord]) -> int:
        """Store ``records`` under ``user_id`` (creating the user); return how many were new."""
        batch = check_add_records(user_id, records)
        self._check_batch_text(batch, f"add_records(user_id={user_id!r})")
        return self._write([batch])

    def add_profiles(self, profiles: Iterable[Profile]) -> int:
        """Store many users' records and attributes in one transaction; return how many records were new."""
        batches = user_batches(profiles, "add_profiles")
        for batch in batches:
            self._check_batch_text(batch, f"add_profiles(user_id={batch.user_id!r})")
        return self._write(batches)

    def set_attributes(self, user_id: str, attributes: Mapping[str, str]) -> None:
        """Merge ``attributes`` into the user's attributes (creating the user)."""
        batch = check_set_attributes(user_id, attributes)
        self._check_batch_text(batch, f"set_attributes(user_id={user_id!r})")
        self._write([batch])

    def _check_batch_text(self, batch: UserBatch, where: str) -> None:
        """Refuse text in ``batch`` that the store cannot hold. Any string will do here;
        the PostgreSQL store refuses the NUL character."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


__all__ = ["StoreBase"]
