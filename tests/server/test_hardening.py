"""Clients that do not play fair: the key checked before the body, stalled heads and bodies
answered 408, health answered under a full queue, protocol details; and a deleted user's
text gone from the SQLite files once the DELETE returns."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from tailor.backends.echo import EchoBackend
from tailor.cli.main import main
from tailor.server import ServeConfig, create_app
from tailor.server.protocol import timed_protocol
from tailor.store import StoreUnavailableError
from tailor.types import GenerationRequest

# Every keyed route with the body it takes (none for those without one).
KEYED = [("POST", "/v1/chat/completions"), ("PUT", "/v1/users/alice"), ("POST", "/v1/users/alice/records"),
         ("GET", "/v1/users/alice"), ("DELETE", "/v1/users/alice"), ("GET", "/v1/users/alice/export"),
         ("GET", "/v1/users/alice/memories"), ("POST", "/v1/users/alice/memories:flush"),
         ("DELETE", "/v1/users/alice/memories/mem_0"), ("GET", "/v1/models")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """An app on a loopback port in a thread of this process, with tailor's protocol."""

    def __init__(self, app: Any, header_timeout: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    http=timed_protocol(header_timeout)))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def raw(self, data: bytes, *, wait: float) -> tuple[bytes, float]:
        """What the server answers to ``data`` sent then left hanging, and after how long."""
        began = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=wait) as sock:
            sock.sendall(data)
            chunks = []
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
            except TimeoutError:
                pass
        return b"".join(chunks), time.monotonic() - began


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(*, backend: Any = None, header_timeout: float = 10.0, **options: Any) -> Served:
        config = ServeConfig(store=str(tmp_path / "store.db"), backend="echo", memory=False, worker_threads=4,
                             header_timeout=header_timeout, **options)
        served = Served(create_app(config, backend=backend or EchoBackend()), header_timeout)
        started.append(served)
        return served

    yield start
    for served in started:
        served.close()


def keyed(store: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["keys", "create", "--store", str(store), "--admin", "--json"]) == 0
    return str(json.loads(capsys.readouterr().out)["key"])


