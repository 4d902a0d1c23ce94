"""Structured request logs: one line per request, as text (``key=value``) or JSON.

Each line holds the method, the route *template* (``/v1/users/{user_id}``, never the path
the client sent), the status, the milliseconds until the last byte of the answer was sent
(a whole stream included), the tenant the request acted in, and the id of the API key
that made it (a public id, never the key). Nothing else about the request is logged:
no user id (a route template holds none; a hash of a short id could be reversed by
guessing, so not even that), no query string, no header, no message or record text.
A request that the client abandoned (in the middle of its body, while its reply waited
for the model, or in the middle of a streamed reply) is logged once, with status 499 and
``disconnected`` saying when.

:func:`tailor.logs.configure_logging` sets up every logger the server writes to (tailor's
and uvicorn's) with one formatter, so that in ``json`` mode each line on stderr is one JSON
object.
"""

from __future__ import annotations

import logging
import logging.config
import time
from typing import Any

from tailor.logs import logfmt

REQUEST_LOGGER = "tailor.server.requests"
SCOPE_KEY = "tailor.request_log"
"""Where in the ASGI scope a request's log fields wait: the app fills in ``tenant`` and
``key_id`` once it has authenticated the caller, and ``disconnected`` when the client left."""

CLIENT_CLOSED = 499  # nginx's "client closed request": no one received an answer

logger = logging.getLogger(REQUEST_LOGGER)


def route_of(scope: Any) -> str | None:
    """The template of the route that matched (``None`` before routing or when none did)."""
    return getattr(scope.get("route"), "path", None)


def request_fields(scope: Any) -> dict[str, Any]:
    """The log fields of the request in ``scope`` (a fresh dict outside :class:`RequestLog`)."""
    fields = scope.get(SCOPE_KEY)
    return fields if isinstance(fields, dict) else {}


class RequestLog:
    """ASGI middleware that logs one line per HTTP request once its answer is sent."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        fields: dict[str, Any] = {"tenant": None, "key_id": None}
        scope[SCOPE_KEY] = fields
        state: dict[str, Any] = {"status": None, "complete": False}

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["complete"] = True
            await send(message)

        failed = False
        try:
            await self.app(scope, receive, sending)
        except BaseException:
            failed = True
            raise
        finally:
            status: int | None = state["status"]
            if failed and status is None:
                status = 500  # what the outermost error handler answers
            elif not state["complete"] and not failed:  # the answer stopped early: no one was reading
                fields.setdefault("disconnected", "in the middle of its answer")
            if fields.get("disconnected"):
                status = CLIENT_CLOSED
            log_request(scope["method"], route_of(scope), int(status or CLIENT_CLOSED),
                        (time.perf_counter() - began) * 1000.0, fields)


def log_request(method: str, route: str | None, status: int, ms: float, fields: dict[str, Any]) -> None:
    """One request line: its message in ``key=value`` form, its fields on the record (``request``)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    record = {"method": method, "route": route, "status": status, "ms": round(ms, 3),
              "tenant": fields.get("tenant"), "key_id": fields.get("key_id")}
    if fields.get("disconnected"):
        record["disconnected"] = fields["disconnected"]
    logger.info("request %s", logfmt(record), extra={"request": record})


__all__ = ["REQUEST_LOGGER", "RequestLog", "log_request", "request_fields", "route_of"]
