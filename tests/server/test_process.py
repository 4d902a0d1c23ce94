"""The real `tailor serve` process: kill -9 loses no acknowledged write, concurrent clients
are all served, the official openai client talks to it over HTTP, and `--log-format json`
writes one JSON object per line, one per request."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``tailor serve`` with the echo backend on a free loopback port."""

    def __init__(self, store: Path, *options: str) -> None:
        self.store = store
        self.options = options
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "tailor.cli.main", "serve", "--store", str(self.store), "--backend", "echo",
                   "--port", str(self.port), "--log-level", "warning", *self.options]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stderr.read().decode() if self.process.stderr else ''}")
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start within 20 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = ServerProcess(tmp_path_factory.mktemp("serve") / "store.db").start()
    yield running
    running.stop()


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "store.db").start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.put("/v1/users/alice", json={"attributes": {"city": "Porto"}}).status_code == 200
            for batch in range(10):
                records = [{"id": f"{batch}-{i}", "text": f"record {batch} {i}"} for i in range(50)]
                assert client.post("/v1/users/alice/records", json={"records": records}).status_code == 200
            reply = client.post("/v1/chat/completions", json={
                "model": "echo", "user": "alice", "messages": [{"role": "user", "content": "record 3"}]})
            assert reply.status_code == 200
        server.kill()  # no shutdown, no flush: SIGKILL right after the last acknowledgement
        server.start()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            exported = client.get("/v1/users/alice/export").json()
        assert len(exported["records"]) == 500
        assert exported["attributes"] == {"city": "Porto"}
        # The user's message as sent; the echo model's reply repeats its personalized prompt.
        said, replied = (m["content"] for m in exported["conversations"])
        assert said == "record 3" and replied.endswith("\n\nrecord 3")
    finally:
        server.stop()


def test_many_concurrent_clients_lose_nothing(server: ServerProcess) -> None:
    clients, requests = 16, 20

    def client_work(number: int) -> list[int]:
        user = f"user{number}"
        statuses = []
        with httpx.Client(base_url=server.url, timeout=30) as client:
            statuses.append(client.put(f"/v1/users/{user}").status_code)
            for index in range(requests):
                if index % 2:
                    body = {"records": [{"id": f"r{index}", "text": f"note {index} of {user}"}]}
                    statuses.append(client.post(f"/v1/users/{user}/records", json=body).status_code)
                else:
                    body = {"model": "echo", "user": user, "messages": [{"role": "user", "content": f"note {index}"}]}
                    statuses.append(client.post("/v1/chat/completions", json=body).status_code)
        return statuses

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client_work, range(clients)))
    assert all(status == 200 for statuses in results for status in statuses)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for number in range(clients):
            user = client.get(f"/v1/users/user{number}").json()
            assert user["records"] == requests // 2


def test_the_openai_client_talks_to_the_real_server(server: ServerProcess) -> None:
    openai = pytest.importorskip("openai")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.put("/v1/users/carol")
        client.post("/v1/users/carol/records", json={"records": [{"id": "1", "text": "carol plays the oboe"}]})
    api = openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-needed-on-loopback-without-keys")
    completion = api.chat.completions.create(model="echo", user="carol", temperature=0.2,
                                             messages=[{"role": "user", "content": "which instrument? the oboe"}])
    # The echo model repeats the personalized message: carol's record, then her question.
    assert completion.choices[0].message.content == ("Earlier items from this user:\n- carol plays the oboe\n\n"
                                                     "which instrument? the oboe")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.id.startswith("chatcmpl-")
    cut = api.chat.completions.create(model="echo", max_tokens=2, messages=[{"role": "user", "content": "a b c d"}])
    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("a b", "length")
    stream = api.chat.completions.create(model="echo", user="carol", stream=True,
                                         messages=[{"role": "user", "content": "stream this reply"}])
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert "".join(pieces) == "Earlier items from this user:\n- carol plays the oboe\n\nstream this reply"
    assert len(pieces) > 2


def test_json_logs_are_one_object_per_line_and_one_line_per_request(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "store.db", "--log-level", "info", "--log-format", "json").start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.put("/v1/users/zoe", json={"attributes": {"pet": "a cat named Quibble"}}).status_code == 200
            body = {"model": "echo", "user": "zoe", "stream": True, "max_tokens": 4096,
                    "messages": [{"role": "user", "content": " ".join(["Quibble"] * 10_000)}]}
            with client.stream("POST", "/v1/chat/completions", json=body) as streamed:
                next(streamed.iter_lines())  # then the client goes away in the middle of the reply
            time.sleep(0.3)
            assert client.get("/v1/models").status_code == 200
    finally:
        server.stop()
    assert server.process is not None and server.process.stderr is not None
    text = server.process.stderr.read().decode()
    lines = [json.loads(line) for line in text.splitlines()]  # every line, uvicorn's too
    requests = [line for line in lines if line["logger"] == "tailor.server.requests"]
    assert [(line["method"], line["route"], line["status"]) for line in requests] == [
        ("GET", "/v1/models", 200),  # the start-up probe
        ("PUT", "/v1/users/{user_id}", 200),
        ("POST", "/v1/chat/completions", 499),  # one line for the client that went away, no traceback
        ("GET", "/v1/models", 200)]
    assert requests[2]["disconnected"] == "in the middle of its answer"
    assert "zoe" not in text and "Quibble" not in text
    assert all(line["level"] != "warning" or line["logger"] == "tailor.server" for line in lines), text[-2000:]
