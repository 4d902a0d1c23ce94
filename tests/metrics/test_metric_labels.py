import pytest

from tailor.metrics import LAMP_LABELS, LAMP_TASK_KINDS, LAMP_TASKS, normalize_task_name, task_kind


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("LaMP-4", "LaMP-4"),
        ("LaMP_4", "LaMP-4"),
        ("lamp-4", "LaMP-4"),
        (" LAMP_7 ", "LaMP-7"),
        ("LaMP-2", "LaMP-2"),
        ("lamp_2n", "LaMP-2N"),
        ("LaMP-2M", "LaMP-2M"),
        ("lamp4", "LaMP-4"),  # the data readers always took it; the normalizer is now shared
    ],
)
def test_normalize_task_name_accepts_spellings(name: str, expected: str) -> None:
    assert normalize_task_name(name) == expected


@pytest.mark.parametrize("name", ["LaMP-8", "LaMP-0", "LaMP-3N", "LaMP-2X", "LongLaMP-4", ""])
def test_normalize_task_name_rejects_unknown_names_listing_valid_ones(name: str) -> None:
    with pytest.raises(ValueError, match="valid names are LaMP-1, LaMP-2, LaMP-2N, LaMP-2M, LaMP-3"):
        normalize_task_name(name)


def test_label_sets_match_the_official_evaluator() -> None:
    assert LAMP_LABELS["LaMP-1"] == ("[1]", "[2]")
    # Plain LaMP-2 is the movie-tagging task; the news categories are LaMP-2N.
    assert LAMP_LABELS["LaMP-2"] == LAMP_LABELS["LaMP-2M"]
    assert LAMP_LABELS["LaMP-2M"][:3] == ("sci-fi", "based on a book", "comedy")
    assert LAMP_LABELS["LaMP-2N"][:4] == ("women", "religion", "politics", "style & beauty")
    assert len(LAMP_LABELS["LaMP-2M"]) == len(LAMP_LABELS["LaMP-2N"]) == 15
    for labels in LAMP_LABELS.values():
        assert len(set(labels)) == len(labels)


def test_every_task_has_a_kind() -> None:
    assert LAMP_TASKS == tuple(LAMP_TASK_KINDS)
    assert task_kind("LaMP_1") == "classification"
    assert task_kind("LaMP-2N") == "classification"
    assert task_kind("LaMP-3") == "rating"
    assert [task_kind(f"LaMP-{k}") for k in range(4, 8)] == ["generation"] * 4
