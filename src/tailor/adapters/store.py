"""The adapter store: adapter weights kept inside the profile store (SQLite or PostgreSQL).

Three tables, declared with the store's schema (:mod:`tailor.store.migrations`, version 3)
and following its derived data rule (see :mod:`tailor.store.sqlite`)::

    adapters(user_id -> users ON DELETE CASCADE, task, kind, prompt, config, base_model,
             metadata, weights BLOB, created_at, PRIMARY KEY (user_id, task, kind, prompt))
    shared_adapters(scope 'persona'|'global', owner, task, kind, prompt, config, base_model,
                    metadata, weights BLOB, created_at, PRIMARY KEY (scope, owner, task, kind, prompt))
    adapter_contributors((scope, owner, task, kind, prompt) -> shared_adapters ON DELETE CASCADE,
                         user_id -> users ON DELETE CASCADE)

``prompt`` names the prompt an adapter was trained on (``none``, or a retrieval method with
its layout and k, ``bm25:lamp:k=1``): an adapter serves the prompt it learned, so one user
can hold one adapter per prompt (see :mod:`tailor.adapters.prompts`). A file made before
that column existed is rebuilt by the store's migration, its adapters under ``none``.

Why the database and not a folder of files: ``delete_user`` then removes a user's adapter
in the same transaction as their records, by cascade, in every process that opens the
file, with no hook to forget; an adapter is small (hundreds of KB) so a BLOB costs
nothing; and a saved adapter is atomic with its config and base-model identity.

Persona and global adapters are trained on many users' histories, so they are not rows of
one user. Their contributors are listed, and a trigger deletes a shared adapter as soon as
one contributor is deleted: deleting a user deletes everything derived from them,
pooled adapters included. ``tailor train-adapter`` then retrains it (and, since user
adapters record the adapter they were trained on top of, those too).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from tailor.store import SQLProfileStore
from tailor.store.adapter_rows import AdapterName
from tailor.store.contract import UnknownUserError
from tailor.store.sqlite import SQLiteProfileStore

__all__ = [
    "GLOBAL_OWNER",
    "NO_PROMPT",
    "AdapterInfo",
    "AdapterKey",
    "AdapterKind",
    "AdapterStore",
    "Scope",
    "StoredAdapter",
    "open_adapter_store",
]

Scope = Literal["user", "persona", "global"]
AdapterKind = Literal["lora", "soft-prompt"]
SCOPES: tuple[Scope, ...] = ("user", "persona", "global")
KINDS: tuple[AdapterKind, ...] = ("lora", "soft-prompt")
GLOBAL_OWNER = "all"
"""The owner name of a global adapter (the one for every user)."""
NO_PROMPT = "none"
"""The prompt of an adapter trained on the ``none`` method's prompt (the input alone)."""
DEFAULT_MAX_BYTES = 5_000_000
STORE_FILE = "profiles.sqlite"

@dataclass(frozen=True)
class AdapterKey:
    """Which adapter: its scope, whose it is (a user id, a persona id, or ``"all"``), the
    task it was trained for, its kind (a LoRA delta or a soft-prompt projector), and the
    prompt it was trained on (``none``, or e.g. ``bm25:lamp:k=1``)."""

    scope: Scope
    owner: str
    task: str
    kind: AdapterKind = "lora"
    prompt: str = NO_PROMPT

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"adapter scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if self.kind not in KINDS:
            raise ValueError(f"adapter kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("owner", "task", "prompt"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"adapter {name} must be a non-empty string, got {value!r}")
        if self.scope == "global" and self.owner != GLOBAL_OWNER:
            raise ValueError(f"a global adapter's owner is {GLOBAL_OWNER!r}, got {self.owner!r}")

    @classmethod
    def global_(cls, task: str, kind: AdapterKind = "lora", prompt: str = NO_PROMPT) -> AdapterKey:
        return cls("global", GLOBAL_OWNER, task, kind, prompt)

    def __str__(self) -> str:
        name = f"{self.scope}/{self.owner}/{self.task}/{self.kind}"
        return name if self.prompt == NO_PROMPT else f"{name}/{self.prompt}"


@dataclass(frozen=True)
class AdapterInfo:
    """A stored adapter without its weights: what listing and resuming need."""

    key: AdapterKey
    config: Mapping[str, Any]
    base_model: Mapping[str, str]
    metadata: Mapping[str, Any]
    size: int
    digest: str
    """The first 16 hex digits of the weights' SHA-256: names this exact adapter."""
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.key.scope, "owner": self.key.owner, "task": self.key.task, "kind": self.key.kind,
                "prompt": self.key.prompt, "config": dict(self.config), "base_model": dict(self.base_model), "metadata": dict(self.metadata),
                "bytes": self.size, "digest": self.digest, "created_at": self.created_at}


