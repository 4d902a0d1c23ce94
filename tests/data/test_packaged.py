"""Packaged real data built into LaMP-format tasks, read from the installed packages."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tailor.tasks import build_dataset, get_task

TASK = get_task("news-headlines")


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("news")
    build_dataset("news-headlines", out, questions_per_user=5, profile_size=40)
    return out


def test_news_headlines_is_valid_lamp_4_data(news: Path) -> None:
    for split in ("train", "dev"):
        examples = TASK.load(news, split)
        assert len(examples) == 9 * 5  # nine outlets, five questions each
        assert all(e.gold and e.input.startswith("Generate a headline for the following article: ")
                   for e in examples)
        assert all(0 < len(e.profile) <= 40 for e in examples)


def test_news_headlines_splits_are_time_ordered_and_disjoint(news: Path) -> None:
    train = TASK.load(news, "train")
    dev = TASK.load(news, "dev")
    assert not {e.id for e in train} & {e.id for e in dev}
    for examples in (train, dev):
        question_ids = {e.id for e in examples}
        for example in examples:
            # No profile item is a question of the split, or later than any question of its user.
            assert not {r.id for r in example.profile.records} & question_ids
    dates = {}
    for example in dev:
        dates.setdefault(example.user_id, []).append(max(r.date or "" for r in example.profile.records))
    assert all(len(set(d)) == 1 for d in dates.values())  # one profile per outlet


def test_the_first_questions_cover_every_outlet(news: Path) -> None:
    dev = TASK.load(news, "dev", limit=9)
    assert len(Counter(e.user_id for e in dev)) == 9


def test_unknown_data_set_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown data set 'nope'; valid names: .*news-headlines"):
        build_dataset("nope", tmp_path)
