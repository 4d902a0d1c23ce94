"""The profile store contract: what every store (SQLite, in-memory, PostgreSQL) provides.

A store holds, per ``user_id``, that user's history records (in insertion order) and
attributes, and the data derived from them: record embeddings, artifacts (an LLM-written
profile summary, a style note) and the user's persona membership. Every read is scoped to
one user, except the persona table, which is cross-user by nature and named so. The store
knows nothing of prompts or tasks; a model is only a name under which vectors are kept.

Derived data follows the user: deleting a user deletes their embeddings, artifacts and
persona membership; replacing a record's fields deletes that record's embeddings (the text
they were computed from is gone); and :meth:`ProfileStore.profile_version` moves on
whenever the user's records change, so a stored artifact can tell whether it is stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tailor.types import HistoryRecord, Persona, Profile


class UnknownUserError(KeyError):
    """Raised when a store is asked about a user it does not hold."""

    def __init__(self, user_id: str) -> None:
        super().__init__(user_id)
        self.user_id = user_id

    def __str__(self) -> str:
        return f"unknown user_id {self.user_id!r}"


class StoreUnavailableError(RuntimeError):
    """The store's database cannot be reached now (a restart, a network fault, every
    connection busy); the same call may succeed later. The server answers 503."""


@dataclass(frozen=True)
class Artifact:
    """Something derived from one user's profile and kept with it, such as a profile summary.

    ``kind`` names what it is (``"summary"``), ``key`` tells apart artifacts of one kind
    (the model and prompt that produced it); ``value`` is JSON-ready data.
    ``profile_version`` is the user's :meth:`ProfileStore.profile_version` the artifact was
    computed from: when the store's is larger, the artifact is stale. ``created_at`` is
    an ISO-8601 UTC timestamp.
    """

    kind: str
    key: str
    value: Mapping[str, Any] = field(default_factory=dict)
    profile_version: int = 0
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "value": dict(self.value),
                "profile_version": self.profile_version, "created_at": self.created_at}


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
        """Everything held about the user, as JSON-ready data.

        ``user_id``, ``attributes`` and ``records`` always; derived data only where the
        store holds some: ``embeddings`` (record count per model), ``artifacts`` (each as
        :meth:`Artifact.to_dict`) and ``persona_id``.
        """
        ...

    def profile_version(self, user_id: str) -> int:
        """A counter that grows whenever the user's records change (a record added, or
        replaced with other fields or date); re-adding identical records leaves it alone.
        Raises :class:`UnknownUserError`."""
        ...

    # -- record embeddings ----------------------------------------------------------------

    def put_embeddings(self, user_id: str, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store one vector per record id under ``model``, replacing any held before.

        Every id must be a record of the user (ValueError naming the first that is not);
        vectors are 1-D, finite, and of one dimension per user and model; they are kept as
        float32. Raises :class:`UnknownUserError`.
        """
        ...

    def get_embeddings(self, user_id: str, model: str) -> tuple[list[str], np.ndarray]:
        """The record ids that have a ``model`` vector, in profile order, and the float32
        matrix of those vectors (one row each; shape ``(0, 0)`` when there is none).
        Raises :class:`UnknownUserError`."""
        ...

    def delete_embeddings(self, user_id: str, model: str | None = None) -> int:
        """Delete the user's vectors of ``model`` (of every model when ``None``); return how many went."""
        ...

    # -- artifacts --------------------------------------------------------------------------

    def put_artifact(self, user_id: str, kind: str, key: str, value: Mapping[str, Any],
                     profile_version: int) -> Artifact:
        """Store (or replace) the user's artifact ``(kind, key)``; return it as stored.
        ``value`` must be JSON-ready. Raises :class:`UnknownUserError`."""
        ...

    def get_artifact(self, user_id: str, kind: str, key: str) -> Artifact | None:
        """The artifact, or ``None``. Raises :class:`UnknownUserError`."""
        ...

    def list_artifacts(self, user_id: str) -> list[Artifact]:
        """The user's artifacts, sorted by kind then key. Raises :class:`UnknownUserError`."""
        ...

    def delete_artifacts(self, user_id: str, kind: str | None = None) -> int:
        """Delete the user's artifacts of ``kind`` (all when ``None``); return how many went."""
        ...

    # -- personas (cross-user) ----------------------------------------------------------------

    def put_personas(self, personas: Sequence[Persona], memberships: Mapping[str, str]) -> None:
        """Replace every persona and every membership at once.

        ``memberships`` maps a user id (who must exist) to one of ``personas``' ids; users
        left out belong to no persona. Persona ids must be unique.
        """
        ...

    def list_personas(self) -> list[Persona]:
        """The personas in the order they were given to :meth:`put_personas`."""
        ...

    def persona_of(self, user_id: str) -> str | None:
        """The id of the user's persona; ``None`` when they have none or the store does not hold them."""
        ...

    def delete_user(self, user_id: str) -> bool:
        """Delete the user and everything derived from them; return whether they existed."""
        ...

    def close(self) -> None: ...
