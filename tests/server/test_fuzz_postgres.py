"""The schema-driven fuzz suite of ``test_fuzz.py`` (20 examples per operation) against a
server on PostgreSQL: no input is a 5xx there either (PostgreSQL refuses some text SQLite
keeps, so the same request must be told apart before it reaches the store)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from tests.server.conftest import scripted_reply
from tests.server.test_fuzz import APP as SQLITE_APP

from tailor.backends.echo import EchoBackend
from tailor.server import ServeConfig, create_app

APPS: dict[str, Any] = {}


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
    APPS["postgres"] = app
    yield app
    app.state.service.close()
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


# The description does not depend on the store: test_fuzz.py's, generated from its app.
SCHEMA = schemathesis.openapi.from_dict(SQLITE_APP.openapi())


async def without_lifespan(scope: Any, receive: Any, send: Any) -> None:
    """The app, kept open across examples (see test_fuzz.py)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await APPS["postgres"](scope, receive, send)


@SCHEMA.parametrize()
@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_input_is_a_server_error_on_postgres(case: Any, postgres_app: Any) -> None:
    response = case.call(app=without_lifespan)
    if response.status_code != 413 and "limit per record" not in response.text:
        case.validate_response(response, checks=[positive_data_acceptance, negative_data_rejection])
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    if 400 <= response.status_code < 500:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"], error
