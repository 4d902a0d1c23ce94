"""Request logs: one line per request with method, route template, status, ms and tenant;
``json`` mode is one JSON object per line; no user id or personal text is ever logged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailor.logs import configure_logging
from tailor.server import ServeConfig
from tailor.server.keys import KeyStore
from tailor.server.request_log import REQUEST_LOGGER

SECRET = "Zanzibar-marmalade-4711"  # a word that must never reach a log line
USER = "ulrike.secret"


@pytest.fixture
def log_stream() -> Iterator[Callable[[str], io.StringIO]]:
    """``log_stream(format)``: the server's logs configured into a string, as `tailor serve`
    would; every logger it touched is put back afterwards (caplog relies on propagation)."""
    names = ("tailor", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level,
                    logging.getLogger(name).propagate) for name in names}

    def configure(log_format: str) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(log_format, "info", stream)  # type: ignore[arg-type]
        return stream

    yield configure
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def exercise(client: TestClient, ask: Callable[..., Any]) -> int:
    """Requests touching every kind of route with personal text; returns how many were sent."""
    responses = [
        client.put(f"/v1/users/{USER}", json={"attributes": {"motto": SECRET}}),
        client.post(f"/v1/users/{USER}/records", json={"records": [{"id": "r1", "text": f"I keep {SECRET}"}]}),
        ask(client, f"tell me about {SECRET}", user=USER),
        ask(client, f"stream {SECRET}", user=USER, stream=True),
        client.get(f"/v1/users/{USER}/memories", params={"query": SECRET, "k": 3}),
        client.get(f"/v1/users/{USER}/export"),
        client.get(f"/v1/users/{USER}/{SECRET}"),  # no such route: the raw path is not logged either
        ask(client, SECRET, user=USER, temperature="hot"),  # a 400
        client.delete(f"/v1/users/{USER}"),
    ]
    return len(responses)


def request_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [record.request for record in caplog.records if record.name == REQUEST_LOGGER]  # type: ignore[attr-defined]


def test_a_request_is_one_line_with_method_route_status_ms_and_tenant(client: TestClient,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER):
        client.put("/v1/users/alice")
        caplog.clear()
        assert client.get("/v1/users/alice").status_code == 200
    [line] = request_records(caplog)
    assert set(line) == {"method", "route", "status", "ms", "tenant", "key_id"}
    assert (line["method"], line["route"], line["status"], line["tenant"]) == ("GET", "/v1/users/{user_id}", 200,
                                                                               None)
    assert isinstance(line["ms"], float) and line["ms"] >= 0


def test_the_tenant_and_key_id_are_those_of_the_caller(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    keys = KeyStore(client.app.state.service.store)  # type: ignore[attr-defined]
    info, key = keys.create(tenant="acme")
    with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER):
        assert client.put("/v1/users/bob", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert client.get("/v1/users/bob").status_code == 401
    ok, refused = request_records(caplog)
    assert (ok["tenant"], ok["key_id"], ok["status"]) == ("acme", info.key_id, 200)
    assert (refused["tenant"], refused["key_id"], refused["status"]) == (None, None, 401)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_every_request_is_logged_once_and_no_user_id_or_text_is(log_format: str, make_client: Callable[..., TestClient],
                                                               ask: Callable[..., Any],
                                                               log_stream: Callable[[str], io.StringIO]) -> None:
    stream = log_stream(log_format)
    client = make_client()
    sent = exercise(client, ask)
    text = stream.getvalue()
    assert SECRET not in text and USER not in text and "ulrike" not in text
    lines = text.splitlines()
    if log_format == "json":
        parsed = [json.loads(line) for line in lines]  # every line, not only request lines
        requests = [line for line in parsed if line["logger"] == REQUEST_LOGGER]
        assert len(requests) == sent
        assert [line["status"] for line in requests] == [200, 200, 200, 200, 200, 200, 404, 400, 200]
        assert requests[0]["route"] == "/v1/users/{user_id}" and requests[6]["route"] is None
        assert {line["method"] for line in requests} == {"PUT", "POST", "GET", "DELETE"}
        assert all(line["message"] == "request" and line["level"] == "info" for line in requests)
    else:
        requests = [line for line in lines if f" {REQUEST_LOGGER}: request " in line]
        assert len(requests) == sent
        assert "method=POST route=/v1/chat/completions status=200 ms=" in requests[2]
        assert requests[6].endswith("tenant=- key_id=-") and "route=- status=404" in requests[6]


def test_log_format_is_checked() -> None:
    with pytest.raises(ValueError, match="log_format"):
        ServeConfig(store="x.db", log_format="xml")  # type: ignore[arg-type]
