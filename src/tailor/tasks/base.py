"""What a task is: how its inputs and profile items become prompts, and outputs become answers.

A :class:`TaskSpec` knows, for one task, the instruction, how a profile item is shown to
the model (pasted as context in LaMP's layout, or replayed as an earlier dialogue turn),
which item fields retrieval reads, the output type and its parser, and the decoding
limits that keep a small model answering rather than rambling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from tailor.tasks.answers import extract_answer, raw_answer
from tailor.types import HistoryRecord

TaskKind = Literal["classification", "rating", "generation"]
AnswerMode = Literal["extract", "raw"]
"""How generated text becomes a generation task's answer: ``extract`` removes chatter
(:func:`tailor.tasks.answers.extract_answer`); ``raw`` keeps the first line as generated."""
ANSWER_MODES: tuple[AnswerMode, ...] = ("extract", "raw")
ANNOUNCEMENT_TOKENS = 16
"""Extra tokens a one-line generation task may generate when its answer is extracted: room
for an announcing line ("Here's a revised subject for the commit message:") before the answer."""

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class TaskSpec:
    """One task. Subclasses override :meth:`render_item` and, where items pair an input
    with an output, :meth:`item_turn`."""

    name: str
    kind: TaskKind
    instruction: str
    """A system message: the short rule the model must follow (answer format)."""
    query_marker: str
    """The text after the first occurrence of this marker in the input is the retrieval query
    (the first: the content after it, a tweet or an article, may itself contain the marker)."""
    document_fields: tuple[str, ...]
    """Profile item fields that retrieval indexes, in order."""
    labels: tuple[str, ...] = ()
    max_new_tokens: int = 32
    stop: tuple[str, ...] = ("\n",)
    context_header: str = "Here are earlier items by the same user:"
    layout: Literal["lamp", "dialogue"] = "lamp"
    """The prompt layout retrieval methods use unless told otherwise (the one measured best)."""
    k: int = 1
    """Profile items retrieved per input unless told otherwise (``--k``): 1 as in LaMP, or
    the value measured best on the task's train split (the task's spec says where)."""
    data_format: str = ""
    """The LaMP file layout the task's data follows (its own name for LaMP tasks)."""
    answers: AnswerMode = "extract"
    """Generation tasks: extract the answer from the generated text, or keep it ``raw``."""

    @property
    def lamp_format(self) -> str:
        """The LaMP task whose file layout this task's data uses."""
        return self.data_format or self.name

    # -- inputs ------------------------------------------------------------------------------

    def query(self, text: str) -> str:
        """The part of an input that retrieval should match (the article, the review, ...)."""
        if self.query_marker:
            position = text.find(self.query_marker)
            if position != -1:
                return text[position + len(self.query_marker):].strip()
        return text.strip()

    def document(self, record: HistoryRecord) -> str:
        """The text retrieval indexes for one profile item."""
        return record.text(tuple(f for f in self.document_fields if f in record.fields))

    # -- profile items in prompts ---------------------------------------------------------

    def render_item(self, record: HistoryRecord) -> str:
        """One profile item as a line of context (LaMP's layout)."""
        return self.document(record)

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        """One profile item as an earlier (user input, assistant output) exchange, or ``None``
        when the task's items do not pair an input with an output."""
        return None

    def long_field(self, record: HistoryRecord) -> str | None:
        """The field that is cut first when an item does not fit its token budget."""
        candidates = [f for f in self.document_fields if f in record.fields]
        if not candidates:
            return None
        return max(candidates, key=lambda f: len(record.fields[f]))

    # -- outputs ------------------------------------------------------------------------------

    @property
    def generation_stop(self) -> tuple[str, ...]:
        """The stop strings to generate with. When answers are extracted, generation does not
        stop at a line break: a model that announces its answer on a line of its own writes
        the answer on the next, and extraction keeps the first answer line."""
        if self.kind == "generation" and self.answers == "extract":
            return tuple(marker for marker in self.stop if marker.strip())
        return self.stop

    @property
    def generation_tokens(self) -> int:
        """The most tokens to generate: ``max_new_tokens``, plus room for an announcing line
        when a one-line answer is extracted."""
        if self.kind == "generation" and self.answers == "extract" and "\n" in self.stop:
            return self.max_new_tokens + ANNOUNCEMENT_TOKENS
        return self.max_new_tokens

    def parse(self, text: str) -> str:
        """Generated text -> the answer the metric reads (a label, a rating, or text)."""
        text = text.strip()
        if self.kind == "generation":
            if self.answers == "raw":
                return raw_answer(text)
            return extract_answer(text, single_line="\n" in self.stop)
        if self.kind == "rating":
            match = _NUMBER.search(text)
            if match is None:
                return text
            value = float(match.group())
            return str(int(value)) if value.is_integer() else str(value)
        return self.parse_label(text)

    def parse_label(self, text: str) -> str:
        """The label a free-text answer names: exact, then case-insensitive, then the
        earliest label mentioned; the text unchanged if it names none (scored as wrong)."""
        cleaned = text.strip().strip('."\'').strip()
        if cleaned in self.labels:
            return cleaned
        lowered = cleaned.lower()
        for label in self.labels:
            if label.lower() == lowered:
                return label
        best: tuple[int, int, str] | None = None
        for label in self.labels:
            position = lowered.find(label.lower())
            if position != -1:
                # Earliest mention wins; at the same place the longer label ("dark comedy" over "comedy").
                key = (position, -len(label), label)
                best = key if best is None or key < best else best
        return best[2] if best is not None else cleaned

    @property
    def uses_candidates(self) -> bool:
        """Whether the task's answers can be scored as candidates by likelihood."""
        return self.kind in ("classification", "rating") and bool(self.labels)

