"""Load the profiles carried by task examples into a profile store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tailor.store.contract import ProfileStore
from tailor.types import HistoryRecord, Profile, TaskExample

__all__ = ["IngestReport", "ingest_examples"]


@dataclass(frozen=True)
class IngestReport:
    """What :func:`ingest_examples` stored.

    ``users``: distinct users in the examples. ``records_total``: distinct
    (user, record id) pairs in the examples. ``records_new``: how many of those the store
    did not hold before (0 when the same examples are ingested again).
    """

    users: int
    records_new: int
    records_total: int


def ingest_examples(store: ProfileStore, examples: Iterable[TaskExample]) -> IngestReport:
    """Store each example's profile under ``example.user_id``, in one ``add_profiles`` call.

    Examples of the same user (LaMP repeats a user's whole profile in each of their
    examples) are merged by record id before writing, so each record is written once; for
    a repeated id the last example's version wins and the first one's place is kept, as a
    store does when a record is re-added. Attributes are merged the same way. One call
    means one transaction: either every example's profile is stored or none is.
    """
    records_by_user: dict[str, dict[str, HistoryRecord]] = {}
    attributes_by_user: dict[str, dict[str, str]] = {}
    for index, example in enumerate(examples):
        if not isinstance(example, TaskExample):
            raise TypeError(f"ingest_examples: examples[{index}] is a {type(example).__name__}, expected TaskExample")
        where = f"ingest_examples: examples[{index}] (id={example.id!r})"
        if not isinstance(example.user_id, str) or not example.user_id:
            raise ValueError(f"{where}: user_id must be a non-empty string, got {example.user_id!r}")
        if not isinstance(example.profile, Profile):
            raise TypeError(f"{where}: profile is a {type(example.profile).__name__}, expected Profile")
        records = records_by_user.setdefault(example.user_id, {})
        for position, record in enumerate(example.profile.records):
            if not isinstance(record, HistoryRecord):
                raise TypeError(
                    f"{where}: profile.records[{position}] is a {type(record).__name__}, expected HistoryRecord"
                )
            records[record.id] = record
        attributes_by_user.setdefault(example.user_id, {}).update(example.profile.attributes)

    profiles = [
        Profile(user_id, tuple(records.values()), attributes_by_user[user_id])
        for user_id, records in records_by_user.items()
    ]
    records_new = store.add_profiles(profiles)
    return IngestReport(
        users=len(profiles),
        records_new=records_new,
        records_total=sum(len(profile.records) for profile in profiles),
    )
