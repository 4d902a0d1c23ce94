"""Reading and writing the LaMP benchmark's JSON files.

A LaMP split is two files in one folder: ``{split}_questions.json`` (a list of
``{"id", "input", "profile": [item, ...]}``, plus ``"user_id"`` in the time-based splits)
and ``{split}_outputs.json`` (``{"task": "LaMP_k", "golds": [{"id", "output"}, ...]}``).
Predictions are written in the outputs layout so the official evaluator reads them.

The readers know the layout, not the tasks: the caller says which fields every profile item
must have, and what the outputs file's ``task`` must say (the task declarations in
:mod:`tailor.tasks` do both). Readers validate a whole file before returning anything, and
every problem is a :class:`DataFormatError` that names the file, the record and the field.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from tailor.types import HistoryRecord, Profile, TaskExample

__all__ = [
    "DataFormatError",
    "load_split",
    "read_outputs",
    "read_questions",
    "split_files",
    "write_outputs",
]

PathLike = str | os.PathLike[str]


class DataFormatError(ValueError):
    """A data file that does not follow its format; says which file, record and field.

    ``record_id`` is the innermost id involved (a profile item's id, else the question's
    or gold's id); ``location`` spells out the whole path to it for the message.
    """

    def __init__(
        self,
        path: PathLike,
        message: str,
        *,
        record_id: str | None = None,
        field: str | None = None,
        location: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = str(path)
        self.message = message
        self.record_id = record_id
        self.field = field
        self.location = location if location is not None else (f"record {record_id!r}" if record_id else None)
        self.line = line
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [
            self.location,
            f"line {self.line}" if self.line is not None else None,
            f"field {self.field!r}" if self.field is not None else None,
        ]
        where = ", ".join(part for part in parts if part)
        return f"{self.path}: {where}: {self.message}" if where else f"{self.path}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # The keyword-only constructor would otherwise break pickling across worker processes.
        rebuild = partial(
            type(self), record_id=self.record_id, field=self.field, location=self.location, line=self.line
        )
        return (rebuild, (self.path, self.message))


def _scalar_text(value: Any) -> str | None:
    """``value`` as a string if it is a string or a finite number, else ``None``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # bool is an int subclass, but True is not an id or a score
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        # Some writers emit 5.0 for the integer 5; ids and scores read best without ".0".
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _load_json(path: PathLike) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, f"invalid JSON at column {error.colno}: {error.msg}", line=error.lineno) from error
    except UnicodeDecodeError as error:
        raise DataFormatError(path, f"not UTF-8 text (byte offset {error.start})") from error


def _item_error(
    path: PathLike, message: str, question: str, index: int, item_id: str | None, field: str | None
) -> DataFormatError:
    where = f"profile item {item_id!r}" if item_id else f"profile item at index {index}"
    return DataFormatError(
        path, message, record_id=item_id or question, field=field, location=f"question {question!r}, {where}"
    )


def _parse_item(raw: Any, index: int, question: str, required: tuple[str, ...], path: PathLike) -> HistoryRecord:
    # Real files hold millions of items, so the common all-strings case skips _scalar_text.
    if type(raw) is not dict:
        raise _item_error(path, f"must be an object, got {_type_name(raw)}", question, index, None, None)
    raw_id = raw.get("id")
    item_id = raw_id if type(raw_id) is str else _scalar_text(raw_id)
    if not item_id:
        message = "missing" if "id" not in raw else f"must be a non-empty string or number, got {raw_id!r}"
        raise _item_error(path, message, question, index, None, "id")
    for name in required:
        value = raw.get(name)
        if type(value) is not str and _scalar_text(value) is None:
            message = "missing" if name not in raw else f"must be a string or number, got {_type_name(value)}"
            raise _item_error(path, message, question, index, item_id, name)
    fields: dict[str, str] = {}
    for key, value in raw.items():
        if type(value) is str:
            fields[key] = value
        else:
            text = _scalar_text(value)
            # Unknown extra fields that are lists, objects or null carry nothing a prompt can use.
            if text is not None:
                fields[key] = text
    fields.pop("id", None)
    raw_date = fields.pop("date", None)
    if raw_date is None and raw.get("date") is not None:
        message = f"must be a string or null, got {_type_name(raw['date'])}"
        raise _item_error(path, message, question, index, item_id, "date")
    return HistoryRecord(id=item_id, fields=fields, date=raw_date)


