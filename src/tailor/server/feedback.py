"""The feedback routes: ``POST /v1/users/{user_id}/feedback`` and ``GET`` of the same path.

A body is one of three shapes, declared here once (pydantic models, from which both the
check and the OpenAPI description come, as for every route; see :mod:`tailor.server.schema`):

- a pair ``{"messages": [...], "chosen": "...", "rejected": "..."}``;
- a rating ``{"completion_id": "chatcmpl-...", "rating": 1 | -1}`` of a reply served to the user;
- an edit ``{"completion_id": "chatcmpl-...", "edited": "..."}``: the edit is preferred to the reply.

Which shape a body is goes by its fields (``messages``, ``chosen`` or ``rejected``: a pair;
``rating``: a rating; ``edited``: an edit), and a body of that shape with any other field is
a 400 naming it. A ``completion_id`` the user was not served (unknown, or another user's) is
a 404; a text preferred to itself (``chosen`` equal to ``rejected``, an edit equal to the
reply) a 409. What the service does with it is :mod:`tailor.chat.feedback`'s.
"""

from typing import Annotated, Any, Literal

from fastapi import Depends
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
)
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool

from tailor.chat.feedback import FeedbackInput, NoPreference, UnknownCompletion
from tailor.server.config import Limits
from tailor.server.keys import Principal
from tailor.server.schema import NO_NUL, NOT_BLANK, UserId
from tailor.server.service import TailorService
from tailor.server.validation import APIError, not_found
from tailor.store.contract import UnknownUserError

__all__ = ["add_feedback_routes"]


def _rating(value: object) -> object:
    # JSON has one number type (1.0 is 1); true is no rating.
    if isinstance(value, bool):
        raise PydanticCustomError("rating", "Input should be 1 or -1")
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _shape(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    if {"messages", "chosen", "rejected"} & set(body):
        return "pair"
    if "rating" in body:
        return "rating"
    if "edited" in body:
        return "edit"
    return None


def _bodies(limits: Limits) -> Any:
    Text = Annotated[str, StringConstraints(max_length=limits.max_message_chars, pattern=NOT_BLANK)]
    CompletionId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=NOT_BLANK)]

    class Message(BaseModel):
        model_config = ConfigDict(extra="forbid")
        role: Literal["system", "user", "assistant"]
        content: Annotated[str, StringConstraints(max_length=limits.max_message_chars, pattern=NO_NUL)]

    def with_a_user_message(messages: list[Message]) -> list[Message]:
        if not any(message.role == "user" for message in messages):
            raise PydanticCustomError("user_message", "must hold at least one user message")
        return messages

    class Pair(BaseModel):
        """The reply preferred (``chosen``) to ``messages``, and the one passed over."""

        model_config = ConfigDict(extra="forbid")
        messages: Annotated[list[Message], Field(min_length=1, max_length=limits.max_messages, json_schema_extra={
            "contains": {"type": "object", "required": ["role"], "properties": {"role": {"const": "user"}}}}),
            AfterValidator(with_a_user_message)]
        chosen: Text
        rejected: Text

    class Rating(BaseModel):
        """A reply served to the user, liked (1) or not (-1)."""

        model_config = ConfigDict(extra="forbid")
        completion_id: CompletionId
        rating: Annotated[Literal[1, -1], BeforeValidator(_rating)]

    class Edit(BaseModel):
        """A reply served to the user, rewritten: the edit is preferred to the reply."""

        model_config = ConfigDict(extra="forbid")
        completion_id: CompletionId
        edited: Text

    Feedback = Annotated[
        Annotated[Pair, Tag("pair")] | Annotated[Rating, Tag("rating")] | Annotated[Edit, Tag("edit")],
        Discriminator(_shape, custom_error_type="feedback_shape", custom_error_message=(
            "must be a pair {messages, chosen, rejected}, a rating {completion_id, rating} or an edit "
            "{completion_id, edited}"))]

    async def feedback(body: Feedback) -> FeedbackInput:  # type: ignore[valid-type]
        if isinstance(body, Pair):
            return FeedbackInput("pair", tuple({"role": m.role, "content": m.content} for m in body.messages),
                                 chosen=body.chosen, rejected=body.rejected)
        if isinstance(body, Rating):
            return FeedbackInput("rating", completion_id=body.completion_id, rating=int(body.rating))
        return FeedbackInput("edit", completion_id=body.completion_id, edited=body.edited)

    return feedback


def add_feedback_routes(app: Any, service: TailorService, caller: Any) -> None:
    """Add the feedback routes to ``app`` (``caller``: the dependency that authenticates)."""
    body = _bodies(service.config.limits)

    def post(principal: Principal, user_id: str, feedback: FeedbackInput) -> dict[str, Any]:
        try:
            store_id = service.store_id(principal, user_id)
            return {"user_id": user_id, **service.users.feedback.add(store_id, feedback)}
        except UnknownUserError:
            raise not_found(f"unknown user {user_id!r}", "user_id") from None
        except UnknownCompletion:
            raise not_found(f"user {user_id!r} was served no reply {str(feedback.completion_id)[:80]!r}",
                            "completion_id") from None
        except NoPreference as error:
            raise APIError(409, str(error), param=error.field, code="no_preference") from None

    def listed(principal: Principal, user_id: str) -> dict[str, Any]:
        try:
            return {"object": "list", "data": service.users.feedback.list(service.store_id(principal, user_id))}
        except UnknownUserError:
            raise not_found(f"unknown user {user_id!r}", "user_id") from None

    @app.post("/v1/users/{user_id}/feedback")
    async def post_feedback(user_id: UserId, principal: Principal = Depends(caller),
                            feedback: FeedbackInput = Depends(body)) -> Any:
        return await run_in_threadpool(post, principal, user_id, feedback)

    @app.get("/v1/users/{user_id}/feedback")
    async def list_feedback(user_id: UserId, principal: Principal = Depends(caller)) -> Any:
        return await run_in_threadpool(listed, principal, user_id)
