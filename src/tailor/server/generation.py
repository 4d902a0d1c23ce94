"""The model behind the server: one backend shared by replies and memory extraction,
and the OpenAI response shapes (a completion, and its streamed chunks).

Backends in tailor generate a whole reply per request (none streams tokens), so a
``stream: true`` request gets the finished reply cut into word-sized chunks, sent as
server-sent events; clients see the OpenAI stream format, though the first chunk arrives
only when the reply is done.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from tailor.backends.base import Backend
from tailor.types import GenerationRequest, GenerationResult

_CHUNK = re.compile(r"\S+\s*|\s+")


class BackendGate:
    """One request at a time through a backend, replies before background work.

    Local models are not thread-safe and gain nothing from interleaving, so calls are
    serialized. A background call (memory extraction) starts only while no reply is
    running or waiting, so a reply waits at most for one extraction already under way.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._changed = threading.Condition()
        self._busy = False
        self._waiting = 0

    def generate(self, request: GenerationRequest, *, background: bool = False) -> GenerationResult:
        with self._changed:
            if background:
                while self._busy or self._waiting:
                    self._changed.wait()
            else:
                self._waiting += 1
                try:
                    while self._busy:
                        self._changed.wait()
                finally:
                    self._waiting -= 1
            self._busy = True
        try:
            return self.backend.generate([request])[0]
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()


def count_prompt_tokens(backend: Backend, messages: Sequence[dict[str, str]]) -> int:
    return sum(backend.count_tokens(message["content"]) for message in messages)


def finish_reason(result: GenerationResult, max_tokens: int) -> str:
    return "length" if result.tokens >= max_tokens else "stop"


def completion(completion_id: str, model: str, created: int, text: str, reason: str,
               usage: dict[str, int]) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                     "finish_reason": reason}],
        "usage": usage,
    }


def stream_events(completion_id: str, model: str, created: int, text: str, reason: str,
                  usage: dict[str, int] | None) -> Iterator[bytes]:
    """The reply as server-sent events: a role chunk, word chunks, a finish chunk, an
    optional usage chunk, then ``data: [DONE]``."""

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

    yield event({"role": "assistant", "content": ""})
    for piece in _CHUNK.findall(text):
        yield event({"content": piece})
    yield event({}, reason)
    if usage is not None:
        chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [], "usage": usage}
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def now() -> int:
    return int(time.time())


__all__ = ["BackendGate", "completion", "count_prompt_tokens", "finish_reason", "now", "stream_events"]
