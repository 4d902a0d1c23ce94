"""Tests for the LaMP readers and writer, against small fixtures in the real file layout.

The readers know the layout, not the tasks: which fields profile items need and what the
outputs file's task must say are the caller's (tests/tasks/test_lamp.py has those, through
the LaMP task declarations)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from tests.data.lamp_files import question, write_json

from tailor.data import DataFormatError, load_split, read_outputs, read_questions, write_outputs

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lamp"
HEADLINE_FIELDS = ("title", "text")  # LaMP-4's profile fields


# --- splits -------------------------------------------------------------------------


def test_load_split_requires_the_given_fields(tmp_path: Path) -> None:
    write_json(tmp_path / "dev_questions.json", [question(profile=[{"id": "p1", "text": "no title"}])])
    write_json(tmp_path / "dev_outputs.json", {"task": "LaMP_4", "golds": [{"id": "q1", "output": "x"}]})
    with pytest.raises(DataFormatError) as info:
        load_split(tmp_path, fields=HEADLINE_FIELDS)
    assert info.value.field == "title" and info.value.record_id == "p1"
    [example] = load_split(tmp_path)  # no fields asked for: any item fields are accepted
    assert example.gold == "x"


def test_load_split_asks_the_caller_about_the_outputs_files_task(tmp_path: Path) -> None:
    told: list[str] = []

    def refuse(named: str) -> None:
        told.append(named)
        raise ValueError(f"says {named} but task LaMP-5 was asked for")

    with pytest.raises(DataFormatError, match="says LaMP_4 but task LaMP-5") as info:
        load_split(FIXTURES / "LaMP_4", "dev", check_task=refuse)
    assert info.value.field == "task" and info.value.path.endswith("dev_outputs.json")
    assert told == ["LaMP_4"]
    assert len(load_split(FIXTURES / "LaMP_4", "dev", check_task=told.append)) == 3


def test_golds_attached_by_id() -> None:
    examples = load_split(FIXTURES / "LaMP_1", "dev", fields=("title", "abstract"))
    assert {e.id: e.gold for e in examples} == {"110": "[1]", "111": "[2]"}


def test_load_split_without_outputs_has_no_golds(tmp_path: Path) -> None:
    write_json(tmp_path / "test_questions.json", [question()])
    [example] = load_split(tmp_path, "test", fields=HEADLINE_FIELDS)
    assert example.gold is None


# --- user ids, numbers, dates, extra fields ------------------------------------------


def test_user_id_taken_from_question_when_present() -> None:
    examples = load_split(FIXTURES / "LaMP_4", "dev", fields=HEADLINE_FIELDS)
    assert [e.user_id for e in examples] == ["61", "61", "62"]
    assert [e.profile.user_id for e in examples] == ["61", "61", "62"]


def test_user_id_defaults_to_question_id() -> None:
    examples = load_split(FIXTURES / "LaMP_5", "dev")
    assert [(e.id, e.user_id) for e in examples] == [("700", "700"), ("701", "701")]


def test_numbers_become_strings() -> None:
    first, second = load_split(FIXTURES / "LaMP_3", "dev", fields=("text", "score"))
    assert first.id == "2100" and first.gold == "1" and second.gold == "4"
    records = first.profile.records
    assert [r.id for r in records] == ["21000", "21001"]
    # 3.0 in the file is the score 3, not "3.0".
    assert [r.fields["score"] for r in records] == ["5", "3"]
    assert second.profile.records[0].fields["score"] == "1"


def test_missing_or_null_date_is_none() -> None:
    first, second = load_split(FIXTURES / "LaMP_7", "dev", fields=("text",))
    assert [r.date for r in first.profile.records] == ["2009-05-01", None]
    assert second.profile.records[0].date is None


def test_extra_scalar_fields_are_kept_and_others_dropped(tmp_path: Path) -> None:
    item = {"id": 5, "title": "T", "text": "X", "url": "http://a", "votes": 7, "tags": ["a"], "note": None}
    path = write_json(tmp_path / "dev_questions.json", [question(profile=[item])])
    [example] = read_questions(path, fields=HEADLINE_FIELDS)
    record = example.profile.records[0]
    assert record.id == "5"
    assert dict(record.fields) == {"title": "T", "text": "X", "url": "http://a", "votes": "7"}


def test_without_fields_any_item_fields_are_accepted(tmp_path: Path) -> None:
    path = write_json(tmp_path / "dev_questions.json", [question(profile=[{"id": "p", "whatever": "w"}])])
    [example] = read_questions(path)
    assert dict(example.profile.records[0].fields) == {"whatever": "w"}


# --- limit ----------------------------------------------------------------------------


def test_limit_keeps_first_questions_in_file_order() -> None:
    examples = load_split(FIXTURES / "LaMP_4", "dev", fields=HEADLINE_FIELDS, limit=2)
    assert [(e.id, e.gold) for e in examples] == [
        ("6100", "Volunteers plant trees along river"),
        ("6101", "Old bridge to close for repairs"),
    ]
    assert [e.id for e in read_questions(FIXTURES / "LaMP_4" / "dev_questions.json", limit=1)] == ["6100"]
    assert load_split(FIXTURES / "LaMP_4", "dev", limit=0) == []


def test_limit_still_validates_whole_file(tmp_path: Path) -> None:
    path = write_json(tmp_path / "dev_questions.json", [question("q1"), question("q2", input=None)])
    with pytest.raises(DataFormatError) as info:
        read_questions(path, fields=HEADLINE_FIELDS, limit=1)
    assert info.value.record_id == "q2"


@pytest.mark.parametrize("limit", [-1, 1.5, True])
def test_bad_limit_is_rejected(limit: Any) -> None:
    with pytest.raises(ValueError, match="limit"):
        read_questions(FIXTURES / "LaMP_4" / "dev_questions.json", limit=limit)


# --- malformed questions files --------------------------------------------------------


def read_bad_questions(tmp_path: Path, data: Any, fields: tuple[str, ...] = HEADLINE_FIELDS) -> DataFormatError:
    path = write_json(tmp_path / "dev_questions.json", data)
    with pytest.raises(DataFormatError) as info:
        read_questions(path, fields=fields)
    error = info.value
    assert error.path == str(path) and str(path) in str(error)
    return error


def test_missing_input_names_file_question_and_field(tmp_path: Path) -> None:
    bad = question("310")
    del bad["input"]
    error = read_bad_questions(tmp_path, [question("309"), bad])
    assert (error.record_id, error.field) == ("310", "input")
    assert str(error).endswith("dev_questions.json: question '310', field 'input': missing")


def test_profile_not_a_list(tmp_path: Path) -> None:
    error = read_bad_questions(tmp_path, [question("310", profile={"id": "1"})])
    assert (error.record_id, error.field) == ("310", "profile")
    assert "question '310'" in str(error) and "field 'profile'" in str(error) and "got dict" in str(error)


def test_item_missing_required_field(tmp_path: Path) -> None:
    error = read_bad_questions(tmp_path, [question("310", profile=[{"id": 3101, "text": "body", "date": None}])])
    assert (error.record_id, error.field) == ("3101", "title")
    assert str(error).endswith("dev_questions.json: question '310', profile item '3101', field 'title': missing")


def test_item_field_of_wrong_type(tmp_path: Path) -> None:
    error = read_bad_questions(tmp_path, [question("310", profile=[{"id": "3101", "title": ["x"], "text": "t"}])])
    assert (error.record_id, error.field) == ("3101", "title")
    assert "got list" in str(error)


def test_item_without_id_is_located_by_index(tmp_path: Path) -> None:
    items = [{"id": "a", "title": "T", "text": "X"}, {"title": "T", "text": "X"}]
    error = read_bad_questions(tmp_path, [question("310", profile=items)])
    assert (error.record_id, error.field) == ("310", "id")
    assert "question '310', profile item at index 1, field 'id': missing" in str(error)


def test_item_not_an_object(tmp_path: Path) -> None:
    error = read_bad_questions(tmp_path, [question("310", profile=["just text"])])
    assert "question '310', profile item at index 0" in str(error) and "got str" in str(error)


def test_duplicate_question_id(tmp_path: Path) -> None:
    error = read_bad_questions(tmp_path, [question("310"), question("311"), question("310")])
    assert (error.record_id, error.field) == ("310", "id")
    assert "question '310'" in str(error) and "duplicate" in str(error) and "index 2" in str(error)


def test_question_without_id_is_located_by_index(tmp_path: Path) -> None:
    bad = question()
    del bad["id"]
    error = read_bad_questions(tmp_path, [question("q0"), bad])
    assert error.field == "id" and error.record_id is None
    assert "question at index 1, field 'id': missing" in str(error)


def test_bad_user_id(tmp_path: Path) -> None:
    error = read_bad_questions(tmp_path, [question("310", user_id=["u"])])
    assert (error.record_id, error.field) == ("310", "user_id")


def test_top_level_not_a_list(tmp_path: Path) -> None:
    error = read_bad_questions(tmp_path, {"questions": []})
    assert "top level must be a list" in str(error)


def test_bad_json_reports_line_number(tmp_path: Path) -> None:
    path = tmp_path / "dev_questions.json"
    path.write_text('[\n  {"id": "1",\n   "input": "x"\n   "profile": []}\n]\n', encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        read_questions(path)
    assert info.value.line == 4
    assert str(path) in str(info.value) and "line 4" in str(info.value)


def test_missing_questions_file_lists_folder_contents(tmp_path: Path) -> None:
    write_json(tmp_path / "train_questions.json", [])
    with pytest.raises(FileNotFoundError) as info:
        load_split(tmp_path, "dev")
    assert "dev_questions.json" in str(info.value) and "train_questions.json" in str(info.value)


def test_missing_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_split(tmp_path / "nowhere", "dev")


# --- outputs files --------------------------------------------------------------------


def test_outputs_missing_a_question_id(tmp_path: Path) -> None:
    write_json(tmp_path / "dev_questions.json", [question("310"), question("311")])
    outputs = write_json(tmp_path / "dev_outputs.json", {"task": "LaMP_4", "golds": [{"id": "310", "output": "x"}]})
    with pytest.raises(DataFormatError) as info:
        load_split(tmp_path, "dev")
    assert info.value.path == str(outputs) and info.value.record_id == "311"
    assert "question '311'" in str(info.value) and "no gold" in str(info.value)


def test_outputs_with_unknown_id(tmp_path: Path) -> None:
    write_json(tmp_path / "dev_questions.json", [question("310")])
    golds = [{"id": "310", "output": "x"}, {"id": "999", "output": "y"}]
    write_json(tmp_path / "dev_outputs.json", {"task": "LaMP_4", "golds": golds})
    with pytest.raises(DataFormatError) as info:
        load_split(tmp_path, "dev")
    assert info.value.record_id == "999" and "dev_questions.json" in str(info.value)


def test_outputs_task_is_read_as_written(tmp_path: Path) -> None:
    # Which names are valid is the task declarations' to say (tests/tasks/test_lamp.py).
    path = write_json(tmp_path / "dev_outputs.json", {"task": "LaMP_9", "golds": []})
    assert read_outputs(path) == ("LaMP_9", {})


def test_outputs_task_that_is_no_name(tmp_path: Path) -> None:
    path = write_json(tmp_path / "dev_outputs.json", {"task": 4, "golds": []})
    with pytest.raises(DataFormatError) as info:
        read_outputs(path)
    assert info.value.field == "task" and str(path) in str(info.value) and "got int" in str(info.value)


@pytest.mark.parametrize(
    ("golds", "record_id", "field", "text"),
    [
        ([{"id": "1", "output": "a"}, {"id": "1", "output": "b"}], "1", "id", "duplicate"),
        ([{"id": "1"}], "1", "output", "missing"),
        ([{"id": "1", "output": None}], "1", "output", "got null"),
        ([{"output": "a"}], None, "id", "gold at index 0"),
    ],
)
def test_malformed_golds(tmp_path: Path, golds: Any, record_id: str | None, field: str, text: str) -> None:
    path = write_json(tmp_path / "dev_outputs.json", {"task": "LaMP_4", "golds": golds})
    with pytest.raises(DataFormatError) as info:
        read_outputs(path)
    assert (info.value.record_id, info.value.field) == (record_id, field)
    assert text in str(info.value) and str(path) in str(info.value)


def test_outputs_without_golds_list(tmp_path: Path) -> None:
    path = write_json(tmp_path / "dev_outputs.json", {"task": "LaMP_4"})
    with pytest.raises(DataFormatError) as info:
        read_outputs(path)
    assert info.value.field == "golds"


def test_outputs_without_task_read_as_none(tmp_path: Path) -> None:
    path = write_json(tmp_path / "dev_outputs.json", {"golds": [{"id": 1, "output": 4}]})
    assert read_outputs(path) == (None, {"1": "4"})


# --- writing --------------------------------------------------------------------------


def test_write_then_read_round_trip_from_mapping(tmp_path: Path) -> None:
    path = tmp_path / "preds.json"
    predictions = {"6100": "Trees by the river", "6101": "Bridge closes — for a month"}
    write_outputs(path, "LaMP_4", predictions)
    assert read_outputs(path) == ("LaMP_4", predictions)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["task"] == "LaMP_4"
    assert raw["golds"][0] == {"id": "6100", "output": "Trees by the river"}


def test_write_from_pairs_keeps_order(tmp_path: Path) -> None:
    path = tmp_path / "preds.json"
    write_outputs(path, "LaMP_7", [("b", "2"), ("a", "1")])
    assert [g["id"] for g in json.loads(path.read_text(encoding="utf-8"))["golds"]] == ["b", "a"]


def test_written_predictions_load_as_golds() -> None:
    # What we write is what the loader (and the official evaluator) reads as a golds file.
    examples = load_split(FIXTURES / "LaMP_6", "dev", fields=HEADLINE_FIELDS)
    assert read_outputs(FIXTURES / "LaMP_6" / "dev_outputs.json")[1] == {e.id: e.gold for e in examples}


@pytest.mark.parametrize(
    ("predictions", "error"),
    [
        ([("a", "1"), ("a", "2")], ValueError),
        ([("a", 1)], TypeError),
        ([("a",)], TypeError),
        ("not pairs", TypeError),
        ({"": "x"}, TypeError),
    ],
)
def test_write_rejects_bad_predictions(tmp_path: Path, predictions: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        write_outputs(tmp_path / "preds.json", "LaMP_4", predictions)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("task", ["", "  ", None])
def test_write_needs_a_task_name(tmp_path: Path, task: Any) -> None:
    with pytest.raises(ValueError, match="task must be a non-empty name"):
        write_outputs(tmp_path / "preds.json", task, {"a": "b"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failing", ["json.dump", "os.replace"])
def test_failed_write_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "preds.json"
    write_outputs(path, "LaMP_4", {"old": "kept"})
    before = path.read_bytes()

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    module, name = failing.split(".")
    monkeypatch.setattr(json if module == "json" else os, name, boom)
    with pytest.raises(OSError, match="disk full"):
        write_outputs(path, "LaMP_4", {"new": "lost"})
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["preds.json"]


def test_overwrite_keeps_file_permissions(tmp_path: Path) -> None:
    path = tmp_path / "preds.json"
    path.write_text("{}", encoding="utf-8")
    os.chmod(path, 0o640)
    write_outputs(path, "LaMP_4", {"a": "b"})
    assert path.stat().st_mode & 0o777 == 0o640


# --- the error type -------------------------------------------------------------------


def test_data_format_error_is_value_error_and_pickles() -> None:
    error = DataFormatError(
        "dev_questions.json", "missing", record_id="3101", field="title", location="question '310', profile item '3101'"
    )
    assert isinstance(error, ValueError)
    assert str(error) == "dev_questions.json: question '310', profile item '3101', field 'title': missing"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.record_id, copy.field, str(copy)) == (error.path, "3101", "title", str(error))
