"""The small checks of :mod:`tailor.types` that configs share."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tailor.types import check_positive_ints


@dataclass(frozen=True)
class _Config:
    good: object = 3
    bad: object = 0


@pytest.mark.parametrize("value", [True, False, 0, -2, 1.0, 2.5, "3", None])
def test_check_positive_ints_refuses_anything_but_an_int_of_at_least_one(value: object) -> None:
    with pytest.raises(ValueError, match=rf"^Conf\.bad must be a positive integer, got {value!r}$"):
        check_positive_ints(_Config(bad=value), ("good", "bad"), where="Conf")


def test_check_positive_ints_passes_valid_ints_and_names_the_field_without_a_prefix() -> None:
    check_positive_ints(_Config(good=1, bad=10**9), ("good", "bad"))
    check_positive_ints(_Config(), ())
    with pytest.raises(ValueError, match=r"^bad must be a positive integer, got -1$"):
        check_positive_ints(_Config(bad=-1), ["good", "bad"])
