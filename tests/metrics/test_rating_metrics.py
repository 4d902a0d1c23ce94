import math

import pytest

from tailor.metrics import rating_scores


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("4 stars", "2", 5.0),  # |1-2|=1 < |5-2|=3 -> 5 is farther
        ("4 stars", "4", 1.0),  # |1-4|=3 > |5-4|=1 -> 1 is farther
        ("five", "3", 5.0),  # tie |1-3| = |5-3| -> 5
        ("", "1", 5.0),  # empty prediction is unparsable
        ("4.0", "5", 4.0),
        ("7", "5", 7.0),  # not clipped
        (" 2 ", "1", 2.0),
        ("nan", "2", 5.0),  # non-finite counts as unparsable
        ("-inf", "4", 1.0),
    ],
)
def test_prediction_parsing(prediction: str, gold: str, expected: float) -> None:
    scores = rating_scores([prediction], [gold])
    assert scores.columns["prediction"].tolist() == [expected]


def test_mae_and_rmse_by_hand() -> None:
    predictions = ["4 stars", "4 stars", "five", "4.0", "7", " 2 ", ""]
    golds = ["2", "4", "3", "5", "5", "1", " 1 "]
    # parsed:  5, 1, 5, 4, 7, 2, 5
    # errors:  3, 3, 2, 1, 2, 1, 4  -> sum 16
    # squares: 9, 9, 4, 1, 4, 1, 16 -> sum 44
    metrics = rating_scores(predictions, golds).aggregate()
    assert metrics["mae"] == pytest.approx(16 / 7)
    assert metrics["rmse"] == pytest.approx(math.sqrt(44 / 7))


def test_custom_bounds() -> None:
    # gold 2 on [0, 10]: |0-2|=2 < |10-2|=8 -> 10, error 8; gold 9: |0-9|=9 > 1 -> 0, error 9
    metrics = rating_scores(["?", "?"], ["2", "9"], low=0.0, high=10.0).aggregate()
    assert metrics["mae"] == pytest.approx((8 + 9) / 2)
    assert metrics["rmse"] == pytest.approx(math.sqrt((64 + 81) / 2))


def test_invalid_golds_and_bounds_raise() -> None:
    with pytest.raises(ValueError, match=r"example 1 \(id 'q2'\).*'four'"):
        rating_scores(["1", "2"], ["3", "four"], ids=["q1", "q2"])
    with pytest.raises(ValueError, match="not a finite number"):
        rating_scores(["1"], ["nan"])
    with pytest.raises(ValueError, match="low < high"):
        rating_scores(["1"], ["1"], low=5.0, high=1.0)
    with pytest.raises(ValueError, match="1 predictions but 2 golds"):
        rating_scores(["1"], ["1", "2"])