def _parse_question(raw: Any, index: int, required: tuple[str, ...], path: PathLike) -> TaskExample:
    if not isinstance(raw, dict):
        raise DataFormatError(path, f"must be an object, got {_type_name(raw)}", location=f"question at index {index}")
    raw_id = raw.get("id")
    question = _scalar_text(raw_id)
    if not question:
        message = "missing" if "id" not in raw else f"must be a non-empty string or number, got {raw_id!r}"
        raise DataFormatError(path, message, field="id", location=f"question at index {index}")

    def fail(message: str, field: str) -> DataFormatError:
        return DataFormatError(path, message, record_id=question, field=field, location=f"question {question!r}")

    for name, kind in (("input", str), ("profile", list)):
        if name not in raw:
            raise fail("missing", name)
        if not isinstance(raw[name], kind):
            expected = "a string" if kind is str else "a list of profile items"
            raise fail(f"must be {expected}, got {_type_name(raw[name])}", name)
    user_id = question
    if raw.get("user_id") is not None:
        user_id = _scalar_text(raw["user_id"]) or ""
        if not user_id:
            raise fail(f"must be a non-empty string or number, got {raw['user_id']!r}", "user_id")
    records = tuple(_parse_item(item, i, question, required, path) for i, item in enumerate(raw["profile"]))
    return TaskExample(id=question, user_id=user_id, input=raw["input"], profile=Profile(user_id, records))


def _parse_questions(path: PathLike, required: tuple[str, ...]) -> list[TaskExample]:
    data = _load_json(path)
    if not isinstance(data, list):
        raise DataFormatError(path, f"top level must be a list of questions, got {_type_name(data)}")
    examples: list[TaskExample] = []
    first_seen: dict[str, int] = {}
    for index, raw in enumerate(data):
        example = _parse_question(raw, index, required, path)
        if example.id in first_seen:
            raise DataFormatError(
                path,
                f"duplicate question id (first at index {first_seen[example.id]}, again at index {index})",
                record_id=example.id,
                field="id",
                location=f"question {example.id!r}",
            )
        first_seen[example.id] = index
        examples.append(example)
    return examples


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")


def read_questions(path: PathLike, *, fields: Sequence[str] = (), limit: int | None = None) -> list[TaskExample]:
    """Read a LaMP ``*_questions.json`` file into task examples (without golds).

    Every profile item must carry ``fields`` (the task's profile fields) besides its id.
    ``limit`` keeps the first ``limit`` questions in file order; the whole file is still
    validated, because a broken file should fail the same way whatever the limit.
    """
    _check_limit(limit)
    examples = _parse_questions(path, tuple(fields))
    return examples if limit is None else examples[:limit]


