"""Prompt construction: a task input plus retrieved profile items -> chat messages.

Two layouts:
- ``lamp``: retrieved items rendered per task and pasted above the input in one user
  message, as the LaMP paper does;
- ``dialogue``: each retrieved item replayed as an earlier exchange (its input as a
  user turn, its output as the assistant's answer), then the real input. Small chat
  models tend to copy a demonstrated answer format better than they follow pasted
  context. Tasks whose items pair no input with an output fall back to ``lamp``.

Every item and the input are cut to a token budget, so a long profile item cannot push
the input out of the model's window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tailor.tasks.spec import TaskSpec
from tailor.types import Backend, HistoryRecord

Layout = Literal["lamp", "dialogue"]
LAYOUTS: tuple[Layout, ...] = ("lamp", "dialogue")
TokenCounter = Callable[[str], int]
Message = dict[str, str]


@dataclass(frozen=True)
class PromptBudget:
    """Token budgets: for the task input, and for all retrieved items together."""

    input_tokens: int = 384
    context_tokens: int = 384

    def __post_init__(self) -> None:
        if self.input_tokens < 8 or self.context_tokens < 8:
            raise ValueError(f"token budgets must be at least 8, got {self}")


def count_prompt_tokens(backend: Backend, messages: Sequence[Mapping[str, str]]) -> int:
    """How many tokens ``messages`` take for ``backend``'s model, their contents counted
    one by one (a served reply's ``usage.prompt_tokens``)."""
    return sum(backend.count_tokens(message["content"]) for message in messages)


def truncate(text: str, max_tokens: int, count_tokens: TokenCounter) -> str:
    """The longest prefix of ``text``, in whole words, that fits ``max_tokens``."""
    if count_tokens(text) <= max_tokens:
        return text
    words = text.split()
    low, high = 0, len(words)
    while low < high:  # largest n with count(words[:n]) <= max_tokens
        middle = (low + high + 1) // 2
        if count_tokens(" ".join(words[:middle])) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return " ".join(words[:low])


def fit_record(task: TaskSpec, record: HistoryRecord, max_tokens: int, count_tokens: TokenCounter) -> HistoryRecord:
    """``record`` with its longest field cut so that its rendering fits ``max_tokens``."""
    field = task.long_field(record)
    if field is None or count_tokens(task.render_item(record)) <= max_tokens:
        return record
    others = count_tokens(task.render_item(_with_field(record, field, "")))
    kept = truncate(record.fields[field], max(max_tokens - others, 1), count_tokens)
    return _with_field(record, field, kept)


def _with_field(record: HistoryRecord, field: str, value: str) -> HistoryRecord:
    return HistoryRecord(id=record.id, fields={**record.fields, field: value}, date=record.date)


def build_messages(
    task: TaskSpec,
    text: str,
    items: Sequence[HistoryRecord] = (),
    *,
    layout: Layout = "lamp",
    count_tokens: TokenCounter,
    budget: PromptBudget = PromptBudget(),
    extra_context: str | None = None,
) -> tuple[Message, ...]:
    """Chat messages for ``text`` personalized by ``items`` (best first).

    ``extra_context`` is a free-text block (a persona, a profile summary) placed above
    the items.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    text = truncate(text, budget.input_tokens, count_tokens)
    system: Message = {"role": "system", "content": task.instruction}
    share = budget.context_tokens // max(len(items), 1)
    fitted = [fit_record(task, r, share, count_tokens) for r in items]
    turns = [task.item_turn(r) for r in fitted]
    if layout == "dialogue" and fitted and all(t is not None for t in turns):
        messages: list[Message] = [system]
        if extra_context:
            messages[0] = {"role": "system", "content": f"{extra_context}\n\n{task.instruction}"}
        # Best item last, closest to the real input.
        for turn in reversed(turns):
            if turn is not None:
                messages.append({"role": "user", "content": turn[0]})
                messages.append({"role": "assistant", "content": turn[1]})
        messages.append({"role": "user", "content": text})
        return tuple(messages)
    blocks = []
    if extra_context:
        blocks.append(extra_context)
    if fitted:
        lines = "\n".join(f"- {task.render_item(r)}" for r in fitted)
        blocks.append(f"{task.context_header}\n{lines}")
    blocks.append(text)
    return (system, {"role": "user", "content": "\n\n".join(blocks)})
