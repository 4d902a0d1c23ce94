"""The stores the contract suites run over.

``make_store`` is parametrized over every ProfileStore implementation; the contract suites
(test_store_contract*.py) use it and nothing else. PostgreSQL joins through
``postgres_url`` (tests/postgres_fixtures.py): a fresh schema per test, on one server per
test session.

"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tailor.store import InMemoryProfileStore, ProfileStore, SQLiteProfileStore

StoreFactory = Callable[[], ProfileStore]

STORE_KINDS = ["sqlite-file", "sqlite-memory", "in-memory", "postgres"]


@pytest.fixture(params=STORE_KINDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Opens a fresh, empty store of one implementation (one file or schema per test);
    calling it twice opens two store objects on the same data."""
    kind = request.param
    if kind == "sqlite-file":
        return lambda: SQLiteProfileStore(tmp_path / "profiles.db")
    if kind == "sqlite-memory":
        return lambda: SQLiteProfileStore(":memory:")
    if kind == "in-memory":
        return InMemoryProfileStore
    url: str = request.getfixturevalue("postgres_url")
    from tailor.store.postgres import PostgresProfileStore

    return lambda: PostgresProfileStore(url)


@pytest.fixture
def store(make_store: StoreFactory) -> Iterator[ProfileStore]:
    opened = make_store()
    yield opened
    opened.close()


