"""The schema-driven fuzz suite of ``test_fuzz.py`` (20 examples per operation) against a
server on PostgreSQL: no input is a 5xx there either (PostgreSQL refuses some text SQLite
keeps, so the same request must be told apart before it reaches the store)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings
from tests.server.conftest import scripted_reply
from tests.server.test_fuzz import APP as SQLITE_APP
from tests.server.test_fuzz import check_response, kept_open

from tailor.backends.echo import EchoBackend
from tailor.server import ServeConfig, create_app


@pytest.fixture(scope="module")
def postgres_app(postgres_server_url: str) -> Iterator[Any]:
    """One app on PostgreSQL (a schema of its own) for every example, holding the user "alice"."""
    import uuid

    import psycopg
    from psycopg import sql
    from tests.postgres_fixtures import url_with_schema

    schema = f"tailor_fuzz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    app = create_app(ServeConfig(store=url_with_schema(postgres_server_url, schema), backend="echo",
                                 auto_create_users=True), backend=EchoBackend(scripted_reply))
    app.state.service.store.set_attributes("alice", {"city": "Porto"})
    yield app
    app.state.service.close()
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


# The description does not depend on the store: test_fuzz.py's, generated from its app.
SCHEMA = schemathesis.openapi.from_dict(SQLITE_APP.openapi())


@SCHEMA.parametrize()
@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_input_is_a_server_error_on_postgres(case: Any, postgres_app: Any) -> None:
    check_response(case, case.call(app=kept_open(postgres_app)))
