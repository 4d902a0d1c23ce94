import pytest

import tailor.data
import tailor.metrics
from tailor.data import PROFILE_FIELDS
from tailor.metrics import LAMP_LABELS, LAMP_TASK_KINDS
from tailor.task_names import LAMP_TASK_NAMES, normalize_task_name
from tailor.tasks import TASKS


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("LaMP-4", "LaMP-4"),
        ("LaMP_4", "LaMP-4"),
        ("lamp-4", "LaMP-4"),
        ("lamp 4", "LaMP-4"),
        ("LAMP4", "LaMP-4"),
        (" LaMP_7\n", "LaMP-7"),
        ("LaMP-2", "LaMP-2"),
        ("lamp_2n", "LaMP-2N"),
        ("LaMP2M", "LaMP-2M"),
        ("lamp-2m", "LaMP-2M"),
    ],
)
def test_accepted_spellings(spelling: str, canonical: str) -> None:
    assert normalize_task_name(spelling) == canonical


@pytest.mark.parametrize(
    "name", ["LaMP-8", "LaMP-0", "LaMP-4M", "LaMP-2X", "LaMP--4", "LaMP 2 N", "LongLaMP-4", "lamp", "", 4, None]
)
def test_unknown_names_fail_listing_every_valid_name(name: object) -> None:
    with pytest.raises(ValueError) as info:
        normalize_task_name(name)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"unknown task name {name!r}; valid names are LaMP-1, LaMP-2, LaMP-2N, LaMP-2M, LaMP-3, ")
    assert "LaMP-7" in message and "LaMP_4" in message


def test_every_canonical_name_is_its_own_spelling() -> None:
    assert [normalize_task_name(name) for name in LAMP_TASK_NAMES] == list(LAMP_TASK_NAMES)


def test_data_metrics_and_tasks_share_one_normalizer_and_one_name_set() -> None:
    assert tailor.data.normalize_task_name is tailor.metrics.normalize_task_name is normalize_task_name
    names = set(LAMP_TASK_NAMES)
    assert set(PROFILE_FIELDS) == set(LAMP_TASK_KINDS) == names
    assert tuple(LAMP_TASK_KINDS) == LAMP_TASK_NAMES
    assert set(LAMP_LABELS) <= names
    assert names <= set(TASKS)
