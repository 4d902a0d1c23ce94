"""Every request the HTTP API accepts, declared once: the request bodies as pydantic models,
the path and query parameters as typed FastAPI parameters (in :mod:`tailor.server.app`),
and the error answer. FastAPI checks each request against these declarations, and the
app's OpenAPI description (``app.openapi()``, which the schema-driven fuzz tests generate
requests from) is generated from the same ones. A request that does not fit is answered
400 in OpenAI's error shape by :func:`validation_error`.

Every text field refuses the NUL character (PostgreSQL's text cannot hold it, so the API
refuses it on every store: a request gets the same answer whichever store serves it) and
unpaired surrogates. Integers are JSON integers (``5`` or ``5.0``, never ``"5"`` or
``true``); in a query string, ASCII digits only. Patterns match the whole value: pydantic's regular
expressions, like JSON Schema's, match ``$`` only at the very end, never before a final
newline as Python's ``re.match`` would.

The limits are the app's :class:`~tailor.server.config.Limits`, so the bodies are declared
per app, in :func:`request_bodies`. No ``from __future__ import annotations`` here: FastAPI
reads the annotations of the dependencies declared there, which name local classes.
"""

import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tailor.server.config import Limits
from tailor.server.validation import FIELD_NAME_PATTERN, ROLES, USER_ID_PATTERN, APIError, ChatRequest, invalid
from tailor.types import HistoryRecord

NO_NUL = "^[^\\x00]*$"
NOT_BLANK = "^[^\\x00]*[^\\s\\x00][^\\x00]*$"
USER_ID = f"^{USER_ID_PATTERN.pattern}$"
FIELD_NAME = f"^{FIELD_NAME_PATTERN.pattern}$"
_MEANINGS = {  # what a pattern asks for, in words, for its error message
    NO_NUL: "must not hold the NUL character (\\u0000), which the store cannot keep",
    NOT_BLANK: "must hold something other than white space (and no NUL character)",
    USER_ID: "must be 1-128 letters, digits, '.', '_', '@', '+' or '-', starting with a letter or digit",
    FIELD_NAME: "must be 1-64 letters, digits or '_', not starting with a digit",
}

UserId = Annotated[str, Path(pattern=USER_ID, description=_MEANINGS[USER_ID])]
MemoryId = Annotated[str, Path(description="mem_ and 32 hex digits; any other value names no memory (404)")]
FieldName = Annotated[str, StringConstraints(pattern=FIELD_NAME)]
NAMED_FIELDS: dict[str, Any] = {"propertyNames": {"pattern": FIELD_NAME}}  # JSON Schema's patternProperties leaves other names open
StopText = Annotated[str, StringConstraints(max_length=256, pattern=NO_NUL)]
StrictBool = Annotated[bool, Strict()]


def _json_integer(value: object) -> object:
    # JSON, and its Schema, have one number type: 5.0 is the integer 5 (true and "5" are none).
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _ascii_digits(value: object) -> object:
    # str.isdigit() and int() also take "²" and "５"; and a 5,000-digit number is no count.
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,9}", value):
        raise PydanticCustomError("int_parsing", "Input should be a whole number of at most 9 ASCII digits")
    return value


MemoryCount = Annotated[int, Query(ge=1, le=100, description="how many memories"), BeforeValidator(_ascii_digits)]
FlushSeconds = Annotated[int, Query(ge=1, le=300, description="how long to wait, in seconds"),
                         BeforeValidator(_ascii_digits)]


def _refuse_unless_empty(value: object, info: ValidationInfo) -> None:
    if value:
        raise PydanticCustomError("unsupported", "{name} is not supported by tailor serve", {"name": info.field_name})


Unsupported = Annotated[None, BeforeValidator(_refuse_unless_empty, json_schema_input_type=(
    Literal[False, 0, ""] | Annotated[list[Any], Field(max_length=0)] | Annotated[dict[str, Any], Field(max_length=0)]
    | None))]
