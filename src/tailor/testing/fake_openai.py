"""A fake OpenAI-compatible chat server for tests: stdlib only, loopback only, scriptable.

    with FakeOpenAIServer(reply="hello") as server:
        backend = OpenAIBackend(server.url, backoff=0.001)
        ...
        assert server.requests[-1].body["max_tokens"] == 64

It answers ``GET /v1/models`` and ``POST /v1/chat/completions`` the way OpenAI's API
does: ``max_tokens`` cuts the reply (counting whitespace-separated words as tokens), up
to four ``stop`` strings cut it (more are rejected with HTTP 400), and
``logprobs``/``top_logprobs`` are answered when the server is given first-position
log-probabilities. ``"stream": true`` is answered with server-sent events, a word per
chunk (and a usage chunk when ``stream_options.include_usage`` asks for it). Failures can
be queued for the next requests: an HTTP status (with an optional ``Retry-After``) or a
connection dropped without an answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Self

__all__ = ["FakeOpenAIServer", "RecordedRequest"]

Reply = str | Sequence[str] | Callable[[dict[str, Any]], str]
TopLogprobs = Mapping[str, float] | Callable[[dict[str, Any]], Mapping[str, float]] | None
Delay = float | Callable[[dict[str, Any]], float]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received: method, path, headers (lower-cased names) and JSON body."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Failure:
    status: int | None  # None: drop the connection without an answer
    retry_after: str | None = None
    message: str = "injected failure"


class FakeOpenAIServer:
    """A local chat-completions server on 127.0.0.1 (a free port), run in a background thread.

    ``reply`` is a fixed text, a list of texts used in turn, or a function of the request
    body. ``top_logprobs`` (a mapping of token to log-probability, or a function of the
    body returning one) makes the server answer ``logprobs`` requests; without it the
    server ignores them, like servers that do not support them, and with
    ``reject_logprobs`` it answers them with HTTP 400. ``delay`` (seconds, or a function
    of the body) holds each chat request before it is answered. ``api_key``, when set,
    is required as a bearer token (HTTP 401 otherwise). ``requests`` records every
    request received; ``max_in_flight`` the most chat requests handled at once.
    """

    def __init__(self, reply: Reply = "ok", *, models: Sequence[str] = ("fake-model",),
                 top_logprobs: TopLogprobs = None, reject_logprobs: bool = False, delay: Delay = 0.0,
                 api_key: str | None = None) -> None:
        self.reply = reply
        self.models = tuple(models)
        self.top_logprobs = top_logprobs
        self.reject_logprobs = reject_logprobs
        self.delay = delay
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._turn = 0
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake server is not running; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give a client: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting -------------------------------------------------------------------------------

    def fail(self, times: int = 1, *, status: int = 503, retry_after: float | str | None = None,
             message: str = "injected failure") -> None:
        """Answer the next ``times`` requests with HTTP ``status`` (and ``Retry-After`` when given)."""
        header = None if retry_after is None else str(retry_after)
        with self._lock:
            self._failures.extend(_Failure(status, header, message) for _ in range(times))

    def drop(self, times: int = 1) -> None:
        """Close the connection of the next ``times`` requests without answering them."""
        with self._lock:
            self._failures.extend(_Failure(None) for _ in range(times))

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat-completion requests received, in arrival order."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- answering (called from the handler threads) ----------------------------------------------

    def _record(self, request: RecordedRequest) -> _Failure | None:
        with self._lock:
            self.requests.append(request)
            return self._failures.popleft() if self._failures else None

    def _reply_text(self, body: dict[str, Any]) -> str:
        if callable(self.reply):
            return self.reply(body)
        if isinstance(self.reply, str):
            return self.reply
        with self._lock:
            text = self.reply[self._turn % len(self.reply)]
            self._turn += 1
        return text

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _completion(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, _error("messages must be a non-empty list")
        if body.get("model") not in self.models:
            return 404, _error(f"model {body.get('model')!r} does not exist")
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        if len(stop) > 4:
            return 400, _error(f"stop: at most 4 sequences are allowed, got {len(stop)}")
        wants_logprobs = bool(body.get("logprobs"))
        if wants_logprobs and self.reject_logprobs:
            return 400, _error("logprobs are not supported by this server")
        text = self._reply_text(body)
        finish = "stop"
        for marker in stop:
            if marker and marker in text:
                text = text[: text.index(marker)]
        words = text.split(" ")
        limit = body.get("max_tokens")
        if isinstance(limit, int) and len(words) > limit:
            text, finish = " ".join(words[:limit]), "length"
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                                  "finish_reason": finish, "logprobs": None}
        if wants_logprobs and self.top_logprobs is not None:
            table = self.top_logprobs(body) if callable(self.top_logprobs) else self.top_logprobs
            ranked = sorted(table.items(), key=lambda item: -item[1])[: int(body.get("top_logprobs") or 0) or 1]
            first = ranked[0] if ranked else ("", 0.0)
            choice["logprobs"] = {"content": [{
                "token": first[0], "logprob": first[1], "bytes": list(first[0].encode()),
                "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in ranked],
            }]}
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))
        completion_words = len(text.split())
        return 200, {
            "id": f"chatcmpl-fake-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "choices": [choice],
            "usage": {"prompt_tokens": prompt_words, "completion_tokens": completion_words,
                      "total_tokens": prompt_words + completion_words},
        }


def _error(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenAIServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: a dropped connection stays dropped

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        failure = fake._record(RecordedRequest(method, self.path, headers, body if isinstance(body, dict) else {}))
        if failure is not None:
            if failure.status is None:
                self.close_connection = True
                return  # no status line: the client sees the connection closed
            extra = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
            self._send(failure.status, _error(failure.message, "server_error"), extra)
            return
        if fake.api_key is not None and headers.get("authorization") != f"Bearer {fake.api_key}":
            self._send(401, _error("invalid API key", "authentication_error"))
            return
        if not isinstance(body, dict):
            self._send(400, _error("the body is not a JSON object"))
            return
        if method == "GET" and self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "tailor-fake"} for name in fake.models]})
        elif method == "POST" and self.path.rstrip("/") == "/v1/chat/completions":
            fake._enter()
            try:
                delay = fake.delay(body) if callable(fake.delay) else fake.delay
                if delay > 0:
                    time.sleep(delay)
                status, answer = fake._completion(body)
            finally:
                fake._leave()
            if status == 200 and body.get("stream"):
                options = body.get("stream_options")
                self._send_events(answer, isinstance(options, dict) and bool(options.get("include_usage")))
            else:
                self._send(status, answer)
        else:
            self._send(404, _error(f"no route for {method} {self.path}", "not_found_error"))

    def _send_events(self, answer: Mapping[str, Any], include_usage: bool) -> None:
        """``answer`` (a chat completion) as OpenAI streams it: role, word, finish, usage chunks, ``[DONE]``."""
        choice = answer["choices"][0]
        head = {"id": answer["id"], "object": "chat.completion.chunk", "created": answer["created"],
                "model": answer["model"]}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": word}) for word in re.findall(r"\S+\s*|\s+", choice["message"]["content"])]
        chunks.append(chunk({}, choice["finish_reason"]))
        if include_usage:
            chunks.append({**head, "choices": [], "usage": answer["usage"]})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()  # no length: HTTP/1.0, the body ends when the connection closes
        for item in chunks:
            self.wfile.write(f"data: {json.dumps(item)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def _send(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
