"""Reading LongLaMP's files (Kumar et al. 2024, the data set ``LongLaMP/LongLaMP``).

LongLaMP publishes one data set per task and setting (``abstract_generation_user``,
``abstract_generation_temporal``, ``product_review_user``, ``product_review_temporal``,
``topic_writing_user``, ``topic_writing_temporal``), each with the splits ``train``, ``val``
and ``test``. A split is a table of rows, one question each:

- ``input``: the whole instruction, already written out ("Generate an abstract for the title
  ... using the following items: ...");
- ``output``: the text the user wrote (the gold);
- ``profile``: the user's earlier items, a list of objects whose fields depend on the task
  (abstracts: ``title``, ``abstract``; reviews: ``overall``, ``summary``, ``description``,
  ``reviewText``; Reddit posts: ``summary``, ``content``);
- the user's id, under a name that depends on the task (``name``, ``reviewerId``, ``author``).

Rows carry no id: a question's id is its position in the split (``"0"``, ``"1"``, ...), or
its ``id`` where a row has one; a profile item's id is its own ``id``, else the question's id
and its position (``"7-0"``). The hub stores splits as Parquet shards
(``{split}-00000-of-00004.parquet``); ``datasets``' ``to_json`` writes JSON Lines. A folder
here holds, for each split, one of ``{split}.json`` (a JSON list of rows), ``{split}.jsonl``
(a row per line) or ``{split}-*.parquet`` / ``{split}/*.parquet`` (read with pyarrow, shards
in name order). ``dev`` names ``val`` where a folder has no ``dev`` split (``tailor eval``'s
default split).

Predictions are written in LaMP's outputs layout (``{"task", "golds": [{"id", "output"}]}``),
the layout LongLaMP's evaluation scripts read; golds are read from such a file or straight
from a split file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tailor.data.lamp import DataFormatError, read_outputs
from tailor.types import HistoryRecord, Profile, TaskExample

__all__ = ["SPLIT_ALIASES", "find_split", "load_longlamp_split", "read_longlamp_outputs", "read_rows"]

SPLIT_ALIASES = {"dev": "val"}
"""Split names tailor uses that LongLaMP spells otherwise."""


def _split_candidates(folder: Path, split: str) -> list[list[Path]]:
    shards = sorted(folder.glob(f"{split}-*.parquet")) or sorted((folder / split).glob("*.parquet"))
    return [[folder / f"{split}.json"], [folder / f"{split}.jsonl"], shards]


def find_split(folder: str | Path, split: str) -> list[Path]:
    """The file (or Parquet shards) holding ``split`` in ``folder``; FileNotFoundError
    listing what the folder holds when there is none."""
    directory = Path(folder)
    for name in (split, SPLIT_ALIASES.get(split)):
        if name is None:
            continue
        for paths in _split_candidates(directory, name):
            if paths and all(path.is_file() for path in paths):
                return paths
    present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else None
    found = "the folder does not exist" if present is None else f"files there: {', '.join(present) or 'none'}"
    also = f" (or {SPLIT_ALIASES[split]})" if split in SPLIT_ALIASES else ""
    raise FileNotFoundError(f"no LongLaMP split {split!r}{also} in {directory}: expected {split}.json, "
                            f"{split}.jsonl or {split}-*.parquet ({found})")


def read_rows(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The rows of a split's file: a JSON list, JSON Lines, or Parquet shards in order."""
    rows: list[Any] = []
    for path in paths:
        if path.suffix == ".parquet":
            try:
                from pyarrow import parquet
            except ImportError as error:
                raise DataFormatError(path, "reading Parquet needs pyarrow (pip install pyarrow), or convert the "
                                            "split to JSON Lines") from error
            rows.extend(parquet.read_table(path).to_pylist())
        elif path.suffix == ".jsonl":
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        rows.append(_json(path, line, line=number))
        else:
            data = _json(path, path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise DataFormatError(path, f"top level must be a list of rows, got {type(data).__name__}")
            rows.extend(data)
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataFormatError(paths[0], f"must be an object, got {type(row).__name__}",
                                  location=f"row at index {index}")
    return rows


def _json(path: Path, text: str, *, line: int | None = None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, f"invalid JSON at column {error.colno}: {error.msg}",
                              line=line if line is not None else error.lineno) from error


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def _question_id(row: dict[str, Any], index: int) -> str:
    given = _text(row.get("id"))
    return given if given else str(index)


def _item(path: Path, raw: Any, question: str, position: int, fields: Sequence[str]) -> HistoryRecord:
    location = f"question {question!r}, profile item at index {position}"
    if not isinstance(raw, dict):
        raise DataFormatError(path, f"must be an object, got {type(raw).__name__}", record_id=question,
                              location=location)
    item_id = _text(raw.get("id")) or f"{question}-{position}"
    for name in fields:
        if _text(raw.get(name)) is None:
            message = "missing" if name not in raw else f"must be a string or number, got {type(raw[name]).__name__}"
            raise DataFormatError(path, message, record_id=question, field=name, location=location)
    texts = {key: text for key, value in raw.items() if key not in ("id", "date") and (text := _text(value)) is not None}
    return HistoryRecord(id=item_id, fields=texts, date=_text(raw.get("date")))


def load_longlamp_split(folder: str | Path, split: str = "dev", *, user_field: str, fields: Sequence[str] = (),
                        limit: int | None = None) -> list[TaskExample]:
    """The questions of ``split`` in ``folder`` (golds attached where rows have ``output``),
    the first ``limit`` in file order. Every profile item must hold ``fields``; the user is
    the row's ``user_field`` (the question itself where a row has none; ``{user}@{question}``
    where one user's questions carry different profiles, as in the temporal setting). The
    whole split is validated whatever the limit."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    paths = find_split(folder, split)
    path = paths[0]
    examples: list[TaskExample] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(read_rows(paths)):
        question = _question_id(row, index)
        if question in seen:
            raise DataFormatError(path, f"duplicate question id (first at index {seen[question]}, again at {index})",
                                  record_id=question, field="id", location=f"question {question!r}")
        seen[question] = index
        where = f"question {question!r}"
        if not isinstance(row.get("input"), str):
            raise DataFormatError(path, "missing" if "input" not in row else "must be a string", record_id=question,
                                  field="input", location=where)
        profile = row.get("profile")
        if not isinstance(profile, list):
            raise DataFormatError(path, "missing" if "profile" not in row else "must be a list of profile items",
                                  record_id=question, field="profile", location=where)
        gold = row.get("output")
        if gold is not None and not isinstance(gold, str):
            raise DataFormatError(path, f"must be a string, got {type(gold).__name__}", record_id=question,
                                  field="output", location=where)
        user_id = _text(row.get(user_field)) or question
        records = tuple(_item(path, raw, question, position, fields) for position, raw in enumerate(profile))
        examples.append(TaskExample(id=question, user_id=user_id, input=row["input"],
                                    profile=Profile(user_id, records), gold=gold))
    examples = _separate_histories(examples)
    if examples and any(e.gold is None for e in examples) and any(e.gold is not None for e in examples):
        missing = next(e.id for e in examples if e.gold is None)
        raise DataFormatError(path, "no output, while other rows have one", record_id=missing, field="output",
                              location=f"question {missing!r}")
    return examples if limit is None else examples[:limit]


def _separate_histories(examples: list[TaskExample]) -> list[TaskExample]:
    """Each question of a user whose questions carry different profiles becomes a user of
    its own, ``{user}@{question}``: tailor keeps one profile per user (the union of its
    questions' profiles), and in the temporal setting a later question's profile holds what
    the user wrote after an earlier question, that question's gold included."""
    profiles: dict[str, set[frozenset[str]]] = {}
    for example in examples:
        profiles.setdefault(example.user_id, set()).add(frozenset(r.id for r in example.profile.records))
    separate = {user for user, seen in profiles.items() if len(seen) > 1}
    if not separate:
        return examples
    return [replace(e, user_id=f"{e.user_id}@{e.id}", profile=replace(e.profile, user_id=f"{e.user_id}@{e.id}"))
            if e.user_id in separate else e for e in examples]


def read_longlamp_outputs(path: str | Path) -> dict[str, str]:
    """Outputs by question id from an outputs file (LaMP's layout, as predictions are
    written) or from a LongLaMP split file (``.json`` list of rows, ``.jsonl``, ``.parquet``)."""
    file = Path(path)
    if file.suffix in (".jsonl", ".parquet"):
        rows = read_rows([file])
    else:
        data = _json(file, file.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            return read_outputs(file)[1]
        rows = read_rows([file])
    outputs: dict[str, str] = {}
    for index, row in enumerate(rows):
        question = _question_id(row, index)
        gold = row.get("output")
        if not isinstance(gold, str):
            raise DataFormatError(file, "missing" if gold is None else "must be a string", record_id=question,
                                  field="output", location=f"question {question!r}")
        if question in outputs:
            raise DataFormatError(file, "duplicate question id", record_id=question, field="id",
                                  location=f"question {question!r}")
        outputs[question] = gold
    return outputs
