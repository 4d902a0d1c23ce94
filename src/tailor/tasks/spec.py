"""What a task is: its data, how its inputs and profile items become prompts, how outputs
become answers, and how answers are scored.

A :class:`TaskSpec` is one task's whole declaration: the instruction, how a profile item is
shown to the model (pasted as context in LaMP's layout, or replayed as an earlier dialogue
turn), which item fields retrieval reads, the output type and its parser, the decoding
limits that keep a small model answering rather than rambling, its defaults (``k``,
``layout``), its metrics, its file format (:meth:`TaskSpec.load`,
:meth:`TaskSpec.write_predictions`, :meth:`TaskSpec.read_outputs`: LaMP's layout unless a
subclass reads another) and, for a packaged task, the builder of its data set.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tailor.data.lamp import load_split, read_outputs, write_outputs
from tailor.data.packaged.build import BuildOptionError, BuildReport
from tailor.tasks.answers import extract_answer, raw_answer
from tailor.types import HistoryRecord, TaskExample

if TYPE_CHECKING:
    from tailor.metrics import Metric, PerExampleScores

TaskKind = Literal["classification", "rating", "generation", "ranking"]
"""What a task answers: a label, a rating, a text, or an order of candidate items."""
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
    with an output, :meth:`item_turn`; a task whose files are not in LaMP's layout overrides
    :meth:`load`, :meth:`write_predictions` and :meth:`read_outputs`."""

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
    profile_fields: tuple[str, ...] = ()
    """Fields every profile item of the task's data must have (besides ``id``)."""
    metrics: tuple[Metric | str, ...] = ()
    """What the task is scored with: names in :data:`tailor.metrics.METRICS` or metrics the
    task brings; empty: the official metrics of its kind (:data:`tailor.metrics.OFFICIAL_METRICS`)."""
    builder: Callable[..., BuildReport] | None = None
    """A packaged task's data set builder (``builder(out, **options)``, ``tailor data build``)."""
    users_are: str = "users"
    """What one of the task's users is, in the plural (``accounts``, ``outlets``): how
    ``tailor demo`` and reports name them."""
    cold_profile: int | None = None
    """Users with at most this many history items are reported apart as cold users
    (``None``: no such report)."""
    stores_every_user: bool = False
    """Whether ``tailor eval`` puts every user of the split into the profile store, however
    few ``--limit`` or ``--users`` evaluate: a ranking task's recommenders learn from every
    user's history, so a subset evaluated must not shrink what they are fitted on."""

    @property
    def lamp_format(self) -> str:
        """The LaMP task whose file layout this task's data uses."""
        return self.data_format or self.name

    # -- data ---------------------------------------------------------------------------------

    def load(self, folder: str | Path, split: str = "dev", *, limit: int | None = None) -> list[TaskExample]:
        """The examples of ``split`` in ``folder`` (golds attached when the folder has them),
        the first ``limit`` in file order: LaMP's layout, every profile item holding
        :attr:`profile_fields`, an outputs file naming this task."""
        return load_split(folder, split, fields=self.profile_fields, limit=limit, check_task=self.check_outputs_task)

    def has_split(self, folder: str | Path, split: str) -> bool:
        """Whether ``folder`` holds ``split`` in this task's layout (LaMP's: ``{split}_questions.json``)."""
        return (Path(folder) / f"{split}_questions.json").is_file()

    def has_golds(self, folder: str | Path, split: str) -> bool:
        """Whether ``folder`` holds the golds of ``split`` (LaMP's: ``{split}_outputs.json``)."""
        return self.has_split(folder, split) and (Path(folder) / f"{split}_outputs.json").is_file()

    @property
    def outputs_task(self) -> str:
        """What the ``task`` of this task's outputs files says."""
        return self.name

    def check_outputs_task(self, named: str) -> None:
        """Raise ValueError unless an outputs file whose ``task`` is ``named`` holds this task's data."""
        if named not in (self.name, self.outputs_task):
            raise ValueError(f"says {named} but task {self.name} was asked for")

    def write_predictions(self, path: str | Path, predictions: Mapping[str, str] | Sequence[tuple[str, str]]) -> None:
        """Write ``predictions`` (id -> output) where the task's reader of outputs reads them
        back: LaMP's outputs layout, which the official evaluator reads too."""
        write_outputs(path, self.outputs_task, predictions)

    def read_outputs(self, path: str | Path) -> dict[str, str]:
        """Outputs by example id from a golds or predictions file of this task (``tailor score``)."""
        _, outputs = read_outputs(path)
        return outputs

    def build(self, out: str | Path, **options: Any) -> BuildReport:
        """Build the task's data set into ``out`` with its builder; ``options`` are the
        builder's keyword arguments (BuildOptionError names any it does not take)."""
        if self.builder is None:
            raise ValueError(f"task {self.name!r} has no data set to build")
        parameters = inspect.signature(self.builder).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            by_keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            taken = [name for name, p in list(parameters.items())[1:] if p.kind in by_keyword]  # [0]: out
            unknown = [name for name in options if name not in taken]
            if unknown:
                raise BuildOptionError(f"the {self.name} data set takes no option {', '.join(map(repr, unknown))} "
                                       f"(its options: {', '.join(taken) or 'none'})")
        return self.builder(out, **options)

    # -- scores -------------------------------------------------------------------------------

    @property
    def scoring_metrics(self) -> tuple[Metric, ...]:
        """The metrics the task is scored with, in the order results list them."""
        # Imported here: the metrics load numpy, which listing and reading tasks does not need.
        from tailor.metrics import OFFICIAL_METRICS, resolve_metric

        return tuple(resolve_metric(metric) for metric in self.metrics or OFFICIAL_METRICS[self.kind])

    def metric(self, name: str) -> Metric:
        """The task's metric called ``name``."""
        for metric in self.scoring_metrics:
            if metric.name == name:
                return metric
        valid = ", ".join(metric.name for metric in self.scoring_metrics)
        raise ValueError(f"task {self.name} has no metric {name!r}; its metrics: {valid}")

    def score(self, predictions: Sequence[str], golds: Sequence[str], *,
              ids: Sequence[Any] | None = None) -> PerExampleScores:
        """Per-example scores of answers against golds with the task's metrics (``ids`` name
        the examples in error messages)."""
        from tailor.metrics import score_metrics

        return score_metrics(self.scoring_metrics, predictions, golds, labels=self.labels, ids=ids)

    def items_per_input(self, k: int | None = None) -> int:
        """How many profile items a method retrieves per input: ``k`` when given, else the
        task's measured default :attr:`k` (the one place this default is settled)."""
        return self.k if k is None else k

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