"""An OpenAI field tailor cannot honour: absent, null or empty, or refused."""


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """Every error answer, in OpenAI's shape."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorResponse, "description": "The request was refused: `error.param` names the field at "
                                                   "fault (`messages[0].role`), `error.message` what is wrong"}}


SHAPE_TAGS = frozenset({"pair", "rating", "edit"})
"""The tags of a body that is one of several shapes (the feedback route's, :mod:`tailor.server.feedback`)."""


def validation_error(errors: Sequence[Any]) -> APIError:
    """The answer (400) to a request that does not fit its declaration: the first field at
    fault as ``param`` (``messages[0].role``, ``k``), and the message saying what is wrong."""
    error = errors[0]
    location = list(error["loc"][1:])  # after "body", "query" or "path"
    if len(location) > 1 and location[0] in SHAPE_TAGS:  # which shape of a body was checked: no part of its path
        location = location[1:]
    what = _MEANINGS.get(str((error.get("ctx") or {}).get("pattern")), error["msg"])
    if location[-1:] == ["[key]"]:  # the name of an object's entry
        *location, key, _ = location
        what = f"{what} (the name {str(key)[:80]!r})"
    param = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in location).lstrip(".") or None
    if param is not None:
        message = f"{param}: {what}"
    else:
        message = "the request body is missing" if error["type"] == "missing" else f"the request body: {what}"
    return invalid(message + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""), param)


@dataclass(frozen=True)
class RequestBodies:
    """The FastAPI dependencies that read each route's body: checked against its model,
    and given as the value the service takes."""

    chat: Callable[..., Coroutine[Any, Any, ChatRequest]]
    records: Callable[..., Coroutine[Any, Any, list[HistoryRecord]]]
    attributes: Callable[..., Coroutine[Any, Any, dict[str, str]]]


