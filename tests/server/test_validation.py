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
     "messages[0].content"),
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
    ("max_completion_tokens negative", "POST", CHAT, chat_body(max_completion_tokens=-1), "max_completion_tokens"),
    ("temperature a word", "POST", CHAT, chat_body(temperature="hot"), "temperature"),
    ("temperature too high", "POST", CHAT, chat_body(temperature=5), "temperature"),
    ("n two", "POST", CHAT, chat_body(n=2), "n"),
    ("stop a number", "POST", CHAT, chat_body(stop=5), "stop"),
    ("stop too many", "POST", CHAT, chat_body(stop=["a", "b", "c", "d", "e"]), "stop"),
    ("stop of numbers", "POST", CHAT, chat_body(stop=[1]), "stop"),
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
