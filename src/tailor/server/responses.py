"""The OpenAI response shapes of a chat reply: a ``chat.completion`` object, and a
streamed reply as server-sent events in the OpenAI stream format."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any, Protocol

from tailor.backends.contract import BackendError
from tailor.types import GenerationResult

logger = logging.getLogger(__name__)


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


async def stream_events(completion_id: str, model: str, created: int, pieces: AsyncGenerator[str | StreamEnd, None], *,
                        include_usage: bool) -> AsyncGenerator[bytes, None]:
    """The reply as server-sent events: a role chunk, a chunk per piece as it comes, a
    finish chunk, the usage chunk with ``include_usage``, then ``data: [DONE]``.
    ``pieces`` yields the reply's text pieces, then how it ended (a :class:`StreamEnd`).
    Closing this generator closes ``pieces``."""

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

    end: StreamEnd | None = None
    try:
        yield event({"role": "assistant", "content": ""})
        while end is None:
            try:
                item = await anext(pieces)
            except StopAsyncIteration:
                break
            except Exception as error:  # noqa: BLE001 (told to the client in the stream, logged in one line)
                # Headers are sent: the failure can only be told in the stream. OpenAI's
                # clients raise on an event holding "error"; no [DONE] follows.
                logger.error("the model failed in the middle of a streamed reply: %s: %s",
                             type(error).__name__, error)
                failure = {"error": {"message": f"the model failed while streaming: {type(error).__name__}",
                                     "type": "server_error", "param": None, "code": "stream_failed"}}
                yield f"data: {json.dumps(failure)}\n\n".encode()
                return
            if isinstance(item, str):
                yield event({"content": item})
            else:
                end = item
    finally:
        await pieces.aclose()
    if end is None:
        raise BackendError("the streamed reply ended without a result")
    yield event({}, end.finish_reason)
    if include_usage:
        chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [], "usage": end.usage}
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def now() -> int:
    return int(time.time())


__all__ = ["StreamEnd", "completion", "finish_reason", "now", "stream_events"]
