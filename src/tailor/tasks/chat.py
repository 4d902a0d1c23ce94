"""The open-ended chat task that ``tailor serve`` personalizes.

Unlike the LaMP tasks, a chat has no fixed input layout or answer format: the input is
the user's latest message, a profile item is whatever text fields the application
stored (``text``, ``title``, ...), and the reply is free text. It is used by the server
directly and is deliberately not in :data:`tailor.tasks.TASKS` (it has no data set to
evaluate on).
"""

from __future__ import annotations

from dataclasses import dataclass

from tailor.tasks.spec import TaskSpec
from tailor.types import HistoryRecord


@dataclass(frozen=True)
class ChatTask(TaskSpec):
    """A generation task whose items are indexed and shown by all their text fields."""

    memory_header: str = "Facts the user has shared earlier:"

    def document(self, record: HistoryRecord) -> str:
        return record.text()

    def render_item(self, record: HistoryRecord) -> str:
        return record.text()

    def long_field(self, record: HistoryRecord) -> str | None:
        if not record.fields:
            return None
        return max(record.fields, key=lambda name: len(record.fields[name]))


CHAT_TASK = ChatTask(
    name="chat",
    kind="generation",
    instruction=("You are a helpful assistant. Notes about the user follow; use them when they help answer, "
                 "and do not recite them unless asked."),
    query_marker="",
    document_fields=(),
    max_new_tokens=256,
    stop=(),
    context_header="Earlier items from this user:",
    # A served user has no task to measure k on: 3 records, tailor serve's default before
    # eval and serve shared one rule (the caller's k, else the task's).
    k=3,
)

__all__ = ["CHAT_TASK", "ChatTask"]
