"""Profile stores: per-user history records and attributes, and ways to fill them.

``open_store`` picks a store from a URL or path, so that configuration and the command
line name a store with one string. The PostgreSQL store
(:mod:`tailor.store.postgres`) is imported only when a ``postgresql://`` URL is
opened, so ``import tailor`` never imports psycopg.
"""

from __future__ import annotations

import os

from tailor.store.contract import Artifact, ProfileStore, StoreUnavailableError, UnknownUserError
from tailor.store.in_memory import InMemoryProfileStore
from tailor.store.ingest import IngestReport, ingest_examples
from tailor.store.server_data import ServingData as SQLProfileStore
from tailor.store.sqlite import SQLiteProfileStore

__all__ = [
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

_ACCEPTED = (
    '"memory" or ":memory:" (in-memory), "sqlite:///relative/path.db", "sqlite:////absolute/path.db", '
    '"sqlite://" (SQLite in memory), a plain file path, or "postgresql://user@host/dbname" '
    '(also "postgres://"; needs the `postgres` extra)'
)

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def _pool_options(url: str) -> tuple[str, int | None, float | None]:
    """``url`` without the pool's own query parameters, and their values (``None``: not given)."""
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    found = {key: value for key, value in query if key in ("pool_size", "pool_timeout")}
    if not found:
        return url, None, None
    numbers: dict[str, float] = {}
    for key, value in found.items():
        try:
            numbers[key] = int(value) if key == "pool_size" else float(value)
        except ValueError:
            raise ValueError(f"open_store: {key} must be a number, got {value!r}") from None
        if not numbers[key] > 0:
            raise ValueError(f"open_store: {key} must be positive, got {value!r}")
    kept = urlencode([(key, value) for key, value in query if key not in found], quote_via=quote, safe="/")
    size = numbers.get("pool_size")
    return urlunsplit(parts._replace(query=kept)), None if size is None else int(size), numbers.get("pool_timeout")


def open_store(url_or_path: str | os.PathLike[str]) -> ProfileStore:
    """Open the profile store that ``url_or_path`` names.

    ``"memory"`` or ``":memory:"`` gives an :class:`InMemoryProfileStore`;
    ``"sqlite:///path"`` (``sqlite:////abs/path`` for an absolute path, as SQLAlchemy
    writes it) or a plain path gives a :class:`SQLiteProfileStore`.
    ``"postgresql://user:password@host:port/dbname"`` (or ``postgres://``, or SQLAlchemy's
    ``postgresql+psycopg://``) gives a :class:`~tailor.store.postgres.PostgresProfileStore`;
    it needs the ``postgres`` extra, and says so when psycopg is missing. Its query may set
    the store's connection pool, ``pool_size`` (default 10) and ``pool_timeout`` (seconds,
    default 10), which are taken out before the rest goes to libpq.
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
    if scheme in _POSTGRES_SCHEMES:
        # Imported here, not above: psycopg loads only when a PostgreSQL store is opened, and
        # the module fails with the "pip install 'tailor-llm[postgres]'" hint when it is missing.
        from tailor.store.postgres import PostgresProfileStore

        # libpq reads postgresql:// and postgres:// URLs; the driver suffix is SQLAlchemy's.
        conninfo, pool_size, pool_timeout = _pool_options(f"postgresql://{rest}")
        return PostgresProfileStore(conninfo, pool_size=pool_size or 10, pool_timeout=pool_timeout or 10.0)
    if scheme != "sqlite":
        raise ValueError(f"open_store: unknown scheme {scheme!r} in {target!r}; expected {_ACCEPTED}")
    if rest in ("", "/:memory:"):
        return SQLiteProfileStore(":memory:")
    if not rest.startswith("/") or rest == "/":
        raise ValueError(f"open_store: {target!r} names a host or no file; expected {_ACCEPTED}")
    return SQLiteProfileStore(rest[1:])


def open_serving_store(target: str) -> SQLProfileStore:
    """The store ``tailor serve --store`` names: a SQLite file (path or ``sqlite:///path``)
    or a PostgreSQL database (``postgresql://...``); keys, memories and indexes go beside
    the profiles, so the in-memory store, which has no room for them, is refused."""
    if target in (":memory:", "memory"):  # a throwaway server (tests): SQLite in memory
        return SQLiteProfileStore(":memory:")
    opened = open_store(target)
    if not isinstance(opened, SQLProfileStore):
        opened.close()
        # A configuration mistake (the CLI reports ValueErrors as such), not a caller's type error.
        raise ValueError(  # noqa: TRY004
            f"tailor serve needs a SQLite file (a path or sqlite:///path) or a postgresql:// URL, got {target!r}")
    return opened

