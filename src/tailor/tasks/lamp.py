"""The LaMP tasks (Salemi et al., 2024) as task specs.

Profile items are rendered the way the LaMP paper's prompts show them: a short sentence
per item tying its input to its output ("X" is the title for "Y"), placed before the
task input. For the dialogue layout the same item becomes an earlier exchange: the
item's input as a user turn, its output as the assistant's answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from tailor.metrics.labels import LAMP_LABELS
from tailor.tasks.base import TaskSpec
from tailor.types import HistoryRecord


def _field(record: HistoryRecord, name: str) -> str:
    return record.fields.get(name, "")


@dataclass(frozen=True)
class CitationTask(TaskSpec):
    """LaMP-1: which of two references would this author cite?"""

    def render_item(self, record: HistoryRecord) -> str:
        return f'"{_field(record, "title")}"'


@dataclass(frozen=True)
class ItemLabelTask(TaskSpec):
    """LaMP-2: the label this user gives an item: the tag of a movie (LaMP-2, -2M), the
    category a journalist files an article under (LaMP-2N, the original version)."""

    text_field: str = "description"
    label_field: str = "tag"
    item_noun: str = "movie"

    def render_item(self, record: HistoryRecord) -> str:
        text, label = _field(record, self.text_field), _field(record, self.label_field)
        return f'the {self.label_field} for the {self.item_noun}: "{text}" is "{label}"'

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        question = f"Which {self.label_field} does this {self.item_noun} relate to? {self.query_marker}"
        return f"{question} {_field(record, self.text_field)}", _field(record, self.label_field)

    def long_field(self, record: HistoryRecord) -> str | None:
        return self.text_field


@dataclass(frozen=True)
class RatingTask(TaskSpec):
    """LaMP-3: the score (1-5) this user gives a review they wrote."""

    def render_item(self, record: HistoryRecord) -> str:
        return f'{_field(record, "score")} is the score for "{_field(record, "text")}"'

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        return (f"What is the score of the following review on a scale of 1 to 5? review: {_field(record, 'text')}",
                _field(record, "score"))

    def long_field(self, record: HistoryRecord) -> str | None:
        return "text"


@dataclass(frozen=True)
class TitledTextTask(TaskSpec):
    """LaMP-4, -5, -6: a short title for a long text (headline, paper title, email subject)."""

    title_field: str = "title"
    body_field: str = "text"
    title_noun: str = "title"
    turn_prompt: str = "Generate a title for the following text: "

    def render_item(self, record: HistoryRecord) -> str:
        return f'"{_field(record, self.title_field)}" is the {self.title_noun} for "{_field(record, self.body_field)}"'

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        return (self.turn_prompt + _field(record, self.body_field), _field(record, self.title_field))

    def long_field(self, record: HistoryRecord) -> str | None:
        return self.body_field


@dataclass(frozen=True)
class TweetTask(TaskSpec):
    """LaMP-7: paraphrase a tweet in the user's own style."""

    def render_item(self, record: HistoryRecord) -> str:
        return f'"{_field(record, "text")}"'


_CLASSIFY = "Answer with the label only, exactly as written in the list, without explanation."

LAMP_TASKS: dict[str, TaskSpec] = {
    "LaMP-1": CitationTask(
        name="LaMP-1", kind="classification", labels=LAMP_LABELS["LaMP-1"], max_new_tokens=4,
        instruction="Answer with [1] or [2] only, without explanation.",
        query_marker="", document_fields=("title",),
        context_header="Titles of papers this author has written:",
    ),
    "LaMP-2": ItemLabelTask(
        name="LaMP-2", kind="classification", labels=LAMP_LABELS["LaMP-2"], max_new_tokens=8,
        instruction=_CLASSIFY, query_marker="description:", document_fields=("description",),
        context_header="Tags this user gave to earlier movies:",
    ),
    "LaMP-2M": ItemLabelTask(
        name="LaMP-2M", kind="classification", labels=LAMP_LABELS["LaMP-2M"], max_new_tokens=8,
        instruction=_CLASSIFY, query_marker="description:", document_fields=("description",),
        context_header="Tags this user gave to earlier movies:",
    ),
    "LaMP-2N": ItemLabelTask(
        name="LaMP-2N", kind="classification", labels=LAMP_LABELS["LaMP-2N"], max_new_tokens=8,
        instruction=_CLASSIFY, query_marker="article:", document_fields=("title", "text"),
        text_field="text", label_field="category", item_noun="article",
        context_header="Categories this journalist chose for earlier articles:",
    ),
    "LaMP-3": RatingTask(
        name="LaMP-3", kind="rating", labels=("1", "2", "3", "4", "5"), max_new_tokens=4,
        instruction="Answer with a single number from 1 to 5, without explanation.",
        query_marker="review:", document_fields=("text",),
        context_header="Scores this user gave to their earlier reviews:",
    ),
    "LaMP-4": TitledTextTask(
        name="LaMP-4", kind="generation", max_new_tokens=32,
        instruction="Answer with the headline only, on one line, without quotes or explanation.",
        query_marker="article:", document_fields=("title", "text"),
        title_noun="title", turn_prompt="Generate a headline for the following article: ",
        context_header="Headlines this journalist wrote for earlier articles:",
    ),
    "LaMP-5": TitledTextTask(
        name="LaMP-5", kind="generation", max_new_tokens=32,
        instruction="Answer with the title only, on one line, without quotes or explanation.",
        query_marker="paper:", document_fields=("title", "abstract"),
        body_field="abstract", title_noun="title",
        turn_prompt="Generate a title for the following abstract of a paper: ",
        context_header="Titles this author gave to earlier papers:",
    ),
    "LaMP-6": TitledTextTask(
        name="LaMP-6", kind="generation", max_new_tokens=24,
        instruction="Answer with the subject line only, on one line, without quotes or explanation.",
        query_marker="email:", document_fields=("title", "text"),
        title_noun="subject", turn_prompt="Generate a subject for the following email: ",
        context_header="Subjects this user wrote for earlier emails:",
    ),
    "LaMP-7": TweetTask(
        name="LaMP-7", kind="generation", max_new_tokens=48,
        instruction="Answer with the paraphrased tweet only, on one line, without explanation.",
        query_marker=":", document_fields=("text",),
        context_header="Earlier tweets by this user:",
    ),
}
