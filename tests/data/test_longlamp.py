"""LongLaMP's file layout: each task's rows, profile fields and user field, its splits as
JSON, JSON Lines or Parquet, and golds read back from split files or outputs files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailor.data.lamp import DataFormatError
from tailor.data.longlamp import find_split, load_longlamp_split, read_longlamp_outputs
from tailor.tasks import get_task

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "longlamp"


def test_abstract_generation_rows_become_examples() -> None:
    examples = get_task("LongLaMP-2").load(FIXTURES / "abstract_generation_user", "val")
    assert [e.id for e in examples] == ["0", "1", "2"]  # rows carry no id: their position is it
    assert [e.user_id for e in examples] == ["Ada Lind", "Bo Carter", "Cy Moreau"]
    first = examples[0]
    assert first.input.startswith('Generate an abstract for the title "Learning eviction rules for search caches"')
    assert first.gold is not None and first.gold.startswith("Search caches decide")
    # A profile item's own id is kept; one without gets the question's id and its position.
    assert [r.id for r in first.profile.records] == ["ada-1", "0-1"]
    assert set(first.profile.records[1].fields) == {"title", "abstract"}
    assert get_task("LongLaMP-2").query(first.input) == "1. caching 2. query logs 3. eviction"


def test_product_review_rows_from_json_lines() -> None:
    examples = get_task("LongLaMP-4").load(FIXTURES / "product_review_user", "val")
    assert [e.user_id for e in examples] == ["A1MIA", "B2JON"]
    record = examples[0].profile.records[0]
    # Numbers (the rating 5.0) are read as text the way LaMP's scores are.
    assert record.fields["overall"] == "5" and record.fields["summary"] == "Keeps tea hot all morning"
    assert {"overall", "summary", "description", "reviewText"} <= set(record.fields)


def test_dev_names_val_and_train_is_its_own_split() -> None:
    folder = FIXTURES / "topic_writing_temporal"
    assert find_split(folder, "dev") == [folder / "val.json"]
    assert len(get_task("LongLaMP-3").load(folder, "dev")) == 3
    assert len(get_task("LongLaMP-3").load(folder, "train")) == 1
    assert len(get_task("LongLaMP-3").load(folder, "dev", limit=2)) == 2


def test_temporal_rows_of_one_user_keep_their_own_histories() -> None:
    # u_pedal's two rows carry different profiles (the later one holds the earlier one's gold):
    # each is a user of its own, so no question can retrieve what was written after it.
    examples = get_task("LongLaMP-3").load(FIXTURES / "topic_writing_temporal", "val")
    assert [e.user_id for e in examples] == ["u_pedal@0", "u_pedal@1", "u_garden"]
    assert examples[0].gold in {r.fields["content"] for r in examples[1].profile.records}
    assert examples[0].gold not in {r.fields["content"] for r in examples[0].profile.records}
    assert all(e.profile.user_id == e.user_id for e in examples)


def test_parquet_shards_are_read_in_order(tmp_path: Path) -> None:
    parquet = pytest.importorskip("pyarrow.parquet")
    import pyarrow

    rows = json.loads((FIXTURES / "abstract_generation_user" / "val.json").read_text())
    for number, part in enumerate((rows[:2], rows[2:])):
        parquet.write_table(pyarrow.Table.from_pylist(part), tmp_path / f"val-0000{number}-of-00002.parquet")
    examples = get_task("LongLaMP-2").load(tmp_path, "dev")
    assert [e.user_id for e in examples] == ["Ada Lind", "Bo Carter", "Cy Moreau"]
    assert read_longlamp_outputs(tmp_path / "val-00001-of-00002.parquet") == {"0": rows[2]["output"]}


def test_golds_come_from_a_split_file_or_an_outputs_file(tmp_path: Path) -> None:
    golds = read_longlamp_outputs(FIXTURES / "product_review_user" / "val.jsonl")
    assert list(golds) == ["0", "1"] and golds["1"].startswith("The low speed")
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"task": "LongLaMP_4", "golds": [{"id": "0", "output": "text"}]}))
    assert read_longlamp_outputs(outputs) == {"0": "text"}


@pytest.mark.parametrize(("row", "field"), [
    ({"profile": []}, "input"),
    ({"input": "x", "profile": "none"}, "profile"),
    ({"input": "x", "profile": [], "output": 3}, "output"),
    ({"input": "x", "profile": [{"title": "t"}]}, "abstract"),
])
def test_broken_rows_name_the_file_the_question_and_the_field(tmp_path: Path, row: dict, field: str) -> None:
    (tmp_path / "val.json").write_text(json.dumps([row]))
    with pytest.raises(DataFormatError, match=f"val.json: question '0'.*field '{field}'"):
        load_longlamp_split(tmp_path, "val", user_field="name", fields=("title", "abstract"))


def test_a_missing_split_lists_the_folder(tmp_path: Path) -> None:
    (tmp_path / "train.json").write_text("[]")
    with pytest.raises(FileNotFoundError, match=r"no LongLaMP split 'dev' \(or val\).*files there: train.json"):
        get_task("LongLaMP-2").load(tmp_path, "dev")
