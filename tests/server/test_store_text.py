"""Text every store can keep: the API refuses the NUL character in every text it takes
(PostgreSQL's text cannot hold it), with a 400 naming the field, on SQLite and PostgreSQL
alike; before, PostgreSQL answered these with a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

NUL = "\u0000"


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
def test_a_nul_character_in_any_text_is_a_400_naming_the_field(
        store_kind: str, make_client: Callable[..., TestClient], request: pytest.FixtureRequest) -> None:
    store = {} if store_kind == "sqlite" else {"store": request.getfixturevalue("postgres_url")}
    client = make_client(**store)
    assert client.put("/v1/users/alice", json={"attributes": {"city": "Porto"}}).status_code == 200
    attempts: list[tuple[str, str, dict[str, Any], str]] = [
        ("PUT", "/v1/users/alice", {"attributes": {"city": f"Por{NUL}to"}}, "attributes.city"),
        ("POST", "/v1/users/alice/records", {"records": [{"id": f"r{NUL}1", "text": "t"}]}, "records[0].id"),
        ("POST", "/v1/users/alice/records", {"records": [{"id": "r1", "text": "t", "date": f"2020{NUL}"}]},
         "records[0].date"),
        ("POST", "/v1/users/alice/records", {"records": [{"id": "r1", "text": f"t{NUL}t"}]}, "records[0].text"),
        ("POST", "/v1/chat/completions", {"user": "alice", "messages": [{"role": "user", "content": f"hi{NUL}"}]},
         "messages[0].content"),
    ]
    for method, path, body, field in attempts:
        reply = client.request(method, path, json=body)
        assert reply.status_code == 400, (path, field, reply.text)
        assert reply.json()["error"]["param"] == field
    memories = client.get("/v1/users/alice/memories", params={"query": f"a{NUL}b"})
    assert memories.status_code == 400
    assert client.get("/v1/users/alice").json()["records"] == 0  # nothing was half-written
