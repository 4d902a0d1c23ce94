"""The model behind the server: one backend shared by replies and memory extraction,
and the OpenAI response shapes (a completion, and its streamed chunks).

A ``stream: true`` request is answered with server-sent events in the OpenAI stream
format as the reply is generated. A backend that streams
(:class:`~tailor.backends.base.StreamingBackend`: echo, transformers and the default
model, with or without adapters, and OpenAI-compatible servers) hands on each piece of
text as soon as the model has produced it, so the first chunk leaves after the first
token. Any other backend (llama.cpp) generates the whole reply first, which is then sent
cut into word-sized chunks.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from tailor.backends.base import Backend, BackendError, StreamingBackend, TextStream
from tailor.types import GenerationRequest, GenerationResult

logger = logging.getLogger(__name__)
_CHUNK = re.compile(r"\S+\s*|\s+")
Item = TypeVar("Item")
Ending = TypeVar("Ending")


@dataclass
class _Ticket:
    """One reply waiting for the model, in a batch or on its own."""

    request: GenerationRequest
    taken: bool = False
    done: bool = False
    result: GenerationResult | None = None
    error: BaseException | None = None


class BackendGate:
    """Replies through a backend in batches of up to ``max_batch``, streams one at a time,
    replies before background work.

    Local models are not thread-safe and gain nothing from interleaving, so calls are
    serialized. Replies that arrive while the model is busy wait together and go to the
    model as one batch when it is free (a batch of 4 on a CPU takes far less than 4 single
    calls); a streamed reply holds the model alone until its last piece. A background call
    (memory extraction, summaries) starts only while no reply is running or waiting, so a
    reply waits at most for one background call already under way.
    """

    def __init__(self, backend: Backend, *, max_batch: int = 1) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.backend = backend
        self.max_batch = max_batch
        self._changed = threading.Condition()
        self._busy = False
        self._waiting = 0
        self._queue: deque[_Ticket] = deque()

    def generate(self, request: GenerationRequest, *, background: bool = False) -> GenerationResult:
        if background:
            self._enter(background=True)
            try:
                return self.backend.generate([request])[0]
            finally:
                self._leave()
        ticket = _Ticket(request)
        with self._changed:
            self._queue.append(ticket)
            self._waiting += 1
        while True:
            with self._changed:
                while not ticket.done and (self._busy or ticket.taken):
                    self._changed.wait()
                if ticket.done:
                    break
                # The model is free and this reply still waits: it leads the next batch,
                # the oldest waiting replies (itself among them, or in a later batch).
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
                for taken in batch:
                    taken.taken = True
                self._waiting -= len(batch)
                self._busy = True
            self._run(batch)
        if ticket.error is not None or ticket.result is None:
            raise ticket.error or BackendError("the model gave no answer")
        return ticket.result

    def _run(self, batch: list[_Ticket]) -> None:
        try:
            results = self.backend.generate([ticket.request for ticket in batch])
            for ticket, result in zip(batch, results, strict=True):
                ticket.result = result
        except Exception as error:  # noqa: BLE001 (handed to every reply of the batch, raised there)
            for ticket in batch:
                ticket.error = error
        finally:
            with self._changed:
                for ticket in batch:
                    if ticket.result is None and ticket.error is None:  # interrupted in between
                        ticket.error = BackendError("the model stopped before answering")
                    ticket.done = True
                self._busy = False
                self._changed.notify_all()

    def stream(self, request: GenerationRequest) -> TextStream:
        """A reply piece by piece (word-sized pieces of the whole reply where the backend
        cannot stream). The gate is held from the first piece asked for until the last, or
        until the generator is closed (a client that went away)."""
        self._enter(background=False)
        try:
            if isinstance(self.backend, StreamingBackend):
                return (yield from self.backend.stream(request))
            result = self.backend.generate([request])[0]
            yield from _CHUNK.findall(result.text)
            return result
        finally:
            self._leave()

    def _enter(self, background: bool) -> None:
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

    def _leave(self) -> None:
        with self._changed:
            self._busy = False
            self._changed.notify_all()


def started(stream: Generator[Item, None, Ending]) -> Generator[Item, None, Ending]:
    """``stream`` run now up to its first item, so that a failure at its start (a backend
    error, a refused request) raises here, before any response has been sent; the
    generator returned gives that item, then the rest, and closes ``stream`` when closed."""
    try:
        first = next(stream)
    except StopIteration as end:
        return _ended(end.value)
    resumed = _resumed(first, stream)
    next(resumed)  # into its try block: closed before its first item, it still closes ``stream``
    return resumed


def _resumed(first: Item, stream: Generator[Item, None, Ending]) -> Generator[Any, None, Ending]:
    try:
        yield None  # where started() parks it
        yield first
        return (yield from stream)
    finally:
        stream.close()


def _ended(value: Ending) -> Generator[Any, None, Ending]:
    return value
    yield  # a generator that ends at once, returning ``value``


def count_prompt_tokens(backend: Backend, messages: Sequence[Mapping[str, str]]) -> int:
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


class StreamEnd(Protocol):
    """How a streamed reply ended."""

    @property
    def finish_reason(self) -> str: ...

    @property
    def usage(self) -> dict[str, int]: ...


def stream_events(completion_id: str, model: str, created: int, pieces: Generator[str, None, StreamEnd], *,
                  include_usage: bool) -> Generator[bytes, None, None]:
    """The reply as server-sent events: a role chunk, a chunk per piece as it comes, a
    finish chunk, the usage chunk with ``include_usage``, then ``data: [DONE]``. Closing
    this generator closes ``pieces``."""

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

    try:
        yield event({"role": "assistant", "content": ""})
        while True:
            try:
                piece = next(pieces)
            except StopIteration as stop:
                end: StreamEnd = stop.value
                break
            except Exception as error:
                # Headers are sent: the failure can only be told in the stream. OpenAI's
                # clients raise on an event holding "error"; no [DONE] follows.
                logger.exception("the model failed in the middle of a streamed reply")
                failure = {"error": {"message": f"the model failed while streaming: {type(error).__name__}",
                                     "type": "server_error", "param": None, "code": "stream_failed"}}
                yield f"data: {json.dumps(failure)}\n\n".encode()
                return
            yield event({"content": piece})
    finally:
        pieces.close()
    yield event({}, end.finish_reason)
    if include_usage:
        chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [], "usage": end.usage}
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def now() -> int:
    return int(time.time())


__all__ = ["BackendGate", "StreamEnd", "completion", "count_prompt_tokens", "finish_reason", "now", "started",
           "stream_events"]
