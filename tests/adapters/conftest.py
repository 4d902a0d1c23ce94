"""Shared pieces of the adapter tests: a tiny random Llama model and a small LaMP-4 data set.

The tiny model (``tiny_model_dir``, in tests/conftest.py) has the default model's tokenizer
and chat template but 4 layers of width 32, so training and generation take milliseconds;
the tests that must run the real default model are marked ``model``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailor.adapters.store import AdapterStore
from tailor.store import SQLiteProfileStore
from tailor.types import HistoryRecord, Profile

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

# Each user writes headlines in a recognisable register, so that training has something to learn.
STYLES = {
    "alice": ("Breaking: {}", "storm floods river valley towns"),
    "bob": ("{} - analysis", "markets rally as rates hold"),
    "carol": ("Why {} matters", "city council votes on new parks"),
}
TOPICS = ["harbour", "election", "vaccine", "railway", "drought", "museum", "festival", "satellite",
          "glacier", "factory", "stadium", "library"]


def history(user_id: str, n: int = 10) -> list[dict[str, str]]:
    pattern, _ = STYLES[user_id]
    items = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        items.append({"id": f"{user_id}-{i}", "title": pattern.format(f"the {topic} story"),
                      "text": f"A report about the {topic} and what people in the region said about it today.",
                      "date": f"2024-01-{i + 1:02d}"})
    return items


def write_lamp4(folder: Path, users: tuple[str, ...] = ("alice", "bob", "carol"), items: int = 10,
                split: str = "dev", sizes: dict[str, int] | None = None) -> Path:
    """A LaMP-4 split with ``user_id``s: two questions per user, each with the user's history
    (``items`` items, or ``sizes[user_id]``)."""
    folder.mkdir(parents=True, exist_ok=True)
    questions, golds = [], []
    for user_id in users:
        pattern, subject = STYLES[user_id]
        for q in range(2):
            qid = f"{user_id}-q{q}"
            size = (sizes or {}).get(user_id, items)
            questions.append({"id": qid, "user_id": user_id, "profile": history(user_id, size),
                              "input": f"Generate a headline for the following article: News about {subject}, "
                                       f"part {q}, with quotes from local people."})
            golds.append({"id": qid, "output": pattern.format(subject)})
    (folder / f"{split}_questions.json").write_text(json.dumps(questions), encoding="utf-8")
    (folder / f"{split}_outputs.json").write_text(json.dumps({"task": "LaMP_4", "golds": golds}), encoding="utf-8")
    return folder


@pytest.fixture()
def adapter_store(tmp_path: Path) -> AdapterStore:
    profiles = SQLiteProfileStore(tmp_path / "profiles.sqlite")
    profiles.add_profiles([
        Profile(user_id, tuple(HistoryRecord(i["id"], {"title": i["title"], "text": i["text"]}, i["date"])
                               for i in history(user_id, 4)))
        for user_id in STYLES
    ])
    return AdapterStore(profiles)
