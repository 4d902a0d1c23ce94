"""Argument checks shared by every profile store, and the encodings of what they check.

Each store validates a whole write here (records and attributes; embeddings, artifacts,
personas) before it touches anything, so "a batch is stored whole or not at all" holds by
construction, and every store rejects the same inputs with the same messages (the contract
suites rely on that). The stores also share here how checked values are stored (persona
rows, centroids, JSON values, the time) and the layout of ``export_user``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from tailor.types import HistoryRecord, Persona, Profile


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


# -- derived data: embeddings, artifacts, personas ------------------------------------------


def utc_now() -> str:
    """The current time as the stores write it: ISO-8601, UTC, whole seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_name(value: object, what: str, where: str) -> str:
    """``value`` if it is a non-empty string (a model, a kind, a key)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: {what} must be a non-empty string, got {value!r}")
    return value


def check_vectors(vectors: object, where: str) -> tuple[dict[str, np.ndarray], int | None]:
    """The vectors as little-endian float32 arrays keyed by record id, and their one dimension.

    The dimension is ``None`` when ``vectors`` is empty.
    """
    if not isinstance(vectors, Mapping):
        raise TypeError(f"{where}: vectors must map record ids to 1-D arrays, got {type(vectors).__name__}")
    checked: dict[str, np.ndarray] = {}
    dim: int | None = None
    for record_id, vector in vectors.items():
        if not isinstance(record_id, str) or not record_id:
            raise ValueError(f"{where}: record ids must be non-empty strings, got {record_id!r}")
        try:
            array = np.asarray(vector, dtype="<f4")
        except (TypeError, ValueError) as error:
            raise TypeError(f"{where}: vector of record {record_id!r} is not numeric ({error})") from None
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"{where}: vector of record {record_id!r} must be 1-D and non-empty, "
                             f"got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{where}: vector of record {record_id!r} holds NaN or infinity")
        if dim is None:
            dim = int(array.size)
        elif array.size != dim:
            raise ValueError(f"{where}: vector of record {record_id!r} has dimension {array.size}, "
                             f"the others {dim}")
        checked[record_id] = array
    return checked, dim


def dimension_mismatch(where: str, model: str, stored: int, given: int) -> ValueError:
    return ValueError(f"{where}: model {model!r} vectors of this user have dimension {stored}, got {given}; "
                      "delete_embeddings first to change a model's dimension")


def unknown_record(where: str, record_id: str) -> ValueError:
    return ValueError(f"{where}: record {record_id!r} is not in the user's profile")


def encode_value(value: object, where: str) -> str:
    """``value`` as JSON text: a mapping with string keys and JSON-ready contents."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{where}: value must be a mapping, got {type(value).__name__}")
    try:
        return json.dumps(dict(value), ensure_ascii=False, allow_nan=False, sort_keys=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: value must be JSON-ready ({error})") from None


def check_profile_version(version: object, where: str) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"{where}: profile_version must be a non-negative integer, got {version!r}")
    return version


def check_personas(personas: object, memberships: object, where: str) -> tuple[tuple[Persona, ...], dict[str, str]]:
    """The personas (ids unique, metadata JSON-ready) and memberships (to those ids)."""
    if isinstance(personas, (Persona, str, bytes)) or not isinstance(personas, Sequence):
        raise TypeError(f"{where}: personas must be a sequence of Persona, got {type(personas).__name__}")
    seen: set[str] = set()
    for index, persona in enumerate(personas):
        if not isinstance(persona, Persona):
            raise TypeError(f"{where}: personas[{index}] is a {type(persona).__name__}, expected Persona")
        if persona.persona_id in seen:
            raise ValueError(f"{where}: persona id {persona.persona_id!r} is given twice")
        seen.add(persona.persona_id)
        if not all(math.isfinite(value) for value in persona.centroid):
            raise ValueError(f"{where}: persona {persona.persona_id!r} has a centroid with NaN or infinity")
        encode_value(persona.metadata, f"{where}: persona {persona.persona_id!r} metadata")
    if not isinstance(memberships, Mapping):
        raise TypeError(f"{where}: memberships must map user ids to persona ids, got {type(memberships).__name__}")
    checked: dict[str, str] = {}
    for user_id, persona_id in memberships.items():
        if not isinstance(user_id, str) or not user_id:
            raise ValueError(f"{where}: user ids must be non-empty strings, got {user_id!r}")
        if persona_id not in seen:
            raise ValueError(f"{where}: user {user_id!r} is assigned to unknown persona {persona_id!r}; "
                             f"known: {', '.join(sorted(seen)) or 'none'}")
        checked[user_id] = persona_id
    return tuple(personas), checked


def decode_persona(persona_id: str, description: str, centroid: bytes, size: int, metadata: str) -> Persona:
    """A persona from its stored columns (centroid as little-endian float64 bytes, metadata as JSON)."""
    values = np.frombuffer(centroid, dtype="<f8").tolist() if centroid else []
    return Persona(persona_id, description, tuple(values), size, json.loads(metadata))


def encode_centroid(persona: Persona) -> bytes:
    # float64 keeps a Python float exact, so a persona compares equal after a round trip.
    return np.asarray(persona.centroid, dtype="<f8").tobytes()


def persona_rows(personas: Sequence[Persona]) -> list[tuple[str, int, str, bytes, int, str]]:
    """The ``personas`` table's rows: id, position, description, centroid, size, metadata (JSON)."""
    return [(p.persona_id, position, p.description, encode_centroid(p), p.size,
             json.dumps(dict(p.metadata), ensure_ascii=False)) for position, p in enumerate(personas)]


def stack(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """Rows into one float32 matrix; ``(0, 0)`` for no rows."""
    if not vectors:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(vectors).astype(np.float32, copy=False)


def export_derived(embeddings: Mapping[str, int], artifacts: Sequence[Any], persona_id: str | None) -> dict[str, Any]:
    """The derived-data part of ``export_user``: only the sections that hold something."""
    out: dict[str, Any] = {}
    if embeddings:
        out["embeddings"] = dict(sorted(embeddings.items()))
    if artifacts:
        out["artifacts"] = [artifact.to_dict() for artifact in artifacts]
    if persona_id is not None:
        out["persona_id"] = persona_id
    return out


def export_profile(
    profile: Profile, embeddings: Mapping[str, int], artifacts: Sequence[Any], persona_id: str | None
) -> dict[str, Any]:
    """What ``export_user`` returns: the profile, records in LaMP's profile-item layout, then
    the derived sections that hold something (:func:`export_derived`)."""
    return {
        "user_id": profile.user_id,
        "attributes": dict(profile.attributes),
        "records": [record.to_dict() for record in profile.records],
        **export_derived(embeddings, artifacts, persona_id),
    }
