"""Profile stores: per-user history records and attributes, and ways to fill them.

``open_store`` picks a store from a URL or path, so that configuration and the command
line name a store with one string.
"""

from __future__ import annotations

import os

from tailor.profiles.base import Artifact, ProfileStore, UnknownUserError
from tailor.profiles.ingest import IngestReport, ingest_examples
from tailor.profiles.memory import InMemoryProfileStore
from tailor.profiles.sqlite import SQLiteProfileStore

__all__ = [
    "Artifact",
    "InMemoryProfileStore",
    "IngestReport",
    "ProfileStore",
    "SQLiteProfileStore",
    "UnknownUserError",
    "ingest_examples",
    "open_store",
]

_ACCEPTED = (
    '"memory" or ":memory:" (in-memory), "sqlite:///relative/path.db", "sqlite:////absolute/path.db", '
    '"sqlite://" (SQLite in memory), or a plain file path'
)


def open_store(url_or_path: str | os.PathLike[str]) -> ProfileStore:
    """Open the profile store that ``url_or_path`` names.

    ``"memory"`` or ``":memory:"`` gives an :class:`InMemoryProfileStore`;
    ``"sqlite:///path"`` (``sqlite:////abs/path`` for an absolute path, as SQLAlchemy
    writes it) or a plain path gives a :class:`SQLiteProfileStore`. PostgreSQL URLs are
    recognised and refused until that store exists.
    """
    target = os.fspath(url_or_path)
    if not isinstance(target, str) or not target.strip():
        raise ValueError(f"open_store: expected {_ACCEPTED}; got {url_or_path!r}")
    if target in ("memory", ":memory:"):
        return InMemoryProfileStore()
    scheme, separator, rest = target.partition("://")
    if not separator:
        return SQLiteProfileStore(target)
    scheme = scheme.lower()
    if scheme == "postgres" or scheme.startswith("postgresql"):
        raise ValueError(
            f"open_store({target!r}): PostgreSQL support is planned but not available yet; "
            "it will need the `postgres` extra (pip install 'tailor[postgres]')"
        )
    if scheme != "sqlite":
        raise ValueError(f"open_store: unknown scheme {scheme!r} in {target!r}; expected {_ACCEPTED}")
    if rest in ("", "/:memory:"):
        return SQLiteProfileStore(":memory:")
    if not rest.startswith("/") or rest == "/":
        raise ValueError(f"open_store: {target!r} names a host or no file; expected {_ACCEPTED}")
    return SQLiteProfileStore(rest[1:])
