"""Backpressure against the real app on loopback (uvicorn in a thread): more streams and
chats at once than worker threads never freeze the server; each request ends with a reply
or a 429 (``Retry-After``) or 503, and ``/v1/models`` answers throughout and after.

Before the model had its own thread, 24 such requests on 4 worker threads froze every
route for good (issue 12): each waiting chat held a thread that the stream holding the
model needed for its next piece.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

import httpx
import pytest

uvicorn = pytest.importorskip("uvicorn")

from tailor.backends.contract import TextStream, approximate_token_count
from tailor.backends.echo import EchoBackend
from tailor.server import ServeConfig, create_app
from tailor.types import GenerationRequest, GenerationResult


class SlowEcho:
    """Echoes the last message, ``delay`` seconds per word (streamed or not), so that
    requests pile up while the model works."""

    name = "slow-echo"

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._echo = EchoBackend()

    def count_tokens(self, text: str) -> int:
        return approximate_token_count(text)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        time.sleep(self.delay * max(len(r.messages[-1]["content"].split()) for r in requests))
        return self._echo.generate(requests)

    def stream(self, request: GenerationRequest) -> TextStream:
        pieces = 0
        for piece in self._echo.stream(request):
            time.sleep(self.delay)
            pieces += 1
            yield piece
        return GenerationResult(request.messages[-1]["content"], tokens=pieces)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """An app served by uvicorn on a loopback port, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    def serve(**options: Any) -> Served:
        config = ServeConfig(store=str(tmp_path / "store.db"), backend="echo", memory=False, worker_threads=4,
                             **options)
        return Served(create_app(config, backend=SlowEcho(0.002)))

    yield serve


WORDS = " ".join(f"w{i}" for i in range(20))


def chat(url: str, index: int) -> tuple[str, int, str]:
    """One request, a stream for even ``index``: (kind, status, what came back)."""
    stream = index % 2 == 0
    body = {"model": "m", "stream": stream, "messages": [{"role": "user", "content": WORDS}]}
    with httpx.Client(timeout=20) as client:
        response = client.post(f"{url}/v1/chat/completions", json=body)
    kind = "stream" if stream else "chat"
    if response.status_code != 200:
        return kind, response.status_code, response.headers.get("retry-after", "")
    if stream:
        lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                       for line in lines[:-1] if json.loads(line[6:])["choices"])
        return kind, 200, text
    return kind, 200, response.json()["choices"][0]["message"]["content"]


def load(url: str, requests: int) -> tuple[list[tuple[str, int, str]], list[float]]:
    """``requests`` chats and streams at once, while ``/v1/models`` is asked every 20 ms;
    returns the outcomes and how long each ``/v1/models`` took."""
    models_seconds: list[float] = []
    stop = threading.Event()

    def poll_models() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                began = time.perf_counter()
                assert client.get(f"{url}/v1/models").status_code == 200
                models_seconds.append(time.perf_counter() - began)
                time.sleep(0.02)

    with ThreadPoolExecutor(requests + 1) as pool:
        poller = pool.submit(poll_models)
        outcomes = list(pool.map(lambda index: chat(url, index), range(requests)))
        stop.set()
        poller.result(10)
    return outcomes, models_seconds


def test_more_requests_than_threads_all_end_and_models_answers_throughout(served: Any) -> None:
    with served(max_queue=64) as server:
        outcomes, models_seconds = load(server.url, 24)
        assert [status for _, status, _ in outcomes] == [200] * 24  # the queue holds them all
        assert all(text == WORDS for _, _, text in outcomes)
        assert models_seconds and max(models_seconds) < 2.0
        assert httpx.get(f"{server.url}/v1/models", timeout=5).status_code == 200


def test_a_full_queue_answers_429_with_retry_after_and_never_hangs(served: Any) -> None:
    with served(max_queue=3, max_batch=2) as server:
        began = time.monotonic()
        outcomes, models_seconds = load(server.url, 30)
        assert time.monotonic() - began < 20
        statuses = [status for _, status, _ in outcomes]
        assert set(statuses) <= {200, 429}
        assert statuses.count(429) > 0 and statuses.count(200) >= 4  # at least the running ones and the queue
        assert all(retry.isdigit() and 1 <= int(retry) <= 60 for _, status, retry in outcomes if status == 429)
        assert all(text == WORDS for _, status, text in outcomes if status == 200)
        assert models_seconds and max(models_seconds) < 2.0
        # Once the load has gone, everything is served again, streams and plain chats alike (which kinds
        # got through under load is a matter of timing).
        assert chat(server.url, 0)[:2] == ("stream", 200) and chat(server.url, 1)[:2] == ("chat", 200)
        assert httpx.get(f"{server.url}/v1/models", timeout=5).status_code == 200


def test_a_reply_left_waiting_past_the_queue_timeout_is_a_503(served: Any) -> None:
    with served(queue_timeout=0.2) as server, ThreadPoolExecutor(2) as pool:
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": " ".join(["w"] * 400)}]}
        holding = pool.submit(httpx.post, f"{server.url}/v1/chat/completions", json=body, timeout=20)
        time.sleep(0.1)  # the long stream holds the model for about 0.8 s
        waiting = httpx.post(f"{server.url}/v1/chat/completions", timeout=20,
                             json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert waiting.status_code == 503
        assert waiting.json()["error"]["code"] == "queue_timeout" and waiting.headers["retry-after"].isdigit()
        assert holding.result(20).status_code == 200


def test_a_client_that_goes_away_while_queued_frees_its_place(served: Any) -> None:
    with served(max_queue=1) as server, ThreadPoolExecutor(2) as pool:
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": " ".join(["w"] * 400)}]}
        holding = pool.submit(httpx.post, f"{server.url}/v1/chat/completions", json=body, timeout=20)
        time.sleep(0.1)
        short = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        with pytest.raises(httpx.ReadTimeout):  # queued behind the stream; the client gives up
            httpx.post(f"{server.url}/v1/chat/completions", json=short, timeout=0.2)
        time.sleep(0.1)
        # Its place in the queue (of one) is free: the next request is queued, not refused.
        assert httpx.post(f"{server.url}/v1/chat/completions", json=short, timeout=20).status_code == 200
        assert holding.result(20).status_code == 200