@pytest.mark.parametrize(("method", "path"), KEYED)
def test_without_a_key_nothing_about_the_body_is_said(method: str, path: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    keyed(tmp_path / "store.db", capsys)
    with TestClient(create_app(ServeConfig(store=str(tmp_path / "store.db"), backend="echo", memory=False),
                               backend=EchoBackend())) as client:
        for content, headers in ((b"{bad", {"Content-Type": "application/json"}),
                                 (b"plain words", {"Content-Type": "text/plain"}),
                                 (b"x" * 2_000_000, {"Content-Type": "application/json"})):
            response = client.request(method, path, content=content, headers=headers)
            assert response.status_code == 401, (method, path, content[:8], response.text[:200])
            assert response.json()["error"]["type"] == "authentication_error"


def test_a_stalled_body_is_answered_408_within_the_limit(serve: Callable[..., Served]) -> None:
    served = serve(body_timeout=0.5)
    head = (b"POST /v1/users/alice/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n")
    answer, seconds = served.raw(head + b'{"records":', wait=10)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request_timeout" in answer and seconds < 5


def test_a_stalled_head_is_answered_408_and_an_idle_connection_closed(serve: Callable[..., Served]) -> None:
    served = serve(header_timeout=0.5)
    answer, seconds = served.raw(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: ", wait=10)
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer and seconds < 5
    answer, seconds = served.raw(b"", wait=10)
    assert answer == b"" and seconds < 5  # closed, nothing said
    # A client that keeps its side of the bargain is served as ever, on a kept-alive connection.
    with httpx.Client(timeout=10) as client:
        for _ in range(2):
            assert client.get(f"{served.url}/v1/models").status_code == 200
            time.sleep(0.2)


def test_a_head_too_large_in_pieces_gets_the_json_error(serve: Callable[..., Served]) -> None:
    served = serve()
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
        for _ in range(40):  # 40 KiB of header, in pieces: over h11's 16 KiB of incomplete head
            # Stop sending once the server has answered: writing on after it closed would
            # reset the connection and could discard its answer before it is read.
            if select.select([sock], [], [], 0.05)[0]:
                break
            sock.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "bad_request"


class Stuck:
    """A backend whose every generation waits until released (a full queue)."""

    name = "stuck"

    def __init__(self) -> None:
        self.release = threading.Event()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, requests: list[GenerationRequest]) -> list[Any]:
        self.release.wait(30)
        return EchoBackend().generate(requests)


def test_health_and_models_answer_while_the_queue_is_full(serve: Callable[..., Served]) -> None:
    stuck = Stuck()
    served = serve(backend=stuck, max_queue=2, max_batch=1, queue_timeout=30)
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    waiting = [threading.Thread(target=lambda: httpx.post(f"{served.url}/v1/chat/completions", json=body, timeout=40))
               for _ in range(3)]
    for thread in waiting:
        thread.start()
    try:
        deadline = time.monotonic() + 10
        while True:  # until the three chats fill the model and its queue
            time.sleep(0.2)
            if httpx.post(f"{served.url}/v1/chat/completions", json=body, timeout=5).status_code == 429:
                break
            assert time.monotonic() < deadline, "the queue never filled"
        for route in ("/health", "/ready", "/v1/models"):
            began = time.monotonic()
            assert httpx.get(f"{served.url}{route}", timeout=5).status_code == 200, route
            assert time.monotonic() - began < 1.0, route
    finally:
        stuck.release.set()
        for thread in waiting:
            thread.join(40)


def test_ready_turns_503_while_the_store_is_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(ServeConfig(store=str(tmp_path / "store.db"), backend="echo", memory=False),
                     backend=EchoBackend())
    with TestClient(app) as client:
        assert client.get("/health").json() == {"status": "ok"} and client.get("/ready").status_code == 200

        def unreachable() -> None:  # what a store whose database is down raises (tests/server/test_postgres_faults.py)
            raise StoreUnavailableError("connection refused")

        monkeypatch.setattr(app.state.service.store, "ping", unreachable)
        assert client.get("/health").status_code == 200
        response = client.get("/ready")
        assert response.status_code == 503 and response.json()["error"]["code"] == "store_unavailable"


def test_protocol_details(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = keyed(tmp_path / "store.db", capsys)
    with TestClient(create_app(ServeConfig(store=str(tmp_path / "store.db"), backend="echo", memory=False),
                               backend=EchoBackend())) as client:
        refused = client.patch("/v1/users/alice", headers={"Authorization": f"Bearer {key}"})
        assert refused.status_code == 405 and set(refused.headers["allow"].replace(" ", "").split(",")) >= {
            "GET", "PUT", "DELETE"}
        twice = client.get("/v1/users/alice", headers=[("Authorization", f"Bearer {key}"),
                                                       ("X-Tailor-Tenant", "acme"), ("X-Tailor-Tenant", "globex")])
        assert twice.status_code == 400 and twice.json()["error"]["param"] == "X-Tailor-Tenant"
        # ... after the key: without one, still a 401.
        assert client.get("/v1/users/alice", headers=[("X-Tailor-Tenant", "a"), ("X-Tailor-Tenant", "b")]
                          ).status_code == 401
    schema = create_app(ServeConfig(store=str(tmp_path / "store.db"), backend="echo", memory=False),
                        backend=EchoBackend()).openapi()
    assert "text/event-stream" in schema["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]


def test_after_delete_no_sqlite_file_holds_the_users_text(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    marks = ["Zanzibarquill", "marmalade-oboe-7731", "QUETZALSECRET"]
    with TestClient(create_app(ServeConfig(store=str(path), backend="echo", memory=True), backend=EchoBackend())) as c:
        assert c.put("/v1/users/ursula", json={"attributes": {"nickname": marks[0]}}).status_code == 200
        records = [{"id": f"r{i}", "text": f"{marks[1]} and more words {i}"} for i in range(50)]
        assert c.post("/v1/users/ursula/records", json={"records": records}).status_code == 200
        body = {"model": "m", "user": "ursula", "messages": [{"role": "user", "content": f"I am {marks[2]}"}]}
        assert c.post("/v1/chat/completions", json=body).status_code == 200
        c.post("/v1/users/ursula/memories:flush")
        assert c.put("/v1/users/other", json={}).status_code == 200  # the file goes on holding others
        files = [p for p in tmp_path.iterdir() if p.name.startswith("store.db")]
        assert any(marks[1].encode() in p.read_bytes() for p in files)  # it was there
        assert c.delete("/v1/users/ursula").status_code == 200
        for file in tmp_path.iterdir():
            if file.name.startswith("store.db"):
                data = file.read_bytes()
                assert not any(mark.encode() in data for mark in marks), file.name
        assert c.get("/v1/users/other").status_code == 200
