"""The database: per-user profiles (history records and attributes), and beside them what is
derived from them and what the server keeps (embeddings, summaries, personas, memories,
conversations, adapters, API keys, search indexes), on SQLite, PostgreSQL or in memory.

:func:`open_store` opens the store a URL or path names, so that configuration and the
command line name a store with one string. Which store a URL scheme opens is
:data:`STORES`, a registry like every plug point: ``sqlite``, ``postgresql`` (and its
spellings), or a scheme a package adds through the ``tailor.stores`` entry point group.
This package imports its stores on first use, so listing them (``tailor serve --help``)
loads no numpy, and ``import tailor`` never imports psycopg.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from tailor.registry import Registry

if TYPE_CHECKING:
    from tailor.store.contract import Artifact, ProfileStore, StoreUnavailableError, UnknownUserError
    from tailor.store.in_memory import InMemoryProfileStore
    from tailor.store.ingest import IngestReport, ingest_examples
    from tailor.store.server_data import ServingData as SQLProfileStore
    from tailor.store.sqlite import SQLiteProfileStore

__all__ = [
    "STORES",
    "Artifact",
    "InMemoryProfileStore",
    "IngestReport",
    "ProfileStore",
    "SQLProfileStore",
    "SQLiteProfileStore",
    "StoreUnavailableError",
    "UnknownUserError",
    "ingest_examples",
    "open_serving_store",
    "open_store",
]

_WHERE = {
    "Artifact": ("tailor.store.contract", "Artifact"), "ProfileStore": ("tailor.store.contract", "ProfileStore"),
    "StoreUnavailableError": ("tailor.store.contract", "StoreUnavailableError"),
    "UnknownUserError": ("tailor.store.contract", "UnknownUserError"),
    "InMemoryProfileStore": ("tailor.store.in_memory", "InMemoryProfileStore"),
    "IngestReport": ("tailor.store.ingest", "IngestReport"), "ingest_examples": ("tailor.store.ingest", "ingest_examples"),
    "SQLProfileStore": ("tailor.store.server_data", "ServingData"),
    "SQLiteProfileStore": ("tailor.store.sqlite", "SQLiteProfileStore"),
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        module, attribute = _WHERE[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'tailor.store' has no attribute {name!r}")


STORES = Registry(
    "store",
    {
        "sqlite": "tailor.store.sqlite:open_sqlite_url",
        "postgresql": "tailor.store.postgres:open_postgres_url",
        "postgres": "tailor.store.postgres:open_postgres_url",
        "postgresql+psycopg": "tailor.store.postgres:open_postgres_url",
    },
    group="tailor.stores",
    extras={"postgresql": "postgres", "postgres": "postgres", "postgresql+psycopg": "postgres"},
    helps={
        "sqlite": "a SQLite file (sqlite:///relative.db, sqlite:////absolute.db; sqlite:// in memory)",
        "postgresql": "a PostgreSQL database (postgresql://user@host/db?pool_size=N&pool_timeout=S)",
        "postgres": "the same as postgresql://",
        "postgresql+psycopg": "the same as postgresql://",
    },
)
"""URL scheme -> ``"module:attribute"`` of a callable that opens the store a whole URL names."""


def _accepted() -> str:
    return ('"memory" or ":memory:" (in memory), a plain file path (SQLite), or a URL of scheme '
            + ", ".join(f"{name}://" for name in STORES.names()))


def open_store(url_or_path: str | os.PathLike[str]) -> ProfileStore:
    """Open the profile store that ``url_or_path`` names.

    ``"memory"`` or ``":memory:"`` gives an :class:`InMemoryProfileStore`; a plain path a
    :class:`SQLiteProfileStore`; a URL the store its scheme is registered for in
    :data:`STORES` (``sqlite:///path``; ``postgresql://user:password@host:port/dbname``,
    which needs the ``postgres`` extra and says so when psycopg is missing; or a package's).
    """
    target = os.fspath(url_or_path)
    if not isinstance(target, str) or not target.strip():
        raise ValueError(f"open_store: expected {_accepted()}; got {url_or_path!r}")
    if target in ("memory", ":memory:"):
        from tailor.store.in_memory import InMemoryProfileStore

        return InMemoryProfileStore()
    scheme, separator, _ = target.partition("://")
    if not separator:
        from tailor.store.sqlite import SQLiteProfileStore

        return SQLiteProfileStore(target)
    if scheme.lower() not in STORES:
        raise ValueError(f"open_store: unknown scheme {scheme.lower()!r} in {target!r}; expected {_accepted()}")
    store: ProfileStore = STORES.load(scheme.lower())(target)
    return store


def open_serving_store(target: str) -> SQLProfileStore:
    """The store ``tailor serve --store`` names: a SQLite file (path or ``sqlite:///path``)
    or a PostgreSQL database (``postgresql://...``); keys, memories and indexes go beside
    the profiles, so the in-memory store, which has no room for them, is refused."""
    from tailor.store.server_data import ServingData
    from tailor.store.sqlite import SQLiteProfileStore

    if target in (":memory:", "memory"):  # a throwaway server (tests): SQLite in memory
        return SQLiteProfileStore(":memory:")
    opened = open_store(target)
    if not isinstance(opened, ServingData):
        opened.close()
        # A configuration mistake (the CLI reports ValueErrors as such), not a caller's type error.
        raise ValueError(  # noqa: TRY004
            f"tailor serve needs a store that keeps keys, memories and indexes beside the profiles: a SQLite file "
            f"(a path or sqlite:///path), a postgresql:// URL, or a package's SQL store; got {target!r}")
    return opened

