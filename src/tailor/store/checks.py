"""Argument checks shared by every profile store.

Each store validates a whole batch here before it writes anything, so "a batch is stored
whole or not at all" holds by construction, and every store rejects the same inputs with
the same messages (the contract suite relies on that).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tailor.types import HistoryRecord, Profile


@dataclass(frozen=True)
class UserBatch:
    """One user's share of a write: records in the order given, attributes to merge."""

    user_id: str
    records: tuple[HistoryRecord, ...]
    attributes: Mapping[str, str]


def check_user_id(user_id: object, where: str) -> str:
    """``user_id`` if it is a non-empty string; otherwise a ValueError naming ``where``."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"{where}: user_id must be a non-empty string, got {user_id!r}")
    return user_id


def check_records(records: object, where: str) -> tuple[HistoryRecord, ...]:
    """The records as a tuple, each checked to be a :class:`HistoryRecord`."""
    # A lone record or a string is iterable (or nearly so) and would fail confusingly later.
    if isinstance(records, (HistoryRecord, str, bytes, Mapping)) or not isinstance(records, Iterable):
        raise TypeError(f"{where}: records must be an iterable of HistoryRecord, got {type(records).__name__}")
    checked = tuple(records)
    for index, record in enumerate(checked):
        if not isinstance(record, HistoryRecord):
            raise TypeError(f"{where}: records[{index}] is a {type(record).__name__}, expected HistoryRecord")
    return checked


def check_attributes(attributes: object, where: str) -> dict[str, str]:
    """A copy of ``attributes``, checked to map non-empty strings to strings."""
    if not isinstance(attributes, Mapping):
        raise TypeError(f"{where}: attributes must be a mapping of str to str, got {type(attributes).__name__}")
    checked: dict[str, str] = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"{where}: attribute names must be non-empty strings, got {key!r}")
        if not isinstance(value, str):
            raise TypeError(f"{where}: attribute {key!r} must be a string, got {type(value).__name__}")
        checked[key] = value
    return checked


def user_batches(profiles: object, where: str) -> list[UserBatch]:
    """Check ``profiles`` and merge those that share a user, keeping first-seen order.

    Records of a repeated user are concatenated (a repeated record id then behaves as a
    re-add: later fields win, first position stays); attributes are merged, later wins.
    """
    if isinstance(profiles, (Profile, str, bytes)) or not isinstance(profiles, Iterable):
        raise TypeError(f"{where}: profiles must be an iterable of Profile, got {type(profiles).__name__}")
    records: dict[str, list[HistoryRecord]] = {}
    attributes: dict[str, dict[str, str]] = {}
    for index, profile in enumerate(profiles):
        if not isinstance(profile, Profile):
            raise TypeError(f"{where}: profiles[{index}] is a {type(profile).__name__}, expected Profile")
        place = f"{where}: profiles[{index}] (user_id={profile.user_id!r})"
        user_id = check_user_id(profile.user_id, place)
        records.setdefault(user_id, []).extend(check_records(profile.records, place))
        attributes.setdefault(user_id, {}).update(check_attributes(profile.attributes, place))
    return [UserBatch(user_id, tuple(records[user_id]), attributes[user_id]) for user_id in records]


def check_add_records(user_id: object, records: object) -> UserBatch:
    """The checked batch of ``add_records(user_id, records)``."""
    where = f"add_records(user_id={user_id!r})"
    return UserBatch(check_user_id(user_id, where), check_records(records, where), {})


def check_set_attributes(user_id: object, attributes: object) -> UserBatch:
    """The checked batch of ``set_attributes(user_id, attributes)``."""
    where = f"set_attributes(user_id={user_id!r})"
    return UserBatch(check_user_id(user_id, where), (), check_attributes(attributes, where))
