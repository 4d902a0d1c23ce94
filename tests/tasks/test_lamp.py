"""The LaMP tasks: one table of facts, the spellings of their names, and their files (LaMP's
layout, read and written through the task declarations)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.data.lamp_files import question, write_json

from tailor.data import DataFormatError, read_outputs
from tailor.tasks import TASKS, get_task
from tailor.tasks.lamp import LAMP_TASK_NAMES, LAMP_TASKS, detect_task, normalize_task_name, official_name
from tailor.types import TaskExample

FIXTURES = Path(__file__).parents[1] / "fixtures" / "lamp"

# fixture folder -> (task to load it as, number of questions)
FIXTURE_TASKS = {
    "LaMP_1": ("LaMP-1", 2),
    "LaMP_2M": ("LaMP-2M", 2),
    "LaMP_2N": ("LaMP-2N", 2),
    "LaMP_3": ("LaMP-3", 2),
    "LaMP_4": ("LaMP-4", 3),
    "LaMP_5": ("LaMP-5", 2),
    "LaMP_6": ("LaMP-6", 2),
    "LaMP_7": ("LaMP-7", 2),
}


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("LaMP-4", "LaMP-4"),
        ("LaMP_4", "LaMP-4"),
        ("lamp-4", "LaMP-4"),
        ("lamp 4", "LaMP-4"),
        ("LAMP4", "LaMP-4"),
        ("lamp4", "LaMP-4"),
        (" LAMP4 ", "LaMP-4"),
        (" LaMP_7\n", "LaMP-7"),
        (" LAMP_7 ", "LaMP-7"),
        ("LaMP-2", "LaMP-2"),
        ("LaMP_2", "LaMP-2"),
        ("lamp_2n", "LaMP-2N"),
        ("LaMP_2N", "LaMP-2N"),
        ("LaMP2M", "LaMP-2M"),
        ("lamp-2m", "LaMP-2M"),
        ("LaMP-2M", "LaMP-2M"),
    ],
)
def test_accepted_spellings(spelling: str, canonical: str) -> None:
    assert normalize_task_name(spelling) == canonical
    # The task registry takes the same spellings.
    assert spelling in TASKS and get_task(spelling) is LAMP_TASKS[canonical]


@pytest.mark.parametrize(
    "name", ["LaMP-8", "LaMP-0", "LaMP-4M", "LaMP-3N", "LaMP-2X", "LaMP--4", "LaMP 2 N", "LongLaMP-4", "lamp",
             "GLUE", "", 4, None]
)
def test_unknown_names_fail_listing_every_valid_name(name: object) -> None:
    with pytest.raises(ValueError) as info:
        normalize_task_name(name)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"unknown task name {name!r}; valid names are LaMP-1, LaMP-2, LaMP-2N, LaMP-2M, LaMP-3, ")
    assert "LaMP-7" in message and "LaMP_4" in message


def test_every_canonical_name_is_its_own_spelling() -> None:
    assert [normalize_task_name(name) for name in LAMP_TASK_NAMES] == list(LAMP_TASK_NAMES)


def test_the_table_is_the_one_source_of_lamp_names() -> None:
    assert LAMP_TASK_NAMES == tuple(LAMP_TASKS) == ("LaMP-1", "LaMP-2", "LaMP-2N", "LaMP-2M", "LaMP-3", "LaMP-4",
                                                    "LaMP-5", "LaMP-6", "LaMP-7")
    for name, task in LAMP_TASKS.items():
        assert task.name == name and get_task(name) is task


def test_official_names_are_what_the_official_files_say() -> None:
    assert [official_name(name) for name in LAMP_TASK_NAMES] == [
        "LaMP_1", "LaMP_2", "LaMP_2", "LaMP_2", "LaMP_3", "LaMP_4", "LaMP_5", "LaMP_6", "LaMP_7"]
    assert official_name("lamp-4") == "LaMP_4"
    with pytest.raises(ValueError, match="valid names"):
        official_name("LaMP-0")


# -- facts ---------------------------------------------------------------------------------------


def test_label_sets_match_the_official_evaluator() -> None:
    labels = {name: task.labels for name, task in LAMP_TASKS.items()}
    assert labels["LaMP-1"] == ("[1]", "[2]")
    # Plain LaMP-2 is the movie-tagging task; the news categories are LaMP-2N.
    assert labels["LaMP-2"] == labels["LaMP-2M"]
    assert labels["LaMP-2M"][:3] == ("sci-fi", "based on a book", "comedy")
    assert labels["LaMP-2N"][:4] == ("women", "religion", "politics", "style & beauty")
    assert len(labels["LaMP-2M"]) == len(labels["LaMP-2N"]) == 15
    assert labels["LaMP-3"] == ("1", "2", "3", "4", "5")
    for values in labels.values():
        assert len(set(values)) == len(values)
    assert all(not labels[f"LaMP-{k}"] for k in range(4, 8))


def test_every_task_has_a_kind() -> None:
    assert get_task("LaMP_1").kind == "classification"
    assert get_task("LaMP-2N").kind == "classification"
    assert get_task("LaMP-2").kind == get_task("LaMP-2M").kind == "classification"
    assert get_task("LaMP-3").kind == "rating"
    assert [get_task(f"LaMP-{k}").kind for k in range(4, 8)] == ["generation"] * 4


def test_every_task_has_its_profile_fields() -> None:
    assert {name: task.profile_fields for name, task in LAMP_TASKS.items()} == {
        "LaMP-1": ("title", "abstract"),
        "LaMP-2": ("description", "tag"),
        "LaMP-2N": ("title", "text", "category"),
        "LaMP-2M": ("description", "tag"),
        "LaMP-3": ("text", "score"),
        "LaMP-4": ("title", "text"),
        "LaMP-5": ("title", "abstract"),
        "LaMP-6": ("title", "text"),
        "LaMP-7": ("text",),
    }


def test_packaged_tasks_borrow_the_layout_they_name() -> None:
    for name, layout in {"news-headlines": "LaMP-4", "commits": "LaMP-6", "tweets": "LaMP-7",
                         "movielens-ratings": "LaMP-3", "debates": "LaMP-7"}.items():
        task = get_task(name)
        assert task.lamp_format == layout
        assert task.profile_fields == LAMP_TASKS[layout].profile_fields
        assert task.outputs_task == official_name(layout)


# -- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", sorted(FIXTURE_TASKS))
def test_every_task_fixture_loads_with_golds(folder: str) -> None:
    name, count = FIXTURE_TASKS[folder]
    task = get_task(name)
    examples = task.load(FIXTURES / folder, "dev")
    assert len(examples) == count
    for example in examples:
        assert isinstance(example, TaskExample)
        assert example.gold
        assert example.profile.user_id == example.user_id
        assert len(example.profile) >= 1
        for record in example.profile.records:
            assert all(record.fields[field] for field in task.profile_fields)


@pytest.mark.parametrize("folder", sorted(FIXTURE_TASKS))
def test_task_is_detected_from_outputs_file(folder: str) -> None:
    task, _ = FIXTURE_TASKS[folder]
    # Both LaMP-2 variants are called LaMP_2 in the official files.
    expected = "LaMP-2" if task.startswith("LaMP-2") else task
    assert detect_task(FIXTURES / folder, "dev") == expected


def test_detect_task_without_outputs_file_is_none(tmp_path: Path) -> None:
    write_json(tmp_path / "test_questions.json", [question()])
    assert detect_task(tmp_path, "test") is None


def test_the_detected_task_requires_its_fields(tmp_path: Path) -> None:
    # The outputs file's "LaMP_4" says that items need title and text.
    write_json(tmp_path / "dev_questions.json", [question(profile=[{"id": "p1", "text": "no title"}])])
    write_json(tmp_path / "dev_outputs.json", {"task": "LaMP_4", "golds": [{"id": "q1", "output": "x"}]})
    detected = detect_task(tmp_path, "dev")
    assert detected is not None
    with pytest.raises(DataFormatError) as info:
        get_task(detected).load(tmp_path)
    assert info.value.field == "title" and info.value.record_id == "p1"


def test_a_task_refuses_data_whose_outputs_file_names_another() -> None:
    with pytest.raises(DataFormatError, match="LaMP-4") as info:
        get_task("LaMP-5").load(FIXTURES / "LaMP_4", "dev")
    assert info.value.field == "task"
    with pytest.raises(DataFormatError, match="says LaMP-2 but task LaMP-4"):
        get_task("news-headlines").load(FIXTURES / "LaMP_2M", "dev")
    # LaMP_2 fits both LaMP-2 variants.
    assert get_task("LaMP-2N").load(FIXTURES / "LaMP_2N", "dev")


def test_golds_attached_by_id_under_any_spelling() -> None:
    examples = get_task("LaMP_1").load(FIXTURES / "LaMP_1", "dev")
    assert {e.id: e.gold for e in examples} == {"110": "[1]", "111": "[2]"}


def test_load_without_outputs_has_no_golds(tmp_path: Path) -> None:
    write_json(tmp_path / "test_questions.json", [question()])
    [example] = get_task("LaMP-4").load(tmp_path, "test")
    assert example.gold is None


def test_outputs_unknown_task_name(tmp_path: Path) -> None:
    path = write_json(tmp_path / "dev_outputs.json", {"task": "LaMP_9", "golds": []})
    write_json(tmp_path / "dev_questions.json", [])
    for read in (lambda: get_task("LaMP-4").read_outputs(path), lambda: get_task("LaMP-4").load(tmp_path)):
        with pytest.raises(DataFormatError) as info:
            read()
        assert info.value.field == "task" and str(path) in str(info.value)
        assert "LaMP_9" in str(info.value) and "valid names" in str(info.value)


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "preds.json"
    predictions = {"6100": "Trees by the river", "6101": "Bridge closes — for a month"}
    get_task("lamp-4").write_predictions(path, predictions)
    assert get_task("LaMP-4").read_outputs(path) == predictions
    assert read_outputs(path) == ("LaMP_4", predictions)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["golds"][0] == {"id": "6100", "output": "Trees by the river"}


@pytest.mark.parametrize(("name", "written"), [("LaMP-2M", "LaMP_2"), ("LaMP-2N", "LaMP_2"),
                                               ("news-headlines", "LaMP_4"), ("commits", "LaMP_6")])
def test_predictions_name_the_official_task(tmp_path: Path, name: str, written: str) -> None:
    path = tmp_path / "preds.json"
    get_task(name).write_predictions(path, {"310": "x"})
    assert json.loads(path.read_text(encoding="utf-8"))["task"] == written
