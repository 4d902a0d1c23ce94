"""The HTTP/1.1 connection handling ``tailor serve`` runs uvicorn with: uvicorn's h11
protocol, plus a time limit on each request's head, and the server's own JSON error for a
request the HTTP parser refuses.

- A client gets ``header_timeout`` seconds from the connection (or from the end of the
  previous response) to send a whole request head; past it, a 408 in the server's error
  shape and the connection is closed (a connection that sent nothing is just closed). The
  body has its own limit in the app (``body_timeout``). Without these, a client that opens
  connections and sends a few bytes holds each until it goes away.
- A head the parser refuses (malformed, or over ``h11_max_incomplete_event_size`` while it
  arrives in pieces) gets the same JSON 400 as any other bad request, and a log line,
  instead of uvicorn's plain-text one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from tailor.registry import require

require("uvicorn", "serve")

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger("tailor.server")


def _error(status: int, reason: str, message: str, code: str) -> bytes:
    """A whole response in the server's error shape, as bytes: written as is, since the
    parser's state may not allow a response (no request, or a refused one)."""
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                 "code": code}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n")
    return head.encode("ascii") + body


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a time limit on request heads (see the module docstring)."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in: the app's limits take over
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._head_bytes = 0
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        logger.warning("refused a request that could not be read as HTTP/1.1 from %s: %s",
                       self.client[0] if self.client else "?", msg)
        self._send_error(_error(400, "Bad Request", "the request could not be read as HTTP/1.1 (a malformed head, "
                                "or one over the size limit)", "bad_request"))

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if not self._head_bytes:  # an idle connection: nothing to answer
            self.transport.close()
            return
        logger.warning("closed a connection from %s: its request head did not arrive within %g s (%d bytes)",
                       self.client[0] if self.client else "?", self.header_timeout, self._head_bytes)
        self._send_error(_error(408, "Request Timeout", f"the request head did not arrive within "
                                f"{self.header_timeout:g} s", "request_timeout"))

    def _send_error(self, response: bytes) -> None:
        self.transport.write(response)
        self.transport.close()


def timed_protocol(header_timeout: float) -> Any:
    """The protocol class to give uvicorn (``http=``) for ``header_timeout`` seconds."""
    return type("TailorH11Protocol", (TimedH11Protocol,), {"header_timeout": header_timeout})


__all__ = ["TimedH11Protocol", "timed_protocol"]
