"""A profile store held in a dict: the fake shipped for users' tests.

It behaves exactly like :class:`~tailor.store.sqlite.SQLiteProfileStore` (the same
contract suite runs over both) but keeps nothing after the process ends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tailor.store.checks import (
    UserBatch,
    check_name,
    check_personas,
    check_profile_version,
    check_user_id,
    check_vectors,
    dimension_mismatch,
    encode_value,
    export_profile,
    stack,
    unknown_record,
    utc_now,
)
from tailor.store.contract import Artifact, UnknownUserError
from tailor.store.writes import StoreBase
from tailor.types import HistoryRecord, Persona, Profile

__all__ = ["InMemoryProfileStore"]


@dataclass
class _UserData:
    # A dict keeps first-insertion order when a key is reassigned, which is exactly the
    # "re-adding a record keeps its position" rule.
    records: dict[str, HistoryRecord] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    version: int = 0
    # model -> record id -> vector; derived data lives inside the user's entry, so deleting
    # the user deletes it by construction.
    embeddings: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    artifacts: dict[tuple[str, str], Artifact] = field(default_factory=dict)


def _copy(record: HistoryRecord) -> HistoryRecord:
    # Records carry the caller's fields mapping; copying on the way in and out keeps a
    # caller's later mutation from reaching into the store (SQLite copies by nature).
    return HistoryRecord(record.id, dict(record.fields), record.date)


def _copy_artifact(artifact: Artifact) -> Artifact:
    return Artifact(artifact.kind, artifact.key, json.loads(json.dumps(dict(artifact.value))),
                    artifact.profile_version, artifact.created_at)


class InMemoryProfileStore(StoreBase):
    """A :class:`~tailor.store.contract.ProfileStore` in process memory, safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._users: dict[str, _UserData] | None = {}
        self._personas: tuple[Persona, ...] = ()
        self._memberships: dict[str, str] = {}

    def __repr__(self) -> str:
        return "InMemoryProfileStore()"

    def _open_users(self) -> dict[str, _UserData]:
        if self._users is None:
            raise RuntimeError(f"{self!r} is closed")
        return self._users

    # -- writes ---------------------------------------------------------------------------

    def _write(self, batches: Sequence[UserBatch]) -> int:
        # Batches arrive fully checked and nothing below can fail, so a batch is applied
        # whole or (having failed its checks earlier) not at all.
        new = 0
        with self._lock:
            users = self._open_users()
            for batch in batches:
                data = users.setdefault(batch.user_id, _UserData())
                data.attributes.update(batch.attributes)
                changed = False
                for record in batch.records:
                    old = data.records.get(record.id)
                    if old is None:
                        new += 1
                    elif old.fields != record.fields:
                        for vectors in data.embeddings.values():  # computed from text that is gone
                            vectors.pop(record.id, None)
                    changed = changed or old is None or old.fields != record.fields or old.date != record.date
                    data.records[record.id] = _copy(record)
                if changed:
                    data.version += 1
        return new

    def delete_user(self, user_id: str) -> bool:
        """Delete the user and everything held about them; return whether they existed."""
        check_user_id(user_id, "delete_user")
        with self._lock:
            persona_id = self._memberships.pop(user_id, None)
            # The persona's description was written from its members' records: emptied.
            self._personas = tuple(Persona(p.persona_id, "", p.centroid, p.size, p.metadata)
                                   if p.persona_id == persona_id else p for p in self._personas)
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
        """``{"user_id", "attributes", "records"}``, records in LaMP's profile-item layout,
        plus ``embeddings``, ``artifacts`` and ``persona_id`` where the store holds any."""
        with self._lock:
            profile = self.get_profile(user_id)
            data = self._user(user_id, "export_user")
            embeddings = {model: len(vectors) for model, vectors in data.embeddings.items() if vectors}
            return export_profile(profile, embeddings, self.list_artifacts(user_id), self._memberships.get(user_id))

    def profile_version(self, user_id: str) -> int:
        """Grows whenever the user's records change; raises :class:`UnknownUserError`."""
        with self._lock:
            return self._user(user_id, "profile_version").version

    # -- record embeddings ------------------------------------------------------------------

    def put_embeddings(self, user_id: str, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store one vector per record id under ``model`` (see the ProfileStore contract)."""
        where = f"put_embeddings(user_id={user_id!r})"
        check_name(model, "model", where)
        checked, dim = check_vectors(vectors, where)
        with self._lock:
            data = self._user(user_id, "put_embeddings")
            for record_id in checked:
                if record_id not in data.records:
                    raise unknown_record(where, record_id)
            held = data.embeddings.get(model)
            if dim is not None and held:
                stored = next(iter(held.values())).size
                if stored != dim:
                    raise dimension_mismatch(where, model, stored, dim)
            data.embeddings.setdefault(model, {}).update((i, v.copy()) for i, v in checked.items())

    def get_embeddings(self, user_id: str, model: str) -> tuple[list[str], np.ndarray]:
        """Record ids with a ``model`` vector, in profile order, and their float32 matrix."""
        check_name(model, "model", f"get_embeddings(user_id={user_id!r})")
        with self._lock:
            data = self._user(user_id, "get_embeddings")
            held = data.embeddings.get(model, {})
            ids = [record_id for record_id in data.records if record_id in held]
            return ids, stack([held[record_id] for record_id in ids])

    def delete_embeddings(self, user_id: str, model: str | None = None) -> int:
        """Delete the user's vectors of ``model`` (all models when ``None``); return how many went."""
        check_user_id(user_id, "delete_embeddings")
        if model is not None:
            check_name(model, "model", f"delete_embeddings(user_id={user_id!r})")
        with self._lock:
            data = self._open_users().get(user_id)
            if data is None:
                return 0
            models = list(data.embeddings) if model is None else [model]
            return sum(len(data.embeddings.pop(name, {})) for name in models)

    # -- artifacts ----------------------------------------------------------------------------

    def put_artifact(self, user_id: str, kind: str, key: str, value: Mapping[str, Any],
                     profile_version: int) -> Artifact:
        """Store (or replace) the user's artifact ``(kind, key)``; return it as stored."""
        where = f"put_artifact(user_id={user_id!r})"
        check_name(kind, "kind", where)
        check_name(key, "key", where)
        # Through JSON, as SQLite stores it: the caller's later changes cannot reach in.
        stored_value = json.loads(encode_value(value, where))
        check_profile_version(profile_version, where)
        with self._lock:
            data = self._user(user_id, "put_artifact")
            artifact = Artifact(kind, key, stored_value, profile_version, utc_now())
            data.artifacts[(kind, key)] = artifact
        return _copy_artifact(artifact)

    def get_artifact(self, user_id: str, kind: str, key: str) -> Artifact | None:
        """The artifact, or ``None``; raises :class:`UnknownUserError`."""
        with self._lock:
            artifact = self._user(user_id, "get_artifact").artifacts.get((kind, key))
            return None if artifact is None else _copy_artifact(artifact)

    def list_artifacts(self, user_id: str) -> list[Artifact]:
        """The user's artifacts, sorted by kind then key; raises :class:`UnknownUserError`."""
        with self._lock:
            artifacts = self._user(user_id, "list_artifacts").artifacts
            return [_copy_artifact(artifacts[pair]) for pair in sorted(artifacts)]

    def delete_artifacts(self, user_id: str, kind: str | None = None) -> int:
        """Delete the user's artifacts of ``kind`` (all when ``None``); return how many went."""
        check_user_id(user_id, "delete_artifacts")
        with self._lock:
            data = self._open_users().get(user_id)
            if data is None:
                return 0
            doomed = [pair for pair in data.artifacts if kind is None or pair[0] == kind]
            for pair in doomed:
                del data.artifacts[pair]
            return len(doomed)

    # -- personas (cross-user) ------------------------------------------------------------------

    def put_personas(self, personas: Sequence[Persona], memberships: Mapping[str, str]) -> None:
        """Replace every persona and every membership at once."""
        checked, members = check_personas(personas, memberships, "put_personas")
        with self._lock:
            users = self._open_users()
            for user_id in members:
                if user_id not in users:
                    raise UnknownUserError(user_id)
            self._personas = tuple(
                Persona(p.persona_id, p.description, p.centroid, p.size, json.loads(json.dumps(dict(p.metadata))))
                for p in checked
            )
            self._memberships = members

    def list_personas(self) -> list[Persona]:
        """The personas in the order they were given."""
        with self._lock:
            self._open_users()
            return [Persona(p.persona_id, p.description, p.centroid, p.size, json.loads(json.dumps(dict(p.metadata))))
                    for p in self._personas]

    def persona_of(self, user_id: str) -> str | None:
        """The id of the user's persona, or ``None``."""
        check_user_id(user_id, "persona_of")
        with self._lock:
            self._open_users()
            return self._memberships.get(user_id)

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Drop everything; further calls raise RuntimeError. Closing twice is harmless."""
        with self._lock:
            self._users = None
            self._personas, self._memberships = (), {}
