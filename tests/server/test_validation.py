"""Malformed and oversized input: always a clear 4xx in OpenAI's error shape, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailor.server import Limits

CHAT = "/v1/chat/completions"
OK_MESSAGES = [{"role": "user", "content": "hi"}]


def chat_body(**fields: Any) -> bytes:
    return json.dumps({"model": "m", "messages": OK_MESSAGES, **fields}).encode()


def record_body(*records: Any) -> bytes:
    return json.dumps({"records": list(records)}).encode()


BAD_REQUESTS: list[tuple[str, str, str, bytes, str | None]] = [
    # (name, method, path, raw body, expected param)
    ("not json", "POST", CHAT, b"{bad", None),
    ("not utf-8", "POST", CHAT, b"\xff\xfe{}", None),
    ("empty body", "POST", CHAT, b"", None),
    ("array body", "POST", CHAT, b"[]", None),
    ("string body", "POST", CHAT, b'"hello"', None),
    ("deep nesting", "POST", CHAT, b"[" * 100_000 + b"]" * 100_000, None),
    ("NaN literal", "POST", CHAT, b'{"model": "m", "messages": [], "temperature": NaN}', None),
    ("no messages", "POST", CHAT, b'{"model": "m"}', "messages"),
    ("messages not a list", "POST", CHAT, chat_body(messages="hi"), "messages"),
    ("empty messages", "POST", CHAT, chat_body(messages=[]), "messages"),
    ("message not an object", "POST", CHAT, chat_body(messages=["hi"]), "messages[0]"),
    ("unknown role", "POST", CHAT, chat_body(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role"),
    ("tool role", "POST", CHAT, chat_body(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
    ("content a number", "POST", CHAT, chat_body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    ("content null", "POST", CHAT, chat_body(messages=[{"role": "user", "content": None}]), "messages[0].content"),
    ("image part", "POST", CHAT, chat_body(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
     "messages[0].content[0].type"),
    ("no user message", "POST", CHAT, chat_body(messages=[{"role": "system", "content": "x"}]), "messages"),
    ("too many messages", "POST", CHAT, chat_body(messages=OK_MESSAGES * 300), "messages"),
    ("message too long", "POST", CHAT, chat_body(messages=[{"role": "user", "content": "x" * 100_001}]),
     "messages[0].content"),
    ("lone surrogate", "POST", CHAT, b'{"messages": [{"role": "user", "content": "a\\ud800b"}]}',
     "messages[0].content"),
    ("max_tokens a string", "POST", CHAT, chat_body(max_tokens="5"), "max_tokens"),
    ("max_tokens zero", "POST", CHAT, chat_body(max_tokens=0), "max_tokens"),
    ("max_tokens huge", "POST", CHAT, chat_body(max_tokens=10**30), "max_tokens"),
    ("max_tokens boolean", "POST", CHAT, chat_body(max_tokens=True), "max_tokens"),
    ("max_tokens fraction", "POST", CHAT, chat_body(max_tokens=1.5), "max_tokens"),
    ("max_tokens a huge float", "POST", CHAT, chat_body(max_tokens=1e300), "max_tokens"),
    ("max_completion_tokens negative", "POST", CHAT, chat_body(max_completion_tokens=-1), "max_completion_tokens"),
    ("temperature a word", "POST", CHAT, chat_body(temperature="hot"), "temperature"),
    ("temperature too high", "POST", CHAT, chat_body(temperature=5), "temperature"),
    ("n two", "POST", CHAT, chat_body(n=2), "n"),
    ("stop a number", "POST", CHAT, chat_body(stop=5), "stop"),
    ("stop too many", "POST", CHAT, chat_body(stop=["a", "b", "c", "d", "e"]), "stop"),
    ("stop of numbers", "POST", CHAT, chat_body(stop=[1]), "stop[0]"),
    ("stream a string", "POST", CHAT, chat_body(stream="yes"), "stream"),
    ("stream_options a list", "POST", CHAT, chat_body(stream=True, stream_options=[]), None),
    ("user a number", "POST", CHAT, chat_body(user=5), "user"),
    ("user with spaces", "POST", CHAT, chat_body(user="bad id!"), "user"),
    ("user with a separator", "POST", CHAT, chat_body(user="acme\x1fbob"), "user"),
    ("user too long", "POST", CHAT, chat_body(user="a" * 200), "user"),
    ("model a number", "POST", CHAT, chat_body(model=5), "model"),
    ("tools", "POST", CHAT, chat_body(tools=[{"type": "function"}]), "tools"),
    ("records not an object", "POST", "/v1/users/alice/records", b"[]", None),
    ("records missing", "POST", "/v1/users/alice/records", b"{}", "records"),
    ("records empty", "POST", "/v1/users/alice/records", record_body(), "records"),
    ("records a string", "POST", "/v1/users/alice/records", b'{"records": "x"}', "records"),
    ("record not an object", "POST", "/v1/users/alice/records", record_body("x"), "records[0]"),
    ("record without id", "POST", "/v1/users/alice/records", record_body({"text": "x"}), "records[0].id"),
    ("record id a number", "POST", "/v1/users/alice/records", record_body({"id": 1, "text": "x"}), "records[0].id"),
    ("record id empty", "POST", "/v1/users/alice/records", record_body({"id": " ", "text": "x"}), "records[0].id"),
    ("record field a number", "POST", "/v1/users/alice/records", record_body({"id": "1", "text": 2}),
     "records[0].text"),
    ("record field an object", "POST", "/v1/users/alice/records", record_body({"id": "1", "text": {}}),
     "records[0].text"),
    ("record field name", "POST", "/v1/users/alice/records", record_body({"id": "1", "bad name": "x"}), "records[0]"),
    ("record without text", "POST", "/v1/users/alice/records", record_body({"id": "1"}), "records[0]"),
    ("record date a number", "POST", "/v1/users/alice/records", record_body({"id": "1", "text": "x", "date": 2024}),
     "records[0].date"),
    ("record too large", "POST", "/v1/users/alice/records",
     record_body({"id": "1", "a": "x" * 20_000, "b": "y" * 20_000}), "records[0]"),
    ("too many records", "POST", "/v1/users/alice/records",
     record_body(*({"id": str(i), "text": "x"} for i in range(1001))), "records"),
    ("attributes a list", "PUT", "/v1/users/alice", b'{"attributes": []}', "attributes"),
    ("attribute a number", "PUT", "/v1/users/alice", b'{"attributes": {"age": 5}}', "attributes.age"),
    ("attribute name", "PUT", "/v1/users/alice", b'{"attributes": {"my age": "5"}}', "attributes"),
    ("user id charset", "PUT", "/v1/users/bad%20id", b"{}", "user_id"),
    ("user id separator", "GET", "/v1/users/acme%1Fbob", b"", "user_id"),
    ("user id too long", "GET", "/v1/users/" + "a" * 129, b"", "user_id"),
    ("flag not boolean", "GET", "/v1/users/alice/memories?include_superseded=maybe", b"", "include_superseded"),
    ("k zero", "GET", "/v1/users/alice/memories?k=0", b"", "k"),
    ("k not a number", "GET", "/v1/users/alice/memories?k=ten", b"", "k"),
    ("flush timeout", "POST", "/v1/users/alice/memories:flush?timeout=-5", b"", "timeout"),
    # Issue 12: each of these was a 500, or (the trailing newline) accepted.
    ("role a list", "POST", CHAT, chat_body(messages=[{"role": ["user"], "content": "hi"}]), "messages[0].role"),
    ("role an object", "POST", CHAT, chat_body(messages=[{"role": {"user": 1}, "content": "hi"}]),
     "messages[0].role"),
    ("k a superscript digit", "GET", "/v1/users/alice/memories?k=%C2%B2", b"", "k"),
    ("k of 4301 nines", "GET", "/v1/users/alice/memories?k=" + "9" * 4301, b"", "k"),
    ("k a fullwidth digit", "GET", "/v1/users/alice/memories?k=%EF%BC%95", b"", "k"),
    ("flush timeout a superscript digit", "POST", "/v1/users/alice/memories:flush?timeout=%C2%B2", b"", "timeout"),
    ("flush timeout of 4301 nines", "POST", "/v1/users/alice/memories:flush?timeout=" + "9" * 4301, b"",
     "timeout"),
    ("user id with a trailing newline", "PUT", "/v1/users/alice%0A", b"{}", "user_id"),
    ("user id with a trailing newline (get)", "GET", "/v1/users/alice%0A", b"", "user_id"),
    ("chat user with a trailing newline", "POST", CHAT, chat_body(user="alice\n"), "user"),
    ("attribute name with a trailing newline", "PUT", "/v1/users/alice", b'{"attributes": {"age\\n": "5"}}',
     "attributes"),
    ("record field name with a trailing newline", "POST", "/v1/users/alice/records",
     record_body({"id": "1", "text\n": "x"}), "records[0]"),
    ("unknown route", "GET", "/v1/nothing", b"", None),
    ("wrong method", "PATCH", "/v1/users/alice", b"{}", None),
]


@pytest.fixture
def seeded(client: TestClient) -> TestClient:
    client.put("/v1/users/alice")
    return client


@pytest.mark.parametrize(("method", "path", "body", "param"), [case[1:] for case in BAD_REQUESTS],
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_input_is_a_clear_4xx(seeded: TestClient, method: str, path: str, body: bytes, param: str | None) -> None:
    response = seeded.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param, error
    assert seeded.get("/v1/users/alice").status_code == 200  # and the server is fine after it


def test_oversized_bodies_are_refused_before_parsing(make_client: Callable[..., TestClient]) -> None:
    client = make_client(limits=Limits(max_body_bytes=10_000))
    big = chat_body(messages=[{"role": "user", "content": "x" * 20_000}])
    response = client.post(CHAT, content=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b" " * 1000

    assert client.post(CHAT, content=chunks()).status_code == 413


def test_limits_refuse_nonsense_values() -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        Limits(max_body_bytes=0)


def test_the_description_and_the_checks_come_from_one_declaration(make_client: Callable[..., TestClient]) -> None:
    client = make_client(limits=Limits(max_messages=2))  # the app's limits reach both
    openapi = client.app.openapi()  # type: ignore[attr-defined]
    assert openapi["components"]["schemas"]["ChatCompletion"]["properties"]["messages"]["maxItems"] == 2
    response = client.post(CHAT, json={"messages": OK_MESSAGES * 3})
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages"
    # Every refusal is described as the one error shape (not FastAPI's 422 of its own).
    for operations in openapi["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]
            assert operation["responses"]["4XX"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"}


def test_what_openai_clients_send_is_accepted(client: TestClient) -> None:
    # 5.0 is an integer in JSON; null stands for absent; unknown fields are ignored; empty
    # tools, false logprobs; content as text parts; stop as one string.
    body = {"model": None, "messages": [{"role": "developer", "content": "be brief", "name": "x"},
                                        {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "max_tokens": 5.0, "n": 1, "temperature": None, "top_p": 1, "stop": "###", "tools": [],
            "logprobs": False, "stream": None, "stream_options": None, "metadata": {"any": ["thing"]}}
    response = client.post(CHAT, json=body)
    assert response.status_code == 200, response.text


def test_a_body_must_be_json(client: TestClient) -> None:
    response = client.post(CHAT, content=chat_body(), headers={"Content-Type": "text/plain"})
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"
    assert client.post(CHAT, content=chat_body()).status_code == 200  # no Content-Type: read as JSON


def test_every_id_pattern_refuses_a_trailing_newline(client: TestClient) -> None:
    # "$" matches before a final newline; the patterns are used with fullmatch.
    from tailor.server.keys import KeyStore
    from tailor.server.validation import MEMORY_ID_PATTERN, check_user_id
    from tailor.store.tenants import check_tenant

    for bad in ("alice\n", "alice\r\n", "\nalice"):
        with pytest.raises(Exception, match="user_id"):
            check_user_id(bad)
    with pytest.raises(ValueError, match="tenant"):
        check_tenant("acme\n")
    assert MEMORY_ID_PATTERN.fullmatch("mem_" + "0" * 32)
    assert not MEMORY_ID_PATTERN.fullmatch("mem_" + "0" * 32 + "\n")
    keys = KeyStore(client.app.state.service.store)  # type: ignore[attr-defined]
    _, key = keys.create(admin=True)
    assert keys.verify(key) is not None
    assert keys.verify(key + "\n") is None
    assert client.put("/v1/users/alice%0A").status_code == 401  # a key exists now; and no "alice\n" was made
    store = client.app.state.service.store  # type: ignore[attr-defined]
    assert not store.has_user("alice\n")


def test_a_client_that_disconnects_mid_body_logs_one_line(client: TestClient,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import logging

    app = client.app
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "http.request", "body": b'{"model": "m", "messa', "more_body": True},
                     {"type": "http.disconnect"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": CHAT, "raw_path": CHAT.encode(), "root_path": "", "query_string": b"",
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]}
    with caplog.at_level(logging.DEBUG):
        asyncio.run(app(scope, receive, send))  # raises nothing
    records = [record for record in caplog.records if record.name.startswith(("tailor", "uvicorn", "starlette"))]
    assert len(records) == 1, [record.getMessage() for record in records]  # its request line, nothing else
    assert records[0].request["status"] == 499 and records[0].exc_info is None  # type: ignore[attr-defined]
    assert records[0].request["disconnected"] == "in the middle of its request body"  # type: ignore[attr-defined]
    assert records[0].levelno <= logging.INFO
