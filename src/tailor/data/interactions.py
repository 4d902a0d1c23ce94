"""Next-item ranking data: users' interactions with items, split in time order per user
(leave-last-out), with the candidates each held-out item is ranked among.

The input is any log of ``user,item,timestamp[,rating]`` rows and a catalogue of item
texts (:func:`read_interactions_csv`, :func:`read_items_csv`, or MovieLens 100k from the
``recbole`` package: :func:`tailor.data.packaged.movielens.build_movielens_next`). For each
user, interactions are ordered by time (then by their order in the log); a repeated
``(user, item)`` pair keeps its first interaction. The last interaction is the ``test``
question, the second-to-last the ``dev`` (validation) question. A question's history
(its ``profile``) is the user's interactions strictly before the held-out one's
timestamp: nothing at or after it, so an interaction logged in the same second as the
held-out one is in neither (it is still a rated item, never a candidate).

The folder ``build_next_item`` writes (the ranking tasks of
:mod:`tailor.tasks.next_item` read it)::

    items.json               [{"id", "text", "title"}]: the catalogue, every item of the log
    {split}_questions.json   [{"id", "user_id", "input", "timestamp", "profile": [record],
                               "candidates": [item ids], "excluded": [item ids]}]
    {split}_outputs.json     {"task", "golds": [{"id", "output": the held-out item id}]}
    dataset.json             what was built, from what, with which seed

A profile record is ``{"id", "item", "text", "timestamp", "date"[, "score"]}`` (``score``
is the rating when the log has one). ``candidates`` (the sampled protocol) are the
held-out item and ``negatives`` items the user never interacted with at any time, drawn
uniformly with a seed per user and split, in a shuffled order; ``excluded`` are the
user's interactions that are neither in the history nor held out (those at or after
it): the full-ranking protocol ranks every catalogue item but the history's and these.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tailor.data.packaged.build import BuildReport

SPLITS: tuple[str, str] = ("dev", "test")
"""The validation split (each user's second-to-last interaction) and the test split (the last)."""
ITEMS_FILE = "items.json"
NEGATIVES = 99
QUESTION = "Which item will this user choose next?"


@dataclass(frozen=True)
class Interaction:
    """One row of an interaction log: ``user`` chose ``item`` at ``timestamp`` (seconds,
    or any number that orders time), with an optional ``rating``."""

    user: str
    item: str
    timestamp: float
    rating: str | None = None


def read_interactions_csv(path: str | Path) -> list[Interaction]:
    """Rows of a CSV file with a header naming ``user``, ``item``, ``timestamp`` and
    optionally ``rating`` (other columns are ignored)."""
    rows: list[Interaction] = []
    with open(path, encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        header = [name.strip() for name in reader.fieldnames or ()]
        missing = [name for name in ("user", "item", "timestamp") if name not in header]
        if missing:
            raise ValueError(f"{path}: the header must name user, item, timestamp[, rating]; missing "
                             f"{', '.join(missing)} (it has {', '.join(header) or 'nothing'})")
        for line, row in enumerate(reader, start=2):
            row = {key.strip(): (value or "").strip() for key, value in row.items() if key is not None}
            if not row.get("user") or not row.get("item"):
                raise ValueError(f"{path}: line {line}: user and item must not be empty")
            try:
                timestamp = float(row["timestamp"])
            except ValueError:
                raise ValueError(f"{path}: line {line}: timestamp {row['timestamp']!r} is not a number") from None
            rows.append(Interaction(row["user"], row["item"], timestamp, row.get("rating") or None))
    return rows


def read_items_csv(path: str | Path) -> dict[str, str]:
    """Item id -> text from a CSV file with a header naming ``item`` and ``title`` (or ``text``)."""
    with open(path, encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        header = [name.strip() for name in reader.fieldnames or ()]
        text_column = "title" if "title" in header else "text" if "text" in header else None
        if "item" not in header or text_column is None:
            raise ValueError(f"{path}: the header must name item and title (or text); it has "
                             f"{', '.join(header) or 'nothing'}")
        return {row["item"].strip(): (row.get(text_column) or "").strip()
                for row in ({k.strip(): v for k, v in raw.items() if k is not None} for raw in reader)
                if (row.get("item") or "").strip()}


def histories(interactions: Iterable[Interaction]) -> dict[str, list[Interaction]]:
    """Each user's interactions in time order (ties in log order), a repeated item kept once
    (its first interaction)."""
    by_user: dict[str, list[Interaction]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    ordered = sorted(enumerate(interactions), key=lambda pair: (pair[1].timestamp, pair[0]))
    for _, row in ordered:
        if (row.user, row.item) not in seen:
            seen.add((row.user, row.item))
            by_user[row.user].append(row)
    return dict(by_user)


def sample_candidates(held_out: str, rated: set[str], catalogue: Sequence[str], negatives: int,
                      seed: str) -> list[str]:
    """``held_out`` and ``negatives`` items of ``catalogue`` outside ``rated``, drawn
    uniformly by ``seed`` (a string: the same seed draws the same items), shuffled."""
    pool = [item for item in catalogue if item not in rated and item != held_out]
    generator = random.Random(seed)
    chosen = generator.sample(pool, min(negatives, len(pool))) + [held_out]
    generator.shuffle(chosen)
    return chosen


def _time(timestamp: float) -> str:
    return str(int(timestamp)) if float(timestamp).is_integer() else repr(float(timestamp))


def _day(timestamp: float) -> str | None:
    try:
        return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")
    except (OverflowError, OSError, ValueError):  # a log whose times are not Unix seconds
        return None


def _record(user: str, row: Interaction, texts: Mapping[str, str]) -> dict[str, Any]:
    record = {"id": f"{user}-{row.item}", "item": row.item, "text": texts.get(row.item) or row.item,
              "timestamp": _time(row.timestamp)}
    day = _day(row.timestamp)
    if day is not None:
        record["date"] = day
    if row.rating is not None:
        record["score"] = row.rating
    return record


def _sort_key(user: str) -> tuple[int, Any]:
    return (0, int(user)) if user.isdigit() else (1, user)


def build_next_item(out: str | Path, interactions: Iterable[Interaction], texts: Mapping[str, str], *, name: str,
                    source: str, negatives: int = NEGATIVES, seed: int = 0, max_users: int | None = None,
                    attributes: Mapping[str, Mapping[str, str]] | None = None, titles: Mapping[str, str] | None = None,
                    question: str = QUESTION) -> BuildReport:
    """Write the ``dev`` and ``test`` questions of every user with at least three
    interactions (one history item before the validation one) into ``out``; the layout is
    this module's. ``texts`` describe the items (in histories and prompts), ``titles``
    name them (what a model is asked the likelihood of; the text when not given).
    ``max_users`` keeps the first users (by id), for quick builds; ``attributes`` (user id
    -> age, gender, ...) go into each question as ``user_attributes``."""
    # Imported here: the packaged builders (MovieLens among them) import this module.
    from tailor.data.packaged.build import BuildReport, check_at_least_one, write_json

    check_at_least_one(negatives=negatives)
    if max_users is not None:
        check_at_least_one(max_users=max_users)
    by_user = histories(interactions)
    catalogue = sorted({row.item for rows in by_user.values() for row in rows}, key=_sort_key)
    users = [user for user in sorted(by_user, key=_sort_key) if len(by_user[user]) >= 3]
    skipped = len(by_user) - len(users)
    if max_users is not None:
        users = users[:max_users]
    if not users:
        raise ValueError("no user has the three interactions a history, a validation and a test item need")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    titles = titles or {}
    write_json(out / ITEMS_FILE, [{"id": item, "text": texts.get(item) or item,
                                   "title": titles.get(item) or texts.get(item) or item} for item in catalogue])
    counts: dict[str, int] = {}
    for offset, split in ((2, "dev"), (1, "test")):
        questions, golds = [], []
        for user in users:
            rows = by_user[user]
            target = rows[-offset]
            history = [row for row in rows if row.timestamp < target.timestamp]
            if not history:
                continue  # every earlier interaction shares the held-out one's second
            kept = {row.item for row in history}
            rated = {row.item for row in rows}
            entry: dict[str, Any] = {
                "id": f"{user}-{target.item}", "user_id": user, "input": question,
                "timestamp": _time(target.timestamp),
                "profile": [_record(user, row, texts) for row in history],
                "candidates": sample_candidates(target.item, rated, catalogue, negatives, f"{seed}-{split}-{user}"),
                "excluded": sorted((rated - kept) - {target.item}, key=_sort_key),
            }
            if attributes and user in attributes:
                entry["user_attributes"] = dict(attributes[user])
            questions.append(entry)
            golds.append({"id": entry["id"], "output": target.item})
        write_json(out / f"{split}_questions.json", questions)
        write_json(out / f"{split}_outputs.json", {"task": name, "golds": golds})
        counts[split] = len(questions)
    write_json(out / "dataset.json", {"name": name, "task": name, "layout": "next-item", "splits": counts,
                                      "users": len(users), "items": len(catalogue), "negatives": negatives,
                                      "seed": seed, "source": source})
    notes = (f"{skipped} users with fewer than 3 interactions left out",) if skipped else ()
    return BuildReport(name, name, str(out), counts, len(users), source, notes)


__all__ = ["ITEMS_FILE", "NEGATIVES", "SPLITS", "Interaction", "build_next_item", "histories",
           "read_interactions_csv", "read_items_csv", "sample_candidates"]