def read_outputs(path: PathLike) -> tuple[str | None, dict[str, str]]:
    """Read a LaMP ``*_outputs.json`` file: (its ``task`` as written, or ``None``; id -> output)."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(path, f"top level must be an object with 'task' and 'golds', got {_type_name(data)}")
    task = data.get("task")
    if task is not None and not isinstance(task, str):
        raise DataFormatError(path, f"must be a task name, got {_type_name(task)}", field="task")
    golds = data.get("golds")
    if not isinstance(golds, list):
        raise DataFormatError(path, f"must be a list of {{id, output}} objects, got {_type_name(golds)}", field="golds")
    outputs: dict[str, str] = {}
    for index, gold in enumerate(golds):
        location = f"gold at index {index}"
        if not isinstance(gold, dict):
            raise DataFormatError(path, f"must be an object, got {_type_name(gold)}", location=location)
        gold_id = _scalar_text(gold.get("id"))
        if not gold_id:
            message = "missing" if "id" not in gold else f"must be a non-empty string or number, got {gold['id']!r}"
            raise DataFormatError(path, message, field="id", location=location)
        location = f"gold {gold_id!r}"
        if "output" not in gold:
            raise DataFormatError(path, "missing", record_id=gold_id, field="output", location=location)
        output = _scalar_text(gold["output"])
        if output is None:
            raise DataFormatError(
                path,
                f"must be a string, got {_type_name(gold['output'])}",
                record_id=gold_id,
                field="output",
                location=location,
            )
        if gold_id in outputs:
            raise DataFormatError(path, "duplicate gold id", record_id=gold_id, field="id", location=location)
        outputs[gold_id] = output
    return task, outputs


def _prediction_pairs(predictions: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    if isinstance(predictions, Mapping):
        pairs = list(predictions.items())
    elif isinstance(predictions, (str, bytes)) or not isinstance(predictions, Sequence):
        raise TypeError(
            f"predictions must be a mapping or a sequence of (id, output) pairs, got {type(predictions).__name__}"
        )
    else:
        pairs = list(predictions)
    seen: set[str] = set()
    for index, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError(f"prediction at index {index} must be an (id, output) pair, got {pair!r}")
        example_id, output = pair
        if not isinstance(example_id, str) or not example_id:
            raise TypeError(f"prediction at index {index}: id must be a non-empty string, got {example_id!r}")
        if not isinstance(output, str):
            raise TypeError(f"prediction {example_id!r}: output must be a string, got {type(output).__name__}")
        if example_id in seen:
            raise ValueError(f"prediction {example_id!r}: duplicate id")
        seen.add(example_id)
    return [(str(example_id), str(output)) for example_id, output in pairs]


def write_outputs(path: PathLike, task: str, predictions: Mapping[str, str] | Sequence[tuple[str, str]]) -> None:
    """Write predictions in LaMP's outputs layout, atomically, ``task`` as the file's task
    (the official evaluator knows ``LaMP_1`` .. ``LaMP_7``).

    The file is written next to ``path`` under a temporary name, synced, then renamed
    over ``path``: a crash leaves either the old file or the new one, never half of one.
    """
    if not isinstance(task, str) or not task.strip():
        raise ValueError(f"the outputs file's task must be a non-empty name, got {task!r}")
    document = {
        "task": task,
        "golds": [{"id": example_id, "output": output} for example_id, output in _prediction_pairs(predictions)],
    }
    target = Path(path)
    # An existing file keeps its permissions; mkstemp's private 0600 would surprise readers.
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    descriptor, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise


def split_files(data_dir: PathLike, split: str) -> tuple[Path, Path]:
    """The questions and outputs files of ``split`` in ``data_dir``."""
    directory = Path(data_dir)
    return directory / f"{split}_questions.json", directory / f"{split}_outputs.json"


def load_split(
    data_dir: PathLike,
    split: str = "dev",
    *,
    fields: Sequence[str] = (),
    limit: int | None = None,
    check_task: Callable[[str], None] | None = None,
) -> list[TaskExample]:
    """Load ``{split}_questions.json`` from ``data_dir``, with golds from ``{split}_outputs.json`` if present.

    Every profile item must carry ``fields``. ``check_task`` is given the outputs file's
    ``task``, when it has one, and raises ValueError when that is not the task being loaded
    (the error then names the file and the field). Golds must cover exactly the questions'
    ids. ``limit`` keeps the first ``limit`` questions in file order.
    """
    _check_limit(limit)
    questions_path, outputs_path = split_files(data_dir, split)
    if not questions_path.is_file():
        directory = Path(data_dir)
        present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else None
        found = "the folder does not exist" if present is None else f"files there: {', '.join(present) or 'none'}"
        raise FileNotFoundError(f"no {questions_path.name} in {directory} ({found})")
    golds: dict[str, str] | None = None
    if outputs_path.is_file():
        file_task, golds = read_outputs(outputs_path)
        if file_task is not None and check_task is not None:
            try:
                check_task(file_task)
            except ValueError as error:
                raise DataFormatError(outputs_path, str(error), field="task") from error
    examples = _parse_questions(questions_path, tuple(fields))
    if golds is None:
        return examples if limit is None else examples[:limit]
    question_ids = {example.id for example in examples}
    missing = [example.id for example in examples if example.id not in golds]
    if missing:
        more = f" ({len(missing) - 1} more questions lack one)" if len(missing) > 1 else ""
        raise DataFormatError(
            outputs_path,
            f"no gold output for this question{more}",
            record_id=missing[0],
            location=f"question {missing[0]!r}",
        )
    extra = [gold_id for gold_id in golds if gold_id not in question_ids]
    if extra:
        more = f" ({len(extra) - 1} more golds like it)" if len(extra) > 1 else ""
        raise DataFormatError(
            outputs_path,
            f"matches no question in {questions_path.name}{more}",
            record_id=extra[0],
            location=f"gold {extra[0]!r}",
        )
    kept = examples if limit is None else examples[:limit]
    return [replace(example, gold=golds[example.id]) for example in kept]
