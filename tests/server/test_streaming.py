"""Streamed chat replies: real pieces as the model makes them, the gate held until the end,
errors before the first piece answered as JSON, and memory kept only for finished replies."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailor.backends.contract import BackendError, TextStream, approximate_token_count
from tailor.backends.echo import EchoBackend
from tailor.backends.gate import BackendGate, GateClosed, GateFull
from tailor.server import ServeConfig, create_app
from tailor.types import GenerationRequest, GenerationResult

Ask = Callable[..., Any]


class SteppedBackend:
    """Streams ``reply`` a word at a time and stops before piece ``pause_at`` until
    ``resume`` is set; records whether its stream finished or was closed early."""

    name = "stepped"

    def __init__(self, reply: str, *, pause_at: int = 1, fail_at_start: bool = False) -> None:
        self.reply = reply
        self.pause_at = pause_at
        self.fail_at_start = fail_at_start
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.finished = False
        self.closed = False

    def count_tokens(self, text: str) -> int:
        return approximate_token_count(text)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return [GenerationResult("NONE", tokens=1) for _ in requests]  # memory extraction finds nothing

    def stream(self, request: GenerationRequest) -> TextStream:
        if self.fail_at_start:
            raise BackendError("the model failed to start")
        words = self.reply.split(" ")
        pieces = [word + " " for word in words[:-1]] + words[-1:]
        try:
            for i, piece in enumerate(pieces):
                if i == self.pause_at:
                    self.paused.set()
                    if not self.resume.wait(10):
                        raise TimeoutError("the test never resumed the stream")
                yield piece
        except GeneratorExit:
            self.closed = True
            raise
        self.finished = True
        return GenerationResult(self.reply, tokens=len(pieces))


class GenerateOnly:
    """A backend that cannot stream: the echo backend's generate, nothing else."""

    name = "generate-only"

    def __init__(self) -> None:
        self._echo = EchoBackend()

    def count_tokens(self, text: str) -> int:
        return self._echo.count_tokens(text)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return self._echo.generate(requests)


class RawRequest:
    """One POST driven straight through the ASGI app in its own event loop, its messages
    read as they are sent (the test client hands back a response only once it is whole)."""

    def __init__(self, app: Any, body: dict[str, Any]) -> None:
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._disconnect = threading.Event()
        self.disconnected = threading.Event()
        self._data = json.dumps(body).encode()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(app),), daemon=True)
        self._thread.start()

    async def _run(self, app: Any) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
                 "root_path": "", "query_string": b"", "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
                 "headers": [(b"content-type", b"application/json"),
                             (b"content-length", str(len(self._data)).encode())]}
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": self._data, "more_body": False}
            while not self._disconnect.is_set():
                await asyncio.sleep(0.01)
            self.disconnected.set()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            self.messages.put(message)

        try:
            await app(scope, receive, send)
        finally:
            self.messages.put(None)

    def next_message(self) -> dict[str, Any] | None:
        return self.messages.get(timeout=10)

    def next_chunk(self) -> dict[str, Any]:
        """The next server-sent event's JSON."""
        message = self.next_message()
        assert message is not None and message["type"] == "http.response.body"
        line = message["body"].decode()
        assert line.startswith("data: ") and line.endswith("\n\n")
        return dict(json.loads(line[len("data: "):]))

    def rest(self) -> bytes:
        """Every body byte still to come, once the app is done."""
        body = b""
        while (message := self.next_message()) is not None:
            body += message.get("body", b"")
        self._thread.join(10)
        return body

    def disconnect(self) -> None:
        """Tell the app the client went away, and give it a moment to act on that."""
        self._disconnect.set()
        assert self.disconnected.wait(10)
        time.sleep(0.1)


