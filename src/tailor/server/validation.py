"""Request checking: JSON bodies into typed values, or a 4xx :class:`APIError` saying what was wrong.

Nothing a client sends reaches the store or the model unchecked: malformed JSON, wrong
types, lone surrogates (which SQLite cannot store), NaN, oversized fields and unknown
roles are all refused here with the OpenAI error shape ``{"error": {"message", "type",
"param", "code"}}``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tailor.server.config import Limits
from tailor.types import HistoryRecord

# Every pattern here is used with fullmatch: "$" would also match before a final newline.
USER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
MEMORY_ID_PATTERN = re.compile(r"mem_[0-9a-f]{32}")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_DECIMAL = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit() also takes "²", which int() refuses
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


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
    """The JSON value of a request body (an empty body is ``None``)."""
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


def check_text(value: object, param: str, *, max_chars: int, allow_empty: bool = True) -> str:
    """A string that every store (SQLite, PostgreSQL) and the model can take, at most
    ``max_chars`` long. PostgreSQL's text cannot hold the NUL character, so the API refuses
    it on every store: a request gets the same answer whichever store serves it."""
    if not isinstance(value, str):
        raise invalid(f"{param} must be a string, got {_kind(value)}", param)
    if len(value) > max_chars:
        raise invalid(f"{param} is {len(value)} characters long; the limit is {max_chars}", param)
    if not allow_empty and not value.strip():
        raise invalid(f"{param} must not be empty", param)
    if "\x00" in value:
        raise invalid(f"{param} holds a NUL character (\\u0000), which the store cannot keep", param)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(f"{param} holds an unpaired surrogate (not valid Unicode text)", param) from None
    return value


def check_user_id(user_id: str, param: str = "user_id") -> str:
    if not isinstance(user_id, str) or not USER_ID_PATTERN.fullmatch(user_id):
        raise invalid(f"{param} must be 1-128 characters of letters, digits, '.', '_', '@', '+' and '-', "
                      f"starting with a letter or digit; got {user_id[:140]!r}", param)
    return user_id


def require_object(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise invalid(f"the {what} body must be a JSON object, got {_kind(body)}")
    return body


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


def _integer(value: object, param: str, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():  # 5.0 is an integer in JSON (and its Schema)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{param} must be an integer, got {_kind(value)}", param)
    if not low <= value <= high:
        raise invalid(f"{param} must be between {low} and {high}, got {value}", param)
    return value


def parse_query_integer(value: str | None, param: str, *, default: int, low: int, high: int) -> int:
    """A query parameter holding an integer from ``low`` to ``high`` (``default`` when absent):
    ASCII digits only, so that neither "²" nor a 5,000-digit number gets near ``int()``."""
    if value is None:
        return default
    if not _DECIMAL.fullmatch(value) or not low <= int(value) <= high:
        raise invalid(f"{param} must be an integer from {low} to {high}, got {value[:40]!r}", param)
    return int(value)


def parse_query_flag(value: str | None, param: str) -> bool:
    """A query parameter holding a boolean (false when absent)."""
    if value is None:
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise invalid(f"{param} must be true or false, got {value[:40]!r}", param)


def _number(value: object, param: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise invalid(f"{param} must be a number, got {_kind(value)}", param)
    if not low <= value <= high:
        raise invalid(f"{param} must be between {low} and {high}, got {value}", param)
    return float(value)


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


def parse_chat(body: Any, limits: Limits, default_max_tokens: int) -> ChatRequest:
    """A chat completion request in OpenAI's shape. Unknown fields are ignored, as OpenAI's
    own server does for fields it does not use; fields tailor cannot honour are refused."""
    request = require_object(body, "chat completion")
    model = request.get("model", "")
    model = check_text(model, "model", max_chars=256) if model is not None else ""
    messages = _messages(request.get("messages"), limits)
    max_tokens = default_max_tokens
    for name in ("max_tokens", "max_completion_tokens"):
        if request.get(name) is not None:
            max_tokens = _integer(request[name], name, 1, limits.max_tokens)
    if request.get("temperature") is not None:
        _number(request["temperature"], "temperature", 0.0, 2.0)  # decoding is greedy whatever it says
    if request.get("top_p") is not None:
        _number(request["top_p"], "top_p", 0.0, 1.0)
    if request.get("n") is not None and _integer(request["n"], "n", 1, 128) != 1:
        raise invalid("n must be 1: tailor returns one choice per request", "n")
    for unsupported in ("tools", "functions", "logprobs"):
        if request.get(unsupported):
            raise invalid(f"{unsupported} is not supported by tailor serve", unsupported)
    stream = request.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise invalid(f"stream must be a boolean, got {_kind(stream)}", "stream")
    include_usage = False
    options = request.get("stream_options")
    if options is not None:
        options = require_object(options, "stream_options")
        include_usage = options.get("include_usage", False)
        if include_usage is None:
            include_usage = False
        if not isinstance(include_usage, bool):
            raise invalid(f"stream_options.include_usage must be a boolean, got {_kind(include_usage)}",
                          "stream_options.include_usage")
    user = request.get("user")
    if user is not None:
        user = check_user_id(check_text(user, "user", max_chars=256), "user")
    return ChatRequest(messages, model, max_tokens, _stop(request.get("stop"), limits), stream, include_usage, user)


def _messages(value: object, limits: Limits) -> tuple[dict[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise invalid("messages must be a non-empty array", "messages")
    if len(value) > limits.max_messages:
        raise invalid(f"messages holds {len(value)} messages; the limit is {limits.max_messages}", "messages")
    checked = []
    for index, message in enumerate(value):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise invalid(f"{param} must be an object, got {_kind(message)}", param)
        role = message.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise invalid(f"{param}.role must be one of system, developer, user, assistant; got {role!r}",
                          f"{param}.role")
        content = message.get("content")
        if isinstance(content, list):  # OpenAI's content parts: only text ones are supported
            texts = []
            for part_index, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") != "text":
                    raise invalid(f"{param}.content[{part_index}] must be a text part", f"{param}.content")
                texts.append(check_text(part.get("text"), f"{param}.content[{part_index}].text",
                                        max_chars=limits.max_message_chars))
            content = "\n".join(texts)
        checked.append({"role": _ROLES[role],
                        "content": check_text(content, f"{param}.content", max_chars=limits.max_message_chars)})
    if not any(message["role"] == "user" for message in checked):
        raise invalid("messages must hold at least one user message", "messages")
    return tuple(checked)


def _stop(value: object, limits: Limits) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > limits.max_stop:
        raise invalid(f"stop must be a string or an array of at most {limits.max_stop} strings", "stop")
    return tuple(check_text(item, "stop", max_chars=256) for item in items if item != "")


def parse_records(body: Any, limits: Limits) -> list[HistoryRecord]:
    """``{"records": [{"id": ..., "text": ..., other string fields, "date"?: ...}]}``."""
    records = require_object(body, "records").get("records")
    if not isinstance(records, list) or not records:
        raise invalid("records must be a non-empty array of objects", "records")
    if len(records) > limits.max_records_per_batch:
        raise invalid(f"records holds {len(records)} records; the limit per batch is {limits.max_records_per_batch}",
                      "records")
    return [_record(item, f"records[{index}]", limits) for index, item in enumerate(records)]


def _record(item: object, param: str, limits: Limits) -> HistoryRecord:
    if not isinstance(item, dict):
        raise invalid(f"{param} must be an object, got {_kind(item)}", param)
    record_id = check_text(item.get("id"), f"{param}.id", max_chars=256, allow_empty=False)
    date = item.get("date")
    if date is not None:
        date = check_text(date, f"{param}.date", max_chars=64)
    fields = {name: value for name, value in item.items() if name not in ("id", "date")}
    if not fields:
        raise invalid(f"{param} has no text field (such as \"text\")", param)
    if len(fields) > limits.max_fields_per_record:
        raise invalid(f"{param} has {len(fields)} fields; the limit is {limits.max_fields_per_record}", param)
    total = 0
    for name, value in fields.items():
        if not _FIELD_NAME.fullmatch(name):
            raise invalid(f"{param}: field name {name[:80]!r} must be 1-64 letters, digits or '_'", param)
        total += len(check_text(value, f"{param}.{name}", max_chars=limits.max_record_chars))
    if total > limits.max_record_chars:
        raise invalid(f"{param} holds {total} characters of text; the limit per record is {limits.max_record_chars}",
                      param)
    return HistoryRecord(record_id, fields, date)


def parse_attributes(body: Any, limits: Limits) -> dict[str, str]:
    """``{"attributes": {name: string}}`` (an empty or missing body means none)."""
    if body is None:
        return {}
    attributes = require_object(body, "user").get("attributes", {})
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise invalid(f"attributes must be an object of strings, got {_kind(attributes)}", "attributes")
    if len(attributes) > limits.max_attributes:
        raise invalid(f"attributes holds {len(attributes)} entries; the limit is {limits.max_attributes}",
                      "attributes")
    checked = {}
    for name, value in attributes.items():
        if not _FIELD_NAME.fullmatch(name):
            raise invalid(f"attribute name {name[:80]!r} must be 1-64 letters, digits or '_'", "attributes")
        checked[name] = check_text(value, f"attributes.{name}", max_chars=limits.max_attribute_chars)
    return checked


PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "user_id": {"type": "string", "pattern": "^" + USER_ID_PATTERN.pattern + "$"},
    "memory_id": {"type": "string", "pattern": "^" + MEMORY_ID_PATTERN.pattern + "$"},
}
"""The schema of each path parameter, by name, as the routes check it."""


def describe_path_parameters(openapi: dict[str, Any]) -> dict[str, Any]:
    """``openapi`` (the app's generated description) with each path parameter's schema
    replaced by the one its route checks (:data:`PATH_PARAMETERS`)."""
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") in PATH_PARAMETERS:
                    parameter["schema"] = dict(PATH_PARAMETERS[parameter["name"]])
    return openapi


def openapi_operations(limits: Limits) -> dict[str, dict[str, Any]]:
    """What each route accepts, as OpenAPI (the app's ``openapi_extra``; the fuzz tests
    generate requests from it): the bodies and query parameters the parsers above check,
    with the same limits. Keyed by the route's function name."""
    no_nul = "^[^\\x00]*$"  # check_text refuses the NUL character
    text = {"type": "string", "pattern": no_nul}

    def optional(schema: dict[str, Any]) -> dict[str, Any]:
        # The parsers take null as absent for every optional field (as OpenAI's clients send it).
        return {"anyOf": [schema, {"type": "null"}]}

    user_id = {"type": "string", "pattern": "^" + USER_ID_PATTERN.pattern + "$"}
    field_name = "^" + _FIELD_NAME.pattern + "$"
    content_part = {"type": "object", "required": ["type", "text"],
                    "properties": {"type": {"enum": ["text"]},
                                   "text": {"type": "string", "maxLength": limits.max_message_chars,
                                            "pattern": no_nul}}}
    message = {"type": "object", "required": ["role", "content"], "properties": {
        "role": {"enum": sorted(_ROLES)},
        "content": {"oneOf": [{"type": "string", "maxLength": limits.max_message_chars, "pattern": no_nul},
                              {"type": "array", "items": content_part}]}}}
    tokens = optional({"type": "integer", "minimum": 1, "maximum": limits.max_tokens})
    unsupported = {"anyOf": [{"type": "null"}, {"const": False}, {"const": 0}, {"const": ""},
                             {"type": "array", "maxItems": 0}, {"type": "object", "maxProperties": 0}]}
    stop = {"type": "string", "maxLength": 256, "pattern": no_nul}
    chat = {"type": "object", "required": ["messages"], "properties": {
        "model": optional({"type": "string", "maxLength": 256, "pattern": no_nul}),
        "messages": {"type": "array", "minItems": 1, "maxItems": limits.max_messages, "items": message,
                     "contains": {"type": "object", "required": ["role"], "properties": {"role": {"const": "user"}}}},
        "max_tokens": tokens, "max_completion_tokens": tokens,
        "temperature": optional({"type": "number", "minimum": 0, "maximum": 2}),
        "top_p": optional({"type": "number", "minimum": 0, "maximum": 1}), "n": {"enum": [1, None]},
        "stop": {"oneOf": [stop, {"type": "array", "maxItems": limits.max_stop, "items": stop}, {"type": "null"}]},
        "stream": optional({"type": "boolean"}),
        "stream_options": optional({"type": "object", "properties": {"include_usage": optional({"type": "boolean"})}}),
        "user": optional(user_id),
        # Refused when given a value, as the parser does; absent, null or an empty/false value passes.
        **{name: unsupported for name in ("tools", "functions", "logprobs")}}}
    record = {"type": "object", "required": ["id", "text"], "maxProperties": limits.max_fields_per_record + 2,
              "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 256,
                                    "pattern": "^[^\\x00]*[^\\s\\x00][^\\x00]*$"},  # not only white space
                             "date": optional({"type": "string", "maxLength": 64, "pattern": no_nul}),
                             "text": {"type": "string", "maxLength": limits.max_record_chars, "pattern": no_nul}},
              "propertyNames": {"pattern": field_name}, "additionalProperties": text}
    records = {"type": "object", "required": ["records"], "properties": {
        "records": {"type": "array", "minItems": 1, "maxItems": limits.max_records_per_batch, "items": record}}}
    attributes = {"type": "object", "properties": {"attributes": optional({
        "type": "object", "maxProperties": limits.max_attributes, "propertyNames": {"pattern": field_name},
        "additionalProperties": {"type": "string", "maxLength": limits.max_attribute_chars, "pattern": no_nul}})}}

    def body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
        return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}

    def query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema}

    return {
        "chat_completions": body(chat),
        "put_user": body(optional(attributes), required=False),
        "add_records": body(records),
        "list_memories": {"parameters": [
            query("include_superseded", {"type": "boolean"}),
            query("k", {"type": "integer", "minimum": 1, "maximum": 100}),
            query("query", {"type": "string", "maxLength": limits.max_message_chars, "pattern": no_nul})]},
        "flush_memories": {"parameters": [query("timeout", {"type": "integer", "minimum": 1, "maximum": 300})]},
    }


__all__ = [
    "MEMORY_ID_PATTERN",
    "USER_ID_PATTERN",
    "APIError",
    "ChatRequest",
    "check_text",
    "check_user_id",
    "describe_path_parameters",
    "invalid",
    "not_found",
    "openapi_operations",
    "parse_attributes",
    "parse_chat",
    "parse_json",
    "parse_query_flag",
    "parse_query_integer",
    "parse_records",
]
