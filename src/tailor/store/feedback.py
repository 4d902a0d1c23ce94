"""Served replies and users' feedback on them, kept in a SQL store: what
:mod:`tailor.chat.feedback` and ``tailor train-preference`` read and write.

:class:`FeedbackData` is a base of both SQL stores; its statements read the same in SQLite
and PostgreSQL. Tables (schema version 5, :mod:`tailor.store.migrations`), each referencing
``users(user_id) ON DELETE CASCADE``, so deleting a user deletes their replies and feedback::

    served_replies(completion_id, user_id, messages, reply, adapter, created_at)
    feedback(feedback_id, user_id, kind, completion_id, messages, chosen, rejected, rating,
             source, created_at)

Every statement but :meth:`FeedbackData.users_with_feedback` (the training job's list of
whom to train, cross-user by nature) names the ``user_id``: a reply is found only among
its own user's. Messages are JSON text; times are ISO-8601 UTC with microseconds, so that
``created_at >= since`` picks exactly what came after a training run began.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tailor.store.conversations import ConnectionT, ConversationData

__all__ = ["FEEDBACK_COLUMNS", "FeedbackData", "FeedbackRow"]

FEEDBACK_COLUMNS = "feedback_id, kind, completion_id, messages, chosen, rejected, rating, source, created_at"
FeedbackRow = tuple[str, str, "str | None", str, "str | None", "str | None", "int | None", str, str]
"""A feedback row in :data:`FEEDBACK_COLUMNS`' order."""


class FeedbackData(ConversationData[ConnectionT]):
    """Served replies and the feedback given on them (or sent as pairs), per user."""

    def keep_served_reply(self, user_id: str, completion_id: str, messages: str, reply: str, adapter: str | None,
                          created_at: str) -> None:
        """Keep a reply served to the user (``messages``: the JSON of the conversation as sent).
        Raises :class:`UnknownUserError`, also when the user is deleted meanwhile."""
        with self.transaction() as connection:
            self._hold_user(connection, user_id)
            connection.execute(self._sql(
                "INSERT INTO served_replies (completion_id, user_id, messages, reply, adapter, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (completion_id) DO NOTHING"),
                (completion_id, user_id, self._check_text(messages, "messages", "keep_served_reply"),
                 self._check_text(reply, "reply", "keep_served_reply"), adapter, created_at))

    def served_reply(self, user_id: str, completion_id: str) -> tuple[str, str, str | None, str] | None:
        """``(messages, reply, adapter, created_at)`` of the user's reply ``completion_id``, or
        ``None`` when the user was served no reply of that id."""
        with self._reading() as connection:
            row = connection.execute(self._sql(
                "SELECT messages, reply, adapter, created_at FROM served_replies WHERE user_id = ? "
                "AND completion_id = ?"), (user_id, completion_id)).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])

    def served_replies(self, user_id: str) -> list[tuple[str, str, str, str | None, str]]:
        """``(completion_id, messages, reply, adapter, created_at)`` of every reply kept for the user, oldest first."""
        with self._reading() as connection:
            return [(row[0], row[1], row[2], row[3], row[4]) for row in connection.execute(self._sql(
                "SELECT completion_id, messages, reply, adapter, created_at FROM served_replies WHERE user_id = ? "
                "ORDER BY created_at, completion_id"), (user_id,))]

    def add_feedback(self, user_id: str, rows: Sequence[FeedbackRow]) -> int:
        """Keep feedback rows (:data:`FEEDBACK_COLUMNS`) for the user in one transaction; a row
        whose id is held already is left as it is. Returns how many were new. Raises
        :class:`UnknownUserError`."""
        added = 0
        with self.transaction() as connection:
            self._hold_user(connection, user_id)
            for row in rows:
                checked = tuple(self._check_text(value, "feedback", "add_feedback") if isinstance(value, str)
                                else value for value in row)
                added += connection.execute(self._sql(
                    f"INSERT INTO feedback (user_id, {FEEDBACK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (feedback_id) DO NOTHING"), (user_id, *checked)).rowcount
        return added

    def feedback_rows(self, user_id: str, *, since: str | None = None) -> list[FeedbackRow]:
        """The user's feedback (:data:`FEEDBACK_COLUMNS`), oldest first; with ``since`` only
        what was given at or after that time."""
        where, values = ("", (user_id,)) if since is None else (" AND created_at >= ?", (user_id, since))
        with self._reading() as connection:
            return [_row(row) for row in connection.execute(self._sql(
                f"SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE user_id = ?{where} ORDER BY created_at, feedback_id"),
                values)]

    def users_with_feedback(self, *, since: str | None = None) -> list[str]:
        """Every user who gave feedback (at or after ``since``, when given), sorted (cross-user:
        which users a training run retrains)."""
        where, values = ("", ()) if since is None else (" WHERE created_at >= ?", (since,))
        with self._reading() as connection:
            return [row[0] for row in connection.execute(self._sql(
                f"SELECT DISTINCT user_id FROM feedback{where} ORDER BY user_id"), values)]


def _row(row: Any) -> FeedbackRow:
    rating = None if row[6] is None else int(row[6])
    return (row[0], row[1], row[2], row[3], row[4], row[5], rating, row[7], row[8])
