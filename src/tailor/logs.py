"""Log lines for tailor's long-running processes (``tailor serve``): one line per record, as
text or as one JSON object, for tailor's loggers and uvicorn's alike.

A record that carries a ``request`` dict (:mod:`tailor.server.request_log`'s one line per
request) has its fields at the top level of the JSON object.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import IO, Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")


class JSONFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message``, the request
    fields of a request line at the top level, and ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                                "level": record.levelname.lower(), "logger": record.name}
        request = getattr(record, "request", None)
        if isinstance(request, dict):
            line["message"] = "request"
            line.update(request)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def logfmt(fields: Mapping[str, object]) -> str:
    """``fields`` as one line of ``key=value`` pairs (``-`` for ``None``; a value with a space,
    a quote, ``=`` or a backslash in it, empty or not printable, quoted as JSON)."""
    return " ".join(f"{name}={_logfmt(value)}" for name, value in fields.items())


def _logfmt(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' "=\\') or not text.isprintable() else text


def configure_logging(log_format: LogFormat = "text", level: str = "info", stream: IO[str] | None = None) -> None:
    """Send the server's logs (tailor's and uvicorn's loggers) to ``stream`` (stderr) as
    ``log_format``, from ``level`` up; uvicorn's access log (raw paths) stays off.

    Only these loggers are touched: ``logging.config.dictConfig`` would close every other
    handler of the process, and some libraries' handlers close the stream they write to
    when closed (absl's, which OpenVINO imports, closes a captured stderr).
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JSONFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    for name in ("tailor", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.setLevel(logging.WARNING)
    access.propagate = False


__all__ = ["LOG_FORMATS", "TEXT_FORMAT", "JSONFormatter", "LogFormat", "configure_logging", "logfmt"]
