"""``movielens-next`` and ``movielens-next-full``: the movie a user watches next, ranked
among candidates (recbole's MovieLens 100k, or any interaction log in the same layout,
built by :func:`tailor.data.packaged.movielens.build_movielens_next`; the layout is
:mod:`tailor.data.interactions`').

Leave-last-out in time order: the ``dev`` split holds each user's second-to-last
interaction (validation), ``test`` their last; a question's history is everything the
user did strictly before it. Both tasks read the same folder and differ in the
candidates they rank: ``movielens-next`` the sampled protocol (the held-out item and 99
items the user never rated, drawn with a seed at build time), ``movielens-next-full``
every item of the catalogue the user has not rated (full ranking; numbers are much
lower, as in the literature: say which protocol a table uses).

A prediction is the ranked candidates' ids, best first (the first :attr:`NextItemTask.kept`),
as a JSON array; prediction files hold ``{"task", "golds": [{"id", "output": [ids]}]}``.
Metrics: :mod:`tailor.metrics.ranking` (NDCG@10 first).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tailor.data.interactions import ITEMS_FILE
from tailor.data.lamp import DataFormatError
from tailor.data.packaged.movielens import build_movielens_next
from tailor.metrics.ranking import RANKING_METRICS
from tailor.tasks.spec import TaskSpec
from tailor.types import HistoryRecord, Profile, TaskExample

Protocol = Literal["sampled", "full"]
PROTOCOLS: tuple[Protocol, ...] = ("sampled", "full")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: build the folder with `tailor data build movielens-next "
                                "--out DIR` (see tailor.data.interactions for the layout)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataFormatError(path, f"not valid JSON ({error})") from None


def read_catalogue(folder: str | Path) -> dict[str, HistoryRecord]:
    """Item id -> the item as a record (``id`` = the item id, ``text`` its description,
    ``title`` its name)."""
    path = Path(folder) / ITEMS_FILE
    rows = _read_json(path)
    if not isinstance(rows, list):
        raise DataFormatError(path, "must hold a list of {\"id\", \"text\"}")
    catalogue: dict[str, HistoryRecord] = {}
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not row["id"]:
            raise DataFormatError(path, "every item needs a non-empty string id", record_id=str(row)[:40])
        text = str(row.get("text") or row["id"])
        catalogue[row["id"]] = HistoryRecord(row["id"], {"item": row["id"], "text": text,
                                                         "title": str(row.get("title") or text)})
    return catalogue


def _history(question: Mapping[str, Any], path: Path, catalogue: Mapping[str, HistoryRecord]) -> tuple[HistoryRecord, ...]:
    """The question's history records, each with its item's catalogue title (what the
    model is asked the likelihood of for a candidate, and answers in a replayed turn)."""
    records = []
    for item in question.get("profile") or ():
        if not isinstance(item, dict) or not isinstance(item.get("item"), str):
            raise DataFormatError(path, "every profile record needs an item id", record_id=str(question.get("id")),
                                  field="profile")
        fields = {key: str(value) for key, value in item.items() if key not in ("id", "date") and value is not None}
        known = catalogue.get(item["item"])
        if known is not None and "title" not in fields:
            fields["title"] = known.fields["title"]
        records.append(HistoryRecord(str(item.get("id") or item["item"]), fields, item.get("date")))
    return tuple(records)


@dataclass(frozen=True)
class NextItemTask(TaskSpec):
    """Next-item ranking: the candidates of each question ranked for its user (see the module)."""

    protocol: Protocol = "sampled"
    kept: int = 100
    """How many ranked candidates a prediction keeps (all of a sampled question's 100)."""
    question: str = "Which movie will this user watch next?"
    """The input every ranking is asked with (in ``tailor eval`` and the rank route alike)."""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")

    def load(self, folder: str | Path, split: str = "dev", *, limit: int | None = None) -> list[TaskExample]:
        folder = Path(folder)
        catalogue = read_catalogue(folder)
        questions_path = folder / f"{split}_questions.json"
        questions = _read_json(questions_path)
        if not isinstance(questions, list):
            raise DataFormatError(questions_path, "must hold a list of questions")
        outputs_path = folder / f"{split}_outputs.json"
        golds: dict[str, str] = {}
        if outputs_path.is_file():
            golds = self.read_outputs(outputs_path)
        examples = []
        for question in questions[:limit]:
            if not isinstance(question, dict) or not isinstance(question.get("id"), str):
                raise DataFormatError(questions_path, "every question needs a string id")
            history = _history(question, questions_path, catalogue)
            examples.append(TaskExample(
                id=question["id"], user_id=str(question.get("user_id") or question["id"]),
                input=str(question.get("input") or ""),
                profile=Profile(str(question.get("user_id") or question["id"]), history,
                                {key: str(value) for key, value in (question.get("user_attributes") or {}).items()}),
                gold=golds.get(question["id"]), candidates=self._candidates(question, history, catalogue,
                                                                             questions_path)))
        return examples

    def _candidates(self, question: Mapping[str, Any], history: Sequence[HistoryRecord],
                    catalogue: Mapping[str, HistoryRecord], path: Path) -> tuple[HistoryRecord, ...]:
        if self.protocol == "sampled":
            ids = question.get("candidates")
            if not isinstance(ids, list) or not ids:
                raise DataFormatError(path, "a question needs its candidates (item ids)", record_id=question["id"],
                                      field="candidates")
            unknown = [item for item in ids if item not in catalogue]
            if unknown:
                raise DataFormatError(path, f"candidate {unknown[0]!r} is not in {ITEMS_FILE}",
                                      record_id=question["id"], field="candidates")
            return tuple(catalogue[item] for item in ids)
        rated = {record.fields["item"] for record in history} | set(question.get("excluded") or ())
        return tuple(record for item, record in catalogue.items() if item not in rated)

    def write_predictions(self, path: str | Path, predictions: Mapping[str, str] | Sequence[tuple[str, str]]) -> None:
        """Predictions (id -> JSON array of ranked item ids) as ``{"task", "golds": [{"id", "output": [ids]}]}``."""
        pairs = list(predictions.items()) if isinstance(predictions, Mapping) else list(predictions)
        from tailor.data.packaged.build import write_json

        write_json(Path(path), {"task": self.outputs_task,
                                "golds": [{"id": key, "output": json.loads(value) if value.startswith("[") else value}
                                          for key, value in pairs]})

    def read_outputs(self, path: str | Path) -> dict[str, str]:
        """Golds (an item id each) or predictions (a list of ids each; returned as a JSON array)."""
        data = _read_json(Path(path))
        if not isinstance(data, dict) or not isinstance(data.get("golds"), list):
            raise DataFormatError(path, "must hold {\"task\", \"golds\": [{\"id\", \"output\"}]}")
        self.check_outputs_task(str(data.get("task")))
        return {str(row["id"]): (json.dumps(row["output"]) if isinstance(row["output"], list) else str(row["output"]))
                for row in data["golds"]}

    @property
    def outputs_task(self) -> str:
        return "movielens-next"

    def render_item(self, record: HistoryRecord) -> str:
        rating = record.fields.get("score")
        return record.fields.get("text", "") + (f" (rated {rating} of 5)" if rating else "")

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        """A history item as an earlier exchange: the task's question, answered with the
        item's title (what a ranking asks the likelihood of). It is what an adapter trained
        with ``tailor train-adapter`` on this task learns from, and the ``dialogue`` layout's turns."""
        title = record.fields.get("title") or record.fields.get("text")
        return (self.question, title) if title else None


_COMMON: dict[str, Any] = {
    "kind": "ranking", "instruction": "Answer with the title of the movie this user will watch next.",
    "query_marker": "", "document_fields": ("text",), "metrics": RANKING_METRICS,
    "context_header": "Movies this user watched before:", "k": 4, "users_are": "users",
    "stores_every_user": True, "cold_profile": 20,
}

MOVIELENS_NEXT = NextItemTask(name="movielens-next", protocol="sampled", builder=build_movielens_next, **_COMMON)
"""``movielens-next``: the held-out movie among 100 candidates (it and 99 unrated ones)."""
MOVIELENS_NEXT_FULL = NextItemTask(name="movielens-next-full", protocol="full", **_COMMON)
"""``movielens-next-full``: the held-out movie among every movie the user has not rated
(reads the folder ``tailor data build movielens-next`` writes)."""

__all__ = ["MOVIELENS_NEXT", "MOVIELENS_NEXT_FULL", "PROTOCOLS", "NextItemTask", "Protocol", "read_catalogue"]
