"""Next-item data: leave-last-out in time order, nothing at or after the held-out
interaction in a history, candidates reproducible by seed and never a rated item."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.recommenders.next_item_data import ROWS, TITLES, build, write_csvs

from tailor.cli.main import main
from tailor.data.interactions import histories, read_interactions_csv, read_items_csv, sample_candidates
from tailor.tasks import build_dataset, get_task


def _log() -> dict[str, list[tuple[str, int]]]:
    by_user: dict[str, list[tuple[str, int]]] = {}
    for user, item, time in ROWS:
        if item not in {i for i, _ in by_user.get(user, [])}:
            by_user.setdefault(user, []).append((item, time))
    return by_user


def test_dev_is_the_second_to_last_and_test_the_last_interaction(tmp_path: Path) -> None:
    data = build(tmp_path)
    log = _log()
    for split, offset in (("dev", 2), ("test", 1)):
        golds = {row["id"]: row["output"] for row in json.loads((data / f"{split}_outputs.json").read_text())["golds"]}
        for question in json.loads((data / f"{split}_questions.json").read_text()):
            assert golds[question["id"]] == log[question["user_id"]][-offset][0]


def test_no_history_item_at_or_after_the_held_out_one(tmp_path: Path) -> None:
    data = build(tmp_path)
    for split in ("dev", "test"):
        for question in json.loads((data / f"{split}_questions.json").read_text()):
            held_out = float(question["timestamp"])
            assert question["profile"], question["id"]
            assert all(float(record["timestamp"]) < held_out for record in question["profile"])
    # u4 chose h and a in the same second, a last: h is neither history nor candidate.
    test = {q["user_id"]: q for q in json.loads((data / "test_questions.json").read_text())}
    assert [r["item"] for r in test["u4"]["profile"]] == ["c", "d", "f"]
    assert test["u4"]["excluded"] == ["h"]


def test_every_input_of_an_evaluation_stops_before_the_held_out_interaction(tmp_path: Path) -> None:
    data = build(tmp_path)
    times: dict[tuple[str, str], int] = {}
    for user, item, time in ROWS:
        times.setdefault((user, item), time)  # a repeated item keeps its first interaction
    for name in ("movielens-next", "movielens-next-full"):
        for split in ("dev", "test"):
            for example in get_task(name).load(data, split):
                held_out = times[(example.user_id, example.gold)]
                assert all(times[(example.user_id, r.fields["item"])] < held_out for r in example.profile.records)
                assert example.gold not in {r.fields["item"] for r in example.profile.records}


def test_candidates_hold_the_held_out_item_and_no_rated_one(tmp_path: Path) -> None:
    data = build(tmp_path, negatives=3)
    rated = {user: {item for item, _ in items} for user, items in _log().items()}
    for split in ("dev", "test"):
        for example in get_task("movielens-next").load(data, split):
            ids = [c.id for c in example.candidates]
            assert ids.count(example.gold) == 1
            assert not (set(ids) - {example.gold}) & rated[example.user_id]
            assert len(ids) == len(set(ids))
        for example in get_task("movielens-next-full").load(data, split):
            ids = {c.id for c in example.candidates}
            assert example.gold in ids and not (ids - {example.gold}) & rated[example.user_id]


def test_sampling_is_reproducible_by_seed() -> None:
    catalogue = [str(i) for i in range(200)]
    first = sample_candidates("7", {"1", "2"}, catalogue, 99, "0-test-u1")
    assert first == sample_candidates("7", {"1", "2"}, catalogue, 99, "0-test-u1")
    assert first != sample_candidates("7", {"1", "2"}, catalogue, 99, "1-test-u1")
    assert sorted(first) != first  # shuffled: the held-out item's place says nothing


def test_a_build_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    one, two, other = build(tmp_path / "a"), build(tmp_path / "b"), build(tmp_path / "c", seed=5)
    read = lambda folder: [q["candidates"] for q in json.loads((folder / "test_questions.json").read_text())]
    assert read(one) == read(two)
    assert read(one) != read(other)


def test_repeated_items_keep_their_first_interaction_and_short_users_are_left_out(tmp_path: Path) -> None:
    interactions, items = write_csvs(tmp_path)
    by_user = histories(read_interactions_csv(interactions))
    assert [row.item for row in by_user["u5"]] == ["d", "c", "h", "f"]
    data = build(tmp_path)
    assert "u6" not in {q["user_id"] for q in json.loads((data / "test_questions.json").read_text())}
    assert read_items_csv(items)["a"] == "Alien"


def test_the_builder_takes_your_csv_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    interactions, items = write_csvs(tmp_path / "csv")
    assert main(["data", "build", "movielens-next", "--interactions", str(interactions), "--items", str(items),
                 "--out", str(tmp_path / "out")]) == 0
    assert "dev: 5, test: 5" in capsys.readouterr().out
    titles = {record.fields["title"] for example in get_task("movielens-next").load(tmp_path / "out", "test")
              for record in example.profile.records}
    assert titles <= set(TITLES.values()) and titles  # each history item carries its catalogue title
    with pytest.raises(ValueError, match="both"):
        build_dataset("movielens-next", tmp_path / "out2", interactions=str(interactions))


def test_a_csv_without_the_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("person,thing\nu1,a\n")
    with pytest.raises(ValueError, match="user, item, timestamp"):
        read_interactions_csv(path)


def test_movielens_next_builds_from_the_packaged_data(tmp_path: Path) -> None:
    pytest.importorskip("recbole", reason="recbole carries MovieLens 100k")
    report = build_dataset("movielens-next", tmp_path, max_users=30)
    assert report.splits == {"dev": 30, "test": 30}
    for example in get_task("movielens-next").load(tmp_path, "test"):
        assert len(example.candidates) == 100
        held_out = max(int(r.fields["timestamp"]) for r in example.profile.records)
        assert example.gold not in {r.fields["item"] for r in example.profile.records}
        assert held_out >= 0
