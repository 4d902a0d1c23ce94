"""Feedback on served replies: what a user preferred, kept as preference data.

Every reply the server gives a known user is kept with its id (the chat completion's
``id``), the conversation as the client sent it, and its text
(:meth:`ServedFeedback.keep_reply`), so that feedback given later names it by id. Feedback
is one of:

- a **pair**: ``messages``, the reply preferred (``chosen``) and the one passed over
  (``rejected``); the client's own comparison, no served reply needed;
- a **rating** of a served reply: ``+1`` (liked: KTO's desirable example) or ``-1``;
- an **edit** of a served reply: the user's rewrite is preferred to the reply (a pair).

Feedback keeps its own copy of the prompt and texts; it is the user's data (in their
export, deleted with them, by cascade) and ``tailor train-preference`` learns from it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from tailor.store import SQLProfileStore
from tailor.store.contract import UnknownUserError

__all__ = ["FeedbackInput", "NoPreference", "ServedFeedback", "UnknownCompletion"]


class UnknownCompletion(LookupError):
    """The user was served no reply of that id (it may be another user's, or none at all)."""


class NoPreference(ValueError):
    """The feedback prefers a text to itself (``field`` names the text at fault)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FeedbackInput:
    """One piece of feedback, as the API takes it (see the module docstring)."""

    kind: Literal["pair", "rating", "edit"]
    messages: tuple[Mapping[str, str], ...] = ()
    chosen: str | None = None
    rejected: str | None = None
    completion_id: str | None = None
    rating: int | None = None
    edited: str | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _row(row: Sequence[Any]) -> dict[str, Any]:
    feedback_id, kind, completion_id, messages, chosen, rejected, rating, source, created_at = row
    return {"id": feedback_id, "object": "feedback", "kind": kind, "completion_id": completion_id,
            "messages": json.loads(messages), "chosen": chosen, "rejected": rejected, "rating": rating,
            "source": source, "created_at": created_at}


class ServedFeedback:
    """Served replies and feedback on them, per user of ``store`` (store ids)."""

    def __init__(self, store: SQLProfileStore) -> None:
        self.store = store

    def keep_reply(self, user_id: str, completion_id: str, messages: Sequence[Mapping[str, str]], reply: str,
                   adapter: str | None) -> None:
        """Keep a reply served to the user, so that feedback can name it (nothing for a user deleted meanwhile)."""
        conversation = json.dumps([{"role": m["role"], "content": m["content"]} for m in messages],
                                  ensure_ascii=False)
        try:
            self.store.keep_served_reply(user_id, completion_id, conversation, reply, adapter, _now())
        except UnknownUserError:
            pass

    def add(self, user_id: str, feedback: FeedbackInput) -> dict[str, Any]:
        """Keep one piece of feedback; return it as stored. Raises :class:`UnknownCompletion`
        for a reply the user was not served, :class:`NoPreference` for a text preferred to
        itself, :class:`UnknownUserError` for a user the store does not hold."""
        if not self.store.has_user(user_id):
            raise UnknownUserError(user_id)
        messages = json.dumps([dict(m) for m in feedback.messages], ensure_ascii=False)
        chosen, rejected, rating = feedback.chosen, feedback.rejected, None
        if feedback.kind != "pair":
            served = self.store.served_reply(user_id, feedback.completion_id or "")
            if served is None:
                raise UnknownCompletion(feedback.completion_id)
            messages, reply = served[0], served[1]
            if feedback.kind == "rating":
                rating = feedback.rating
                chosen, rejected = (reply, None) if (feedback.rating or 0) > 0 else (None, reply)
            else:
                chosen, rejected = feedback.edited, reply
                if (chosen or "").strip() == reply.strip():
                    raise NoPreference("the edit is the reply as it was served: it states no preference", "edited")
        elif (chosen or "").strip() == (rejected or "").strip():
            raise NoPreference("chosen and rejected are the same text: a pair states no preference", "rejected")
        row = (f"fb_{uuid.uuid4().hex}", feedback.kind, feedback.completion_id, messages, chosen, rejected, rating,
               "api", _now())
        self.store.add_feedback(user_id, [row])
        return _row(row)

    def list(self, user_id: str) -> list[dict[str, Any]]:
        """The user's feedback, oldest first."""
        if not self.store.has_user(user_id):
            raise UnknownUserError(user_id)
        return [_row(row) for row in self.store.feedback_rows(user_id)]

    def export(self, user_id: str) -> dict[str, Any]:
        """The user's feedback and the replies kept for it."""
        replies = [{"completion_id": completion_id, "messages": json.loads(messages), "reply": reply,
                    "adapter": adapter, "created_at": created_at}
                   for completion_id, messages, reply, adapter, created_at in self.store.served_replies(user_id)]
        return {"feedback": [_row(row) for row in self.store.feedback_rows(user_id)], "served_replies": replies}
