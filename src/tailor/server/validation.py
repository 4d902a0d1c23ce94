"""What the HTTP API refuses, and how: the error answered to the client, the patterns an
id must match in full, and the checked chat request the service takes.

The requests themselves are declared in :mod:`tailor.server.schema` (pydantic models and
typed FastAPI parameters), from which both their checking and the OpenAPI description
come. Every error is answered in OpenAI's shape ``{"error": {"message", "type", "param",
"code"}}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# Every pattern here is used with fullmatch: "$" would also match before a final newline.
USER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
MEMORY_ID_PATTERN = re.compile(r"mem_[0-9a-f]{32}")
FIELD_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
"""The message roles a chat may hold, and the role each is given to the model as."""


class APIError(Exception):
    """An error answered to the client as ``{"error": {...}}`` with ``status``."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid(message: str, param: str | None = None) -> APIError:
    return APIError(400, message, param=param)


def not_found(message: str, param: str | None = None) -> APIError:
    return APIError(404, message, type="not_found_error", param=param, code="not_found")


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """The JSON value of a request body (an empty body is ``None``): strict JSON, in UTF-8."""
    if not body.strip():
        return None
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise invalid("the request body is not UTF-8") from None
    except RecursionError:
        raise invalid("the request body nests too deeply") from None
    except ValueError as error:
        raise invalid(f"the request body is not valid JSON: {error}") from None


def check_user_id(user_id: str, param: str = "user_id") -> str:
    if not isinstance(user_id, str) or not USER_ID_PATTERN.fullmatch(user_id):
        raise invalid(f"{param} must be 1-128 characters of letters, digits, '.', '_', '@', '+' and '-', "
                      f"starting with a letter or digit; got {user_id[:140]!r}", param)
    return user_id


@dataclass(frozen=True)
class ChatRequest:
    """A checked chat completion request."""

    messages: tuple[dict[str, str], ...]
    model: str
    max_tokens: int
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool
    user: str | None

    @property
    def last_user_message(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")


__all__ = [
    "FIELD_NAME_PATTERN",
    "MEMORY_ID_PATTERN",
    "ROLES",
    "USER_ID_PATTERN",
    "APIError",
    "ChatRequest",
    "check_user_id",
    "invalid",
    "not_found",
    "parse_json",
]