@dataclass(frozen=True)
class StoredAdapter(AdapterInfo):
    weights: bytes = field(default=b"", repr=False)


def _digest(weights: bytes) -> str:
    return hashlib.sha256(weights).hexdigest()[:16]


def _dumps(value: Mapping[str, Any], what: str) -> str:
    try:
        return json.dumps(dict(value), sort_keys=True, ensure_ascii=False)
    except TypeError as error:
        raise TypeError(f"adapter {what} must be JSON-ready: {error}") from None


def _name(key: AdapterKey) -> AdapterName:
    return (key.scope, key.owner, key.task, key.kind, key.prompt)


class AdapterStore:
    """Per-user, per-persona and global adapters kept in a SQL profile store (SQLite or PostgreSQL).

    A user adapter needs the user in the profile store (it cascades from them); deleting
    the user through the store deletes it. ``max_bytes`` refuses adapters larger than the
    budget (5 MB by default), so a misconfigured rank fails at save time, not in production.
    """

    def __init__(self, profiles: SQLProfileStore, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if not isinstance(profiles, SQLProfileStore):
            raise TypeError(f"AdapterStore keeps adapters in a SQLite or PostgreSQL profile store, "
                            f"got {type(profiles).__name__}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.profiles = profiles
        self.max_bytes = max_bytes
        self.location = str(getattr(profiles, "path", profiles))
        """Where the adapters are: the SQLite file's path, or the PostgreSQL store's description."""

    def __repr__(self) -> str:
        return f"AdapterStore({self.profiles!r})"

    # -- writes ---------------------------------------------------------------------------

    def save(self, key: AdapterKey, weights: bytes, *, config: Mapping[str, Any], base_model: Mapping[str, str],
             metadata: Mapping[str, Any] | None = None, contributors: Iterable[str] = ()) -> AdapterInfo:
        """Store (or replace) the adapter ``key``; return it as stored, without weights.

        ``contributors`` (persona and global adapters) are the users whose histories it
        was trained on: deleting any of them deletes the adapter. A user adapter's user
        must be in the profile store.
        """
        if not isinstance(weights, (bytes, bytearray)) or not weights:
            raise ValueError(f"adapter {key}: weights must be non-empty bytes")
        if len(weights) > self.max_bytes:
            raise ValueError(f"adapter {key} is {len(weights):,} bytes, over the store's limit of "
                             f"{self.max_bytes:,}; lower the rank or the number of adapted layers")
        row = (_dumps(config, "config"), _dumps(base_model, "base_model"), _dumps(metadata or {}, "metadata"),
               _digest(bytes(weights)), bytes(weights), datetime.now(timezone.utc).isoformat(timespec="seconds"))
        try:
            self.profiles.put_adapter(_name(key), row, tuple(contributors))
        except UnknownUserError:
            raise ValueError(f"adapter {key}: user {key.owner!r} is not in the profile store {self.location}") from None
        info = self.info(key)
        if info is None:  # pragma: no cover - the row was written in the transaction above
            raise RuntimeError(f"adapter {key} vanished after saving")
        return info

    def delete(self, key: AdapterKey) -> bool:
        """Delete one adapter; return whether it existed."""
        return self.profiles.delete_adapter(_name(key))

    def delete_user_adapters(self, user_id: str) -> int:
        """Delete the user's own adapters and the pooled ones they contributed to; return how many went."""
        return self.profiles.delete_user_adapters(user_id)

    # -- reads ----------------------------------------------------------------------------

    def load(self, key: AdapterKey) -> StoredAdapter | None:
        """The adapter with its weights, or ``None`` when the store has none under ``key``."""
        row = self.profiles.get_adapter(_name(key), weights=True)
        if row is None:
            return None
        config, base_model, metadata, digest, weights, created_at = row
        return StoredAdapter(key, json.loads(config), json.loads(base_model), json.loads(metadata), len(weights),
                             digest, created_at, weights=bytes(weights))

    def info(self, key: AdapterKey) -> AdapterInfo | None:
        """The adapter without its weights, or ``None``."""
        row = self.profiles.get_adapter(_name(key), weights=False)
        if row is None:
            return None
        config, base_model, metadata, digest, size, created_at = row
        return AdapterInfo(key, json.loads(config), json.loads(base_model), json.loads(metadata), int(size), digest,
                           created_at)

    def list(self, *, scope: Scope | None = None, task: str | None = None, kind: AdapterKind | None = None,
             prompt: str | None = None) -> builtins.list[AdapterInfo]:
        """Stored adapters (without weights), sorted by scope, owner, task, kind and prompt."""
        found = []
        for (row_scope, owner, row_task, row_kind, row_prompt, config, base_model, metadata, digest, size,
             created_at) in self.profiles.list_adapters():
            if ((scope and row_scope != scope) or (task and row_task != task) or (kind and row_kind != kind)
                    or (prompt and row_prompt != prompt)):
                continue
            key = AdapterKey(row_scope, owner, row_task, row_kind, row_prompt)
            found.append(AdapterInfo(key, json.loads(config), json.loads(base_model), json.loads(metadata),
                                     int(size), digest, created_at))
        order = {scope_name: i for i, scope_name in enumerate(SCOPES)}
        return sorted(found, key=lambda a: (order[a.key.scope], a.key.owner, a.key.task, a.key.kind, a.key.prompt))

    def contributors(self, key: AdapterKey) -> builtins.list[str]:
        """The users a persona or global adapter was trained on, sorted."""
        return self.profiles.adapter_contributors(_name(key))

    def persona_of(self, user_id: str) -> str | None:
        """The user's persona in the profile store, or ``None``."""
        return self.profiles.persona_of(user_id)

    # -- the server's adapter hook (tailor.adapters.serving.AdapterHook) ------------------------

    def hook(self) -> AdapterStoreHook:
        """This store as the server's per-user adapter hook (export and delete)."""
        return AdapterStoreHook(self)


class AdapterStoreHook:
    """:class:`~tailor.adapters.serving.AdapterHook` over an :class:`AdapterStore`.

    Deleting the user through the profile store already deletes their adapters by
    cascade; ``delete`` is for a server that wants to drop adapters and keep the user.
    """

    def __init__(self, store: AdapterStore) -> None:
        self.store = store

    def metadata(self, user_id: str) -> Mapping[str, Any] | None:
        own = [a.to_dict() for a in self.store.list(scope="user") if a.key.owner == user_id]
        if not own:
            return None
        return {"adapters": own}

    def delete(self, user_id: str) -> int:
        return self.store.delete_user_adapters(user_id)


def open_adapter_store(location: str | os.PathLike[str], *, create: bool = False) -> AdapterStore:
    """The adapter store at ``location``: a folder (its ``profiles.sqlite``), a SQLite file, or
    a database URL (``postgresql://...``, ``sqlite:///path``), opened as ``tailor serve
    --store`` opens it (its tables created on first open), so that a server on that
    database serves the adapters kept there. ``create`` makes a missing folder or file."""
    target = os.fspath(location)
    if "://" in target:
        from tailor.store import open_serving_store

        return AdapterStore(open_serving_store(target))
    path = Path(target)
    if path.is_dir() or (create and not path.suffix):
        path.mkdir(parents=True, exist_ok=True)
        path = path / STORE_FILE
    if not create and not path.is_file():
        raise FileNotFoundError(f"no adapter store at {location}: expected a folder made by tailor train-adapter "
                                f"(holding {STORE_FILE}), a SQLite file or a database URL (postgresql://...)")
    return AdapterStore(SQLiteProfileStore(path))
