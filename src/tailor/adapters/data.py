"""Training data for adapters: a user's history items as (prompt, output) token sequences.

A history item becomes a training pair through the task spec's ``item_turn`` (the item's
input and its output: an article and its headline, a review and its score). The prompt is
built exactly as the ``none`` method builds it at inference (the task's system message and
the input, through the model's chat template), and the target is the output followed by
the end-of-turn token, so the adapter learns the answer and where it ends.

Tasks whose items pair no input with an output (LaMP-1: paper titles; LaMP-7: tweets)
have no ``item_turn``. For them a pair is the task's own instruction with the item's text
as the expected output ("write in this user's words"): the adapter then learns the user's
vocabulary and style rather than an input -> output mapping. This is the documented
fallback; a task without document fields is refused.

A pair may carry its prompt already built (``messages``): ``tailor train-adapter`` builds
every prompt with the personalizer of the method the adapter is trained for
(:mod:`tailor.adapters.prompts`), and such a prompt is encoded as it is, never cut again.
A pair without ``messages`` gets the ``none`` prompt with its input cut to
``max_input_tokens`` (the fast path of the library's trainers).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tailor.prompting.builder import PromptBudget, build_messages, truncate
from tailor.tasks.spec import TaskSpec
from tailor.types import HistoryRecord

__all__ = ["EncodedPair", "TrainingPair", "data_digest", "encode_pairs", "training_pairs"]

_STYLE_PROMPT = "Write one more item in this user's own words and style."


@dataclass(frozen=True)
class TrainingPair:
    """One history item as the model should have answered it."""

    record_id: str
    input: str
    output: str
    messages: tuple[dict[str, str], ...] | None = None
    """The prompt as a personalizer built it (``None``: the ``none`` prompt of ``input``)."""
    context: tuple[str, ...] = ()
    """The ids of the history records that ``messages`` shows."""


@dataclass(frozen=True)
class EncodedPair:
    """Token ids of one pair: the chat-templated prompt followed by the target tokens."""

    record_id: str
    ids: tuple[int, ...]
    prompt_length: int

    @property
    def target_length(self) -> int:
        return len(self.ids) - self.prompt_length


def item_pair(task: TaskSpec, record: HistoryRecord) -> TrainingPair | None:
    """The training pair of one history item, or ``None`` when the item has nothing to learn."""
    turn = task.item_turn(record)
    if turn is not None:
        prompt, output = turn
    else:
        # No input -> output pairing: learn the user's own text (see the module docstring).
        prompt, output = _STYLE_PROMPT, task.document(record)
    if not output.strip() or not prompt.strip():
        return None
    return TrainingPair(record.id, prompt, output.strip())


def training_pairs(task: TaskSpec, records: Iterable[HistoryRecord], *, max_items: int | None = None) -> list[TrainingPair]:
    """The pairs of ``records`` (the last ``max_items`` when given: the most recent history)."""
    if not task.document_fields:
        raise ValueError(f"task {task.name} has no document fields to learn from; adapters do not support it")
    pairs = [p for p in (item_pair(task, r) for r in records) if p is not None]
    if max_items is not None and len(pairs) > max_items:
        pairs = pairs[-max_items:]
    return pairs


def prompt_messages(task: TaskSpec, text: str, count_tokens: Callable[[str], int],
                    max_input_tokens: int) -> tuple[dict[str, str], ...]:
    """The ``none`` method's messages for ``text``, its input cut to ``max_input_tokens``."""
    budget = PromptBudget(input_tokens=max(max_input_tokens, 8), context_tokens=8)
    return build_messages(task, text, (), count_tokens=count_tokens, budget=budget)


def encode_pairs(task: TaskSpec, pairs: Sequence[TrainingPair], tokenizer: Any, *, max_input_tokens: int,
                 max_output_tokens: int) -> list[EncodedPair]:
    """Tokenize pairs through the chat template: the prompt as at inference, then the output.

    A pair's own ``messages`` are the prompt as they are; otherwise the ``none`` prompt of
    its input cut to ``max_input_tokens``.

    The target is the output's tokens (cut to ``max_output_tokens``) and the end-of-turn
    token; the template's text after it (a newline) is not trained.
    """
    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    end = tokenizer.eos_token_id
    encoded = []
    for pair in pairs:
        built = pair.messages if pair.messages is not None else prompt_messages(task, pair.input, count_tokens,
                                                                                max_input_tokens)
        messages = [dict(m) for m in built]
        prompt = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                    return_dict=True)["input_ids"])
        output = truncate(pair.output, max_output_tokens, count_tokens) or pair.output
        target = list(tokenizer(output, add_special_tokens=False)["input_ids"])[:max_output_tokens]
        if end is not None:
            target.append(end)
        encoded.append(EncodedPair(pair.record_id, tuple(prompt + target), len(prompt)))
    return encoded


def data_digest(pairs: Sequence[TrainingPair], extra: Any = None) -> str:
    """A short hash of the training pairs (and ``extra``): an adapter is stale when it changes."""
    rows = [[p.record_id, p.input, p.output] + ([list(p.messages)] if p.messages is not None else []) for p in pairs]
    payload = json.dumps(rows + [extra], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