def request_bodies(limits: Limits, default_max_tokens: int) -> RequestBodies:
    """The request bodies of an app with ``limits``."""
    MessageText = Annotated[str, StringConstraints(max_length=limits.max_message_chars, pattern=NO_NUL)]
    RecordText = Annotated[str, StringConstraints(max_length=limits.max_record_chars, pattern=NO_NUL)]
    Tokens = Annotated[int, Strict(), Field(ge=1, le=limits.max_tokens), BeforeValidator(_json_integer)]

    class TextPart(BaseModel):
        type: Literal["text"]
        text: MessageText

    text_parts = TypeAdapter(list[TextPart])

    def joined(content: object) -> object:
        # OpenAI's content parts: only text ones are supported, read as one text.
        return "\n".join(part.text for part in text_parts.validate_python(content)) if isinstance(content, list) \
            else content

    class Message(BaseModel):
        role: Literal["system", "developer", "user", "assistant"]
        content: Annotated[MessageText, BeforeValidator(joined, json_schema_input_type=MessageText | list[TextPart])]

    def with_a_user_message(messages: list[Message]) -> list[Message]:
        if not any(message.role == "user" for message in messages):
            raise PydanticCustomError("user_message", "must hold at least one user message")
        return messages

    def as_list(stop: object) -> object:
        return [stop] if isinstance(stop, str) else [] if stop is None else stop

    StopList = Annotated[list[StopText], Field(max_length=limits.max_stop)]

    class StreamOptions(BaseModel):
        include_usage: StrictBool | None = None

    class ChatCompletion(BaseModel):
        """OpenAI's chat completion request; null stands for absent, as OpenAI's clients send
        it. Unknown fields are ignored, as OpenAI's own server does for fields it does not
        use; fields tailor cannot honour are refused (``n`` other than 1; ``tools``,
        ``functions`` and ``logprobs`` unless empty). Decoding is greedy whatever
        ``temperature`` and ``top_p`` say."""

        model: Annotated[str, StringConstraints(max_length=256, pattern=NO_NUL)] | None = None
        messages: Annotated[list[Message], Field(min_length=1, max_length=limits.max_messages, json_schema_extra={
            "contains": {"type": "object", "required": ["role"], "properties": {"role": {"const": "user"}}}}),
            AfterValidator(with_a_user_message)]
        max_tokens: Tokens | None = None
        max_completion_tokens: Tokens | None = None
        temperature: Annotated[float, Strict(), Field(ge=0.0, le=2.0, allow_inf_nan=False)] | None = None
        top_p: Annotated[float, Strict(), Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None
        n: Annotated[int, Strict(), Field(ge=1, le=1, description="one choice per request"),
                     BeforeValidator(_json_integer)] | None = None
        stop: Annotated[StopList, BeforeValidator(as_list, json_schema_input_type=StopText | StopList | None)] = []
        stream: StrictBool | None = None
        stream_options: StreamOptions | None = None
        user: Annotated[str, StringConstraints(pattern=USER_ID)] | None = None
        tools: Unsupported = None
        functions: Unsupported = None
        logprobs: Unsupported = None

    class Record(BaseModel):
        """A history record: its id, its date if known, and its text fields by name
        (``text``, ``title``...: one at least)."""

        model_config = ConfigDict(extra="allow", json_schema_extra={
            **NAMED_FIELDS, "maxProperties": limits.max_fields_per_record + 2,
            "not": {"propertyNames": {"enum": ["id", "date"]}}})  # a field besides id and date
        __pydantic_extra__: dict[str, RecordText] = Field(init=False)
        id: Annotated[str, StringConstraints(max_length=256, pattern=NOT_BLANK)]
        date: Annotated[str, StringConstraints(max_length=64, pattern=NO_NUL)] | None = None

        @model_validator(mode="after")
        def fields_fit(self) -> Self:
            fields = self.model_extra or {}
            for name in fields:
                if not FIELD_NAME_PATTERN.fullmatch(name):
                    raise PydanticCustomError("field_name", "the field name {name} " + _MEANINGS[FIELD_NAME],
                                              {"name": repr(name[:80])})
            if not fields:
                raise PydanticCustomError("no_text", 'has no text field (such as "text")')
            if len(fields) > limits.max_fields_per_record:
                raise PydanticCustomError("too_many_fields", "has {count} fields; the limit is {limit}",
                                          {"count": len(fields), "limit": limits.max_fields_per_record})
            total = sum(len(text) for text in fields.values())
            if total > limits.max_record_chars:
                raise PydanticCustomError("record_too_long", "holds {total} characters of text; the limit per record "
                                          "is {limit}", {"total": total, "limit": limits.max_record_chars})
            return self

    class Records(BaseModel):
        records: Annotated[list[Record], Field(min_length=1, max_length=limits.max_records_per_batch)]

    class User(BaseModel):
        attributes: Annotated[dict[FieldName, Annotated[str, StringConstraints(
            max_length=limits.max_attribute_chars, pattern=NO_NUL)]], Field(
            max_length=limits.max_attributes, json_schema_extra=NAMED_FIELDS)] | None = None

    async def chat(body: ChatCompletion) -> ChatRequest:
        options = body.stream_options
        return ChatRequest(
            tuple({"role": ROLES[message.role], "content": message.content} for message in body.messages),
            body.model or "", body.max_completion_tokens or body.max_tokens or default_max_tokens,
            tuple(stop for stop in body.stop if stop), bool(body.stream),
            bool(options is not None and options.include_usage), body.user)

    async def records(body: Records) -> list[HistoryRecord]:
        return [HistoryRecord(record.id, dict(record.model_extra or {}), record.date) for record in body.records]

    async def attributes(body: User | None = None) -> dict[str, str]:
        return dict(body.attributes or {}) if body is not None else {}

    return RequestBodies(chat, records, attributes)


__all__ = [
    "ERROR_RESPONSES",
    "NOT_BLANK",
    "NO_NUL",
    "SHAPE_TAGS",
    "FlushSeconds",
    "MemoryCount",
    "MemoryId",
    "RequestBodies",
    "UserId",
    "request_bodies",
    "validation_error",
]
