"""The LongLaMP tasks (Kumar et al. 2024): personalized long-form generation.

``LongLaMP-2`` writes a paper's abstract from its title and keywords, per author;
``LongLaMP-3`` writes a Reddit post from its summary, per poster; ``LongLaMP-4`` writes a
product review from its rating, summary and the product's description, per reviewer. Their
files are LongLaMP's (:mod:`tailor.data.longlamp`; the user-based and the temporal settings
share one layout); the email task (``LongLaMP-1``, the Avocado corpus) is not public and has
no reader. Scores: ROUGE-1, ROUGE-L and METEOR, as LongLaMP reports them.

Each row's ``input`` is already LongLaMP's whole instruction, so it is the prompt's input as
it is; profile items are shown as LongLaMP's prompts show them (``"<abstract>" is the abstract
for the title "<title>"``) and retrieval reads the fields LongLaMP's retrievers read. Outputs
are paragraphs, so generation does not stop at a line break and keeps every line of the
answer; the token limit leaves room for a few hundred words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tailor.data.lamp import write_outputs
from tailor.data.longlamp import find_split, load_longlamp_split, read_longlamp_outputs
from tailor.tasks.spec import TaskSpec
from tailor.types import HistoryRecord, TaskExample

LONG_FORM_METRICS: tuple[str, ...] = ("rouge-1", "rouge-L", "meteor")
"""LongLaMP's metrics."""
LONG_FORM_TOKENS = 384
"""Tokens a LongLaMP task may generate: LongLaMP's outputs run to a few hundred words (about
1.3 tokens a word for the default model's tokenizer on English prose)."""
LONG_FORM_INSTRUCTION = ("Write the text only, in the user's own style, without a title, a preamble or an "
                         "explanation.")


def _field(record: HistoryRecord, name: str) -> str:
    return record.fields.get(name, "")


@dataclass(frozen=True)
class LongLaMPTask(TaskSpec):
    """A task whose data is in LongLaMP's layout: rows of ``input``, ``output``, ``profile``
    and the user's id under :attr:`user_field`; predictions in LaMP's outputs layout, their
    ``task`` :attr:`outputs_name`."""

    user_field: str = "user_id"
    """The row field holding the user's id (``name``, ``reviewerId``, ``author``)."""
    outputs_name: str = ""
    """What the ``task`` of the task's outputs files says (``LongLaMP_2``); empty: its name."""

    def load(self, folder: str | Path, split: str = "dev", *, limit: int | None = None) -> list[TaskExample]:
        return load_longlamp_split(folder, split, user_field=self.user_field, fields=self.profile_fields, limit=limit)

    def has_split(self, folder: str | Path, split: str) -> bool:
        try:
            find_split(folder, split)
        except FileNotFoundError:
            return False
        return True

    def has_golds(self, folder: str | Path, split: str) -> bool:
        return self.has_split(folder, split)  # each row holds its output

    @property
    def outputs_task(self) -> str:
        return self.outputs_name or self.name

    def write_predictions(self, path: str | Path, predictions: Mapping[str, str] | Sequence[tuple[str, str]]) -> None:
        write_outputs(path, self.outputs_task, predictions)

    def read_outputs(self, path: str | Path) -> dict[str, str]:
        return read_longlamp_outputs(path)


@dataclass(frozen=True)
class AbstractTask(LongLaMPTask):
    """LongLaMP-2: an abstract from its paper's title (and keywords), per author."""

    def render_item(self, record: HistoryRecord) -> str:
        return f'"{_field(record, "abstract")}" is the abstract for the title "{_field(record, "title")}"'

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        return f'Generate an abstract for the title "{_field(record, "title")}".', _field(record, "abstract")

    def long_field(self, record: HistoryRecord) -> str | None:
        return "abstract"


@dataclass(frozen=True)
class TopicTask(LongLaMPTask):
    """LongLaMP-3: a Reddit post from its summary, per poster."""

    def render_item(self, record: HistoryRecord) -> str:
        return f'"{_field(record, "summary")}" is a summary for "{_field(record, "content")}"'

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        return f"Generate the content for a reddit post {_field(record, 'summary')}", _field(record, "content")

    def long_field(self, record: HistoryRecord) -> str | None:
        return "content"


@dataclass(frozen=True)
class ReviewTask(LongLaMPTask):
    """LongLaMP-4: a product review from its rating, its summary and the product's
    description, per reviewer."""

    def render_item(self, record: HistoryRecord) -> str:
        return (f'"{_field(record, "overall")}" is a rating for the product with description '
                f'"{_field(record, "description")}". "{_field(record, "summary")}" is summary for '
                f'"{_field(record, "reviewText")}"')

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        question = (f'Generate the review text written by a reviewer who has given an overall rating of '
                    f'"{_field(record, "overall")}" for a product with description "{_field(record, "description")}". '
                    f'The summary of the review text is "{_field(record, "summary")}".')
        return question, _field(record, "reviewText")

    def long_field(self, record: HistoryRecord) -> str | None:
        return "reviewText"


LONGLAMP_2 = AbstractTask(
    name="LongLaMP-2", outputs_name="LongLaMP_2", user_field="name", profile_fields=("title", "abstract"),
    # LongLaMP's retrievers query with the keywords after "items:" and index title and abstract.
    query_marker="items:", document_fields=("title", "abstract"),
    context_header="Abstracts this author wrote for earlier papers:", users_are="authors",
    kind="generation", instruction=LONG_FORM_INSTRUCTION, max_new_tokens=LONG_FORM_TOKENS, stop=(),
    metrics=LONG_FORM_METRICS,
)
"""``LongLaMP-2``: personalized abstract generation (``abstract_generation_user`` / ``_temporal``)."""

LONGLAMP_3 = TopicTask(
    name="LongLaMP-3", outputs_name="LongLaMP_3", user_field="author", profile_fields=("summary", "content"),
    query_marker="", document_fields=("summary", "content"),
    context_header="Posts this user wrote earlier:", users_are="posters",
    kind="generation", instruction=LONG_FORM_INSTRUCTION, max_new_tokens=LONG_FORM_TOKENS, stop=(),
    metrics=LONG_FORM_METRICS,
)
"""``LongLaMP-3``: personalized topic writing (``topic_writing_user`` / ``_temporal``)."""

LONGLAMP_4 = ReviewTask(
    name="LongLaMP-4", outputs_name="LongLaMP_4", user_field="reviewerId",
    profile_fields=("overall", "summary", "description", "reviewText"),
    query_marker="", document_fields=("overall", "summary", "description", "reviewText"),
    context_header="Reviews this user wrote earlier:", users_are="reviewers",
    kind="generation", instruction=LONG_FORM_INSTRUCTION, max_new_tokens=LONG_FORM_TOKENS, stop=(),
    metrics=LONG_FORM_METRICS,
)
"""``LongLaMP-4``: personalized product review writing (``product_review_user`` / ``_temporal``)."""
