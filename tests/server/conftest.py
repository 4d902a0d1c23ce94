"""Fixtures for the server tests: an app on a temporary store, with a scripted echo backend."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from tailor.backends.echo import EchoBackend
from tailor.server import ServeConfig, create_app
from tailor.types import GenerationRequest


def scripted_reply(request: GenerationRequest) -> str:
    """The whole prompt, so a test can read what the model was shown. (Fact extraction
    scores ``yes``/``no`` per statement; the echo backend's word counts say yes.)"""
    return " ".join(f"[{m['role']}] {m['content']}" for m in request.messages)


@pytest.fixture
def store_target(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The store ``make_client`` opens: ``tmp_path/store.db``, or a PostgreSQL schema of the
    test's own when ``TAILOR_TEST_SERVER_STORE=postgres`` (to run the server suite on PostgreSQL)."""
    if os.environ.get("TAILOR_TEST_SERVER_STORE") == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "store.db")


@pytest.fixture
def make_client(store_target: str) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**config)``: a test client of a fresh app on ``store_target``
    (``store=URL`` for another store, e.g. a PostgreSQL database)."""
    clients: list[TestClient] = []

    def make(*, backend: Any = None, **options: Any) -> TestClient:
        config = ServeConfig(**{"store": store_target, "backend": "echo", **options})
        client = TestClient(create_app(config, backend=backend or EchoBackend(scripted_reply)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def _ask(client: TestClient, content: str, *, user: str | None = None, headers: dict[str, str] | None = None,
         **extra: Any) -> Any:
    body: dict[str, Any] = {"model": "tailor", "messages": [{"role": "user", "content": content}], **extra}
    if user is not None:
        body["user"] = user
    return client.post("/v1/chat/completions", json=body, headers=headers)


@pytest.fixture
def ask() -> Callable[..., Any]:
    """``ask(client, "message", user=..., headers=..., **body fields)``: one chat completion."""
    return _ask


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "process: starts the real `tailor serve` process (a few seconds each)")
