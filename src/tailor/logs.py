"""Log lines for tailor's long-running processes (``tailor serve``): one line per record, as
text or as one JSON object, for tailor's loggers and uvicorn's alike.

A record that carries a ``request`` dict (:mod:`tailor.server.request_log`'s one line per
request) has its fields at the top level of the JSON object.
"""

from __future__ import annotations

import json
import logging
import logging.config
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


def logging_config(log_format: LogFormat = "text", level: str = "info", stream: IO[str] | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server's loggers (tailor's and uvicorn's), one line per record."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    formatter: dict[str, Any] = ({"()": JSONFormatter} if log_format == "json" else {"format": TEXT_FORMAT})
    handler: dict[str, Any] = {"class": "logging.StreamHandler", "formatter": "server",
                               "stream": stream if stream is not None else sys.stderr}
    loggers = {name: {"handlers": ["server"], "level": level.upper(), "propagate": False}
               for name in ("tailor", "uvicorn", "uvicorn.error")}
    loggers["uvicorn.access"] = {"handlers": [], "level": "WARNING", "propagate": False}  # raw paths: never
    return {"version": 1, "disable_existing_loggers": False, "formatters": {"server": formatter},
            "handlers": {"server": handler}, "loggers": loggers}


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
    """Send the server's logs to ``stream`` (stderr) as ``log_format``, from ``level`` up."""
    logging.config.dictConfig(logging_config(log_format, level, stream))


__all__ = ["LOG_FORMATS", "TEXT_FORMAT", "JSONFormatter", "LogFormat", "configure_logging", "logfmt", "logging_config"]
