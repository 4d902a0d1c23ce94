"""The LaMP tasks (Salemi et al., 2024): one table of their facts, and their names.

:data:`LAMP_TASKS` is the one place a LaMP task's facts live: its name, kind, label set (in
the official evaluator's order), profile fields, prompts and decoding limits. The names
every spelling is checked against, the outputs files' ``LaMP_k`` and the file layout that
tailor's packaged tasks borrow (``data_format="LaMP-4"``) are all read from it.

Profile items are rendered the way the LaMP paper's prompts show them: a short sentence
per item tying its input to its output ("X" is the title for "Y"), placed before the
task input. For the dialogue layout the same item becomes an earlier exchange: the
item's input as a user turn, its output as the assistant's answer.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

from tailor.data.lamp import DataFormatError, read_outputs, split_files
from tailor.tasks.spec import TaskSpec
from tailor.types import HistoryRecord


def _field(record: HistoryRecord, name: str) -> str:
    return record.fields.get(name, "")


@dataclass(frozen=True)
class LampLayoutTask(TaskSpec):
    """A task whose data follows a LaMP task's file layout: its own, or the one ``data_format``
    names (tailor's packaged tasks). Unless it declares its own profile fields, they are that
    LaMP task's; its outputs files say what LaMP's say (``LaMP_4``; ``LaMP_2`` for every
    LaMP-2 variant), and a file that names another LaMP task is refused."""

    def __post_init__(self) -> None:
        # A task borrowing a LaMP task's layout borrows its fields; LaMP's own rows state theirs.
        if self.data_format:
            layout = LAMP_TASKS[normalize_task_name(self.data_format)]
            if not self.profile_fields:
                object.__setattr__(self, "profile_fields", layout.profile_fields)

    @property
    def outputs_task(self) -> str:
        return official_name(self.lamp_format)

    def check_outputs_task(self, named: str) -> None:
        in_file, ours = normalize_task_name(named), normalize_task_name(self.lamp_format)
        # An outputs file can only say "LaMP_2", which fits either LaMP-2 variant.
        if in_file not in (ours, normalize_task_name(official_name(ours))):
            raise ValueError(f"says {in_file} but task {ours} was asked for")

    def read_outputs(self, path: str | Path) -> dict[str, str]:
        named, outputs = read_outputs(path)
        if named is not None:
            try:
                normalize_task_name(named)
            except ValueError as error:
                raise DataFormatError(path, str(error), field="task") from error
        return outputs


@dataclass(frozen=True)
class CitationTask(LampLayoutTask):
    """LaMP-1: which of two references would this author cite?"""

    def render_item(self, record: HistoryRecord) -> str:
        return f'"{_field(record, "title")}"'


@dataclass(frozen=True)
class ItemLabelTask(LampLayoutTask):
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
class RatingTask(LampLayoutTask):
    """LaMP-3: the score (1-5) this user gives a review they wrote."""

    def render_item(self, record: HistoryRecord) -> str:
        return f'{_field(record, "score")} is the score for "{_field(record, "text")}"'

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        return (f"What is the score of the following review on a scale of 1 to 5? review: {_field(record, 'text')}",
                _field(record, "score"))

    def long_field(self, record: HistoryRecord) -> str | None:
        return "text"


@dataclass(frozen=True)
class TitledTextTask(LampLayoutTask):
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
class TweetTask(LampLayoutTask):
    """LaMP-7: paraphrase a tweet in the user's own style."""

    def render_item(self, record: HistoryRecord) -> str:
        return f'"{_field(record, "text")}"'


_NEWS_CATEGORIES: tuple[str, ...] = (
    "women", "religion", "politics", "style & beauty", "entertainment", "culture & arts", "sports",
    "science & technology", "travel", "business", "crime", "education", "healthy living", "parents", "food & drink",
)
_MOVIE_TAGS: tuple[str, ...] = (
    "sci-fi", "based on a book", "comedy", "action", "twist ending", "dystopia", "dark comedy", "classic",
    "psychology", "fantasy", "romance", "thought-provoking", "social commentary", "violence", "true story",
)
_CLASSIFY = "Answer with the label only, exactly as written in the list, without explanation."

# The order of each label tuple is the official evaluator's label order; macro-F1 does not
# depend on it, but predictions are mapped to these indices, so keep it stable. Plain
# "LaMP-2" is the movie-tagging version (the one the current LaMP release ships); "LaMP-2M"
# names it explicitly and "LaMP-2N" is the older news-categorization version. LaMP-3's
# labels are its rating scale: scored as numbers, listed so prompts and parsers show them.
LAMP_TASKS: dict[str, TaskSpec] = {task.name: task for task in (
    CitationTask(
        name="LaMP-1", kind="classification", labels=("[1]", "[2]"), profile_fields=("title", "abstract"),
        max_new_tokens=4, instruction="Answer with [1] or [2] only, without explanation.",
        query_marker="", document_fields=("title",),
        context_header="Titles of papers this author has written:",
    ),
    ItemLabelTask(
        name="LaMP-2", kind="classification", labels=_MOVIE_TAGS, profile_fields=("description", "tag"),
        max_new_tokens=8, instruction=_CLASSIFY, query_marker="description:", document_fields=("description",),
        context_header="Tags this user gave to earlier movies:",
    ),
    ItemLabelTask(
        name="LaMP-2N", kind="classification", labels=_NEWS_CATEGORIES, profile_fields=("title", "text", "category"),
        max_new_tokens=8, instruction=_CLASSIFY, query_marker="article:", document_fields=("title", "text"),
        text_field="text", label_field="category", item_noun="article",
        context_header="Categories this journalist chose for earlier articles:",
    ),
    ItemLabelTask(
        name="LaMP-2M", kind="classification", labels=_MOVIE_TAGS, profile_fields=("description", "tag"),
        max_new_tokens=8, instruction=_CLASSIFY, query_marker="description:", document_fields=("description",),
        context_header="Tags this user gave to earlier movies:",
    ),
    RatingTask(
        name="LaMP-3", kind="rating", labels=("1", "2", "3", "4", "5"), profile_fields=("text", "score"),
        max_new_tokens=4, instruction="Answer with a single number from 1 to 5, without explanation.",
        query_marker="review:", document_fields=("text",),
        context_header="Scores this user gave to their earlier reviews:",
    ),
    TitledTextTask(
        name="LaMP-4", kind="generation", profile_fields=("title", "text"), max_new_tokens=32,
        instruction="Answer with the headline only, on one line, without quotes or explanation.",
        query_marker="article:", document_fields=("title", "text"),
        title_noun="title", turn_prompt="Generate a headline for the following article: ",
        context_header="Headlines this journalist wrote for earlier articles:",
    ),
    TitledTextTask(
        name="LaMP-5", kind="generation", profile_fields=("title", "abstract"), max_new_tokens=32,
        instruction="Answer with the title only, on one line, without quotes or explanation.",
        query_marker="paper:", document_fields=("title", "abstract"),
        body_field="abstract", title_noun="title",
        turn_prompt="Generate a title for the following abstract of a paper: ",
        context_header="Titles this author gave to earlier papers:",
    ),
    TitledTextTask(
        name="LaMP-6", kind="generation", profile_fields=("title", "text"), max_new_tokens=24,
        instruction="Answer with the subject line only, on one line, without quotes or explanation.",
        query_marker="email:", document_fields=("title", "text"),
        title_noun="subject", turn_prompt="Generate a subject for the following email: ",
        context_header="Subjects this user wrote for earlier emails:",
    ),
    TweetTask(
        name="LaMP-7", kind="generation", profile_fields=("text",), max_new_tokens=48,
        instruction="Answer with the paraphrased tweet only, on one line, without explanation.",
        query_marker=":", document_fields=("text",),
        context_header="Earlier tweets by this user:",
    ),
)}
"""The LaMP tasks by name, in the order their names are listed."""

# The registry's entries (tailor.tasks.TASKS) name each task by attribute.
LAMP_1, LAMP_2, LAMP_2N, LAMP_2M, LAMP_3, LAMP_4, LAMP_5, LAMP_6, LAMP_7 = LAMP_TASKS.values()

LAMP_TASK_NAMES: tuple[str, ...] = tuple(LAMP_TASKS)

# Matched against the stripped, lower-cased name: the official files say "LaMP_4", people
# type "lamp-4" or "LaMP4"; the variant letter ("2N") follows the number.
_SPELLING = re.compile(r"lamp[-_ ]?(\d+)([a-z]?)")


def normalize_task_name(name: str) -> str:
    """Return the canonical spelling (``"LaMP-4"``, ``"LaMP-2N"``) of a LaMP task name.

    Case is ignored, surrounding spaces are dropped, and the dash may be written as ``_``,
    a space or nothing: ``"LaMP_4"``, ``"lamp-4"``, ``"lamp 4"`` and ``" LAMP4 "`` all give
    ``"LaMP-4"``; ``"lamp_2n"`` gives ``"LaMP-2N"``. Raises ValueError, listing the valid
    names, for anything else (``"LaMP-8"``, ``"LaMP-4M"``, a non-string).
    """
    match = _SPELLING.fullmatch(name.strip().lower()) if isinstance(name, str) else None
    if match is not None:
        canonical = f"LaMP-{match.group(1)}{match.group(2).upper()}"
        if canonical in LAMP_TASKS:
            return canonical
    raise ValueError(
        f"unknown task name {name!r}; valid names are {', '.join(LAMP_TASK_NAMES)} "
        "(case is ignored, and '_', a space or nothing may stand for the dash, as in LaMP_4 or lamp4)"
    )


def canonical_name(name: str) -> str:
    """The registered name of a LaMP task in any accepted spelling; any other name unchanged."""
    try:
        return normalize_task_name(name)
    except ValueError:
        return name


def official_name(name: str) -> str:
    """What LaMP's outputs files call the task: ``LaMP_4``. The official evaluator knows
    ``LaMP_1`` .. ``LaMP_7`` only, so every LaMP-2 variant is ``LaMP_2``."""
    number = normalize_task_name(name).removeprefix("LaMP-").rstrip(string.ascii_uppercase)  # "2N" -> "2"
    return f"LaMP_{number}"


def detect_task(folder: str | Path, split: str) -> str | None:
    """The LaMP task that ``{split}_outputs.json`` in ``folder`` names (``LaMP-2`` for either
    LaMP-2 variant), or ``None`` when there is no such file or it names none."""
    _, outputs_path = split_files(folder, split)
    if not outputs_path.is_file():
        return None
    named, _ = read_outputs(outputs_path)
    if named is None:
        return None
    try:
        return normalize_task_name(named)
    except ValueError as error:
        raise DataFormatError(outputs_path, str(error), field="task") from error