def settles(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether ``condition`` holds within ``seconds`` (the model's thread acts a moment later)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def events(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The JSON chunks of a stream, and its raw ``data:`` lines."""
    lines = [line for line in text.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    return [json.loads(line[len("data: "):]) for line in lines if line != "data: [DONE]"], lines


def contents(chunks: list[dict[str, Any]]) -> list[str]:
    return [c["choices"][0]["delta"]["content"] for c in chunks if c["choices"] and c["choices"][0]["delta"].get(
        "content")]


# -- through the test client --------------------------------------------------------------------


def test_a_stream_sends_the_reply_in_pieces_that_join_to_the_whole_reply(client: TestClient, ask: Ask) -> None:
    whole = ask(client, "tell me about streams and rivers").json()
    response = ask(client, "tell me about streams and rivers", stream=True, stream_options={"include_usage": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-tailor-granularity"] == "global"
    assert float(response.headers["x-tailor-personalize-ms"]) >= 0
    assert "x-tailor-overhead-ms" not in response.headers  # known only once the stream has ended
    chunks, lines = events(response.text)
    assert lines[-1] == "data: [DONE]"
    pieces = contents(chunks)
    assert len(pieces) > 3
    assert "".join(pieces) == whole["choices"][0]["message"]["content"]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]
    assert len({c["id"] for c in chunks}) == 1


def test_a_stream_cut_by_max_tokens_finishes_with_length(make_client: Callable[..., TestClient], ask: Ask) -> None:
    client = make_client(backend=EchoBackend())
    response = ask(client, "one two three four five", max_tokens=3, stream=True,
                   stream_options={"include_usage": True})
    chunks, _ = events(response.text)
    assert "".join(contents(chunks)) == "one two three"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    # Without include_usage there is no usage chunk.
    chunks, _ = events(ask(client, "one two", stream=True).text)
    assert all(c["choices"] for c in chunks)


def test_a_stream_never_sends_a_stop_string(make_client: Callable[..., TestClient], ask: Ask) -> None:
    client = make_client(backend=EchoBackend())
    chunks, _ = events(ask(client, "first part END second part", stop=["END"], stream=True).text)
    assert "".join(contents(chunks)) == "first part "
    assert not any("E" in piece for piece in contents(chunks))


def test_a_backend_that_cannot_stream_still_answers_in_chunks(make_client: Callable[..., TestClient],
                                                             ask: Ask) -> None:
    client = make_client(backend=GenerateOnly())
    whole = ask(client, "plain words here").json()["choices"][0]["message"]["content"]
    chunks, lines = events(ask(client, "plain words here", stream=True).text)
    assert len(contents(chunks)) > 1 and "".join(contents(chunks)) == whole
    assert lines[-1] == "data: [DONE]"


def test_a_finished_stream_is_kept_for_memory_extraction(client: TestClient, ask: Ask) -> None:
    client.put("/v1/users/alice")
    response = ask(client, "I live in Porto and I like jazz", user="alice", stream=True)
    assert response.text.endswith("data: [DONE]\n\n")
    assert client.post("/v1/users/alice/memories:flush").json()["done"] is True
    memories = client.get("/v1/users/alice/memories").json()["data"]
    assert sorted(m["text"] for m in memories) == ["user.city = Porto", "user.likes += jazz"]
    conversation = client.get("/v1/users/alice/export").json()["conversations"]
    assert [m["role"] for m in conversation] == ["user", "assistant"]
    assert conversation[1]["content"] == "[user] I live in Porto and I like jazz"


def test_errors_before_the_first_piece_are_json(tmp_path: Path, ask: Ask) -> None:
    app = create_app(ServeConfig(store=str(tmp_path / "store.db"), backend="echo", memory=False),
                     backend=SteppedBackend("never sent", fail_at_start=True))
    client = TestClient(app, raise_server_exceptions=False)
    response = ask(client, "hello", stream=True)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    bad = client.post("/v1/chat/completions", json={"model": "m", "stream": True, "messages": []})
    assert bad.status_code == 400 and "messages" in bad.json()["error"]["message"]
    assert settles(lambda: not app.state.service.gate.busy)  # the failed stream let go of the model
    app.state.service.close()


class FailingMidway(SteppedBackend):
    """Streams two words, then the model fails."""

    def stream(self, request: GenerationRequest) -> TextStream:
        yield "one "
        yield "two "
        raise BackendError("the model ran out of memory")


def test_a_failure_after_the_first_piece_is_an_error_event(tmp_path: Path, ask: Ask) -> None:
    app = create_app(ServeConfig(store=str(tmp_path / "store.db"), backend="echo", auto_create_users=True),
                     backend=FailingMidway("unused"))
    with TestClient(app) as client:
        response = ask(client, "hello", user="ana", stream=True)
        assert response.status_code == 200  # the headers went out with the first piece
        events = [json.loads(line[len("data: "):]) for line in response.text.splitlines()
                  if line.startswith("data: ")]
        assert [e["choices"][0]["delta"].get("content") for e in events[:-1]] == ["", "one ", "two "]
        assert events[-1]["error"]["type"] == "server_error" and "BackendError" in events[-1]["error"]["message"]
        assert "[DONE]" not in response.text
        service = app.state.service
        assert settles(lambda: not service.gate.busy)
        assert client.get("/v1/users/ana/export").json()["conversations"] == []  # never delivered whole


# -- straight through the ASGI app ----------------------------------------------------------------


@pytest.fixture
def stepped_app(tmp_path: Path) -> Any:
    backend = SteppedBackend("one two three four")
    app = create_app(ServeConfig(store=str(tmp_path / "store.db"), backend="echo"), backend=backend)
    app.state.backend = backend
    yield app
    backend.resume.set()
    app.state.service.close()


def test_the_first_piece_is_sent_while_the_rest_is_still_being_generated(stepped_app: Any) -> None:
    backend: SteppedBackend = stepped_app.state.backend
    request = RawRequest(stepped_app, {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    start = request.next_message()
    assert start is not None and start["type"] == "http.response.start" and start["status"] == 200
    assert request.next_chunk()["choices"][0]["delta"]["role"] == "assistant"
    assert request.next_chunk()["choices"][0]["delta"]["content"] == "one "
    assert backend.paused.wait(10)
    assert not backend.finished  # the reply is not done, and its first piece has arrived
    backend.resume.set()
    rest = request.rest().decode()
    chunks, lines = events(rest)
    assert "".join(contents(chunks)) == "two three four"
    assert lines[-1] == "data: [DONE]"
    assert backend.finished


def test_a_client_that_goes_away_stops_the_stream_and_nothing_is_kept(stepped_app: Any) -> None:
    backend: SteppedBackend = stepped_app.state.backend
    service = stepped_app.state.service
    client = TestClient(stepped_app)
    assert client.put("/v1/users/alice").status_code == 200
    request = RawRequest(stepped_app, {"model": "m", "stream": True, "user": "alice",
                                       "messages": [{"role": "user", "content": "I live in Porto"}]})
    assert request.next_message()["type"] == "http.response.start"  # type: ignore[index]
    request.next_chunk()
    assert request.next_chunk()["choices"][0]["delta"]["content"] == "one "
    assert backend.paused.wait(10)
    request.disconnect()
    assert "[DONE]" not in request.rest().decode()  # the response is over, the reply cancelled
    backend.resume.set()  # the piece under way completes; then the model closes the stream
    assert settles(lambda: backend.closed)
    assert not backend.finished
    assert settles(lambda: not service.gate.busy)
    assert client.get("/v1/users/alice/export").json()["conversations"] == []
    # The model is free for the next reply.
    reply = client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert reply.status_code == 200


# -- the gate ---------------------------------------------------------------------------------------


class CallLog(SteppedBackend):
    """A stepped backend that notes each call it gets: the last message of each request."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.calls: list[str] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.calls.extend(f"generate {r.messages[-1]['content']}" for r in requests)
        return super().generate(requests)

    def stream(self, request: GenerationRequest) -> TextStream:
        self.calls.append(f"stream {request.messages[-1]['content']}")
        return (yield from super().stream(request))


def test_streams_and_replies_go_in_arrival_order_and_before_background_work() -> None:
    backend = CallLog("one two three")
    gate = BackendGate(backend, max_batch=4)

    def ask(text: str) -> GenerationRequest:
        return GenerationRequest(({"role": "user", "content": text},))

    stream = gate.stream(ask("s0"))
    assert next(stream) == "one "
    assert backend.paused.wait(5)  # the model is in the middle of the stream
    calls: list[tuple[str, ...]] = [
        ("background", "bg"), ("stream", "s1"), ("reply", "r1"), ("stream", "s2"), ("reply", "r2")]
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = []
        for index, (kind, text) in enumerate(calls):
            if kind == "stream":
                futures.append(pool.submit(lambda text=text: "".join(gate.stream(ask(text)))))
            else:
                futures.append(pool.submit(gate.generate, ask(text), background=kind == "background"))
            # queued in this order (the background call is not counted among replies)
            assert settles(lambda index=index: gate.waiting == index)
        assert not any(future.done() for future in futures)  # everything waits while the model streams
        backend.resume.set()
        assert "".join(stream) == "two three"
        for future in futures:
            future.result(5)
    # Arrival order, except that r2 joins r1's batch; background work last.
    assert backend.calls == ["stream s0", "stream s1", "generate r1", "generate r2", "stream s2", "generate bg"]
    gate.close()


def test_a_full_queue_refuses_at_once_and_a_cancelled_reply_frees_its_place() -> None:
    backend = SteppedBackend("one two", pause_at=1)
    gate = BackendGate(backend, max_batch=2, max_queue=2)

    def ask(text: str) -> GenerationRequest:
        return GenerationRequest(({"role": "user", "content": text},))

    holding = gate.submit_stream(ask("s0"))
    assert holding.next(5) == "one " and backend.paused.wait(5)
    first, second = gate.submit(ask("a")), gate.submit_stream(ask("b"))
    with pytest.raises(GateFull) as refused:
        gate.submit(ask("c"))
    assert refused.value.limit == 2 and 1 <= refused.value.retry_after <= 60
    assert second.cancel() is True  # still queued: it leaves the queue at once
    assert gate.waiting == 1
    third = gate.submit(ask("c"))  # its place is free again
    backend.resume.set()
    assert isinstance(holding.next(5), str)
    assert [first.result(5).text, third.result(5).text] == ["NONE", "NONE"]
    assert gate.waiting == 0
    gate.close()
    with pytest.raises(GateClosed):
        gate.submit(ask("after"))


def test_a_local_model_streams_through_the_server(tmp_path: Path, tiny_model_dir: Path, ask: Ask) -> None:
    pytest.importorskip("torch")
    from tailor.backends.hf import TransformersBackend

    backend = TransformersBackend(str(tiny_model_dir))
    app = create_app(ServeConfig(store=str(tmp_path / "store.db"), backend="echo", memory=False), backend=backend)
    client = TestClient(app)
    whole = ask(client, "Write a headline about the harbour.", max_tokens=20).json()
    response = ask(client, "Write a headline about the harbour.", max_tokens=20, stream=True,
                   stream_options={"include_usage": True})
    chunks, lines = events(response.text)
    assert len(contents(chunks)) > 1
    assert "".join(contents(chunks)) == whole["choices"][0]["message"]["content"]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    assert chunks[-1]["usage"] == whole["usage"]
    assert lines[-1] == "data: [DONE]"
    assert not backend._lock.locked()
    app.state.service.close()
