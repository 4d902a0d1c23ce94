import numpy as np
import pytest

from tailor.metrics import (
    PerExampleScores,
    bootstrap_ci,
    classification_scores,
    generation_scores,
    paired_comparison,
    rating_scores,
)


def random_classification(seed: int, n: int = 200) -> PerExampleScores:
    generator = np.random.default_rng(seed)
    labels = ["a", "b", "c"]
    golds = [labels[k] for k in generator.integers(0, 3, size=n)]
    predictions = [gold if generator.random() < 0.6 else "a" for gold in golds]
    return classification_scores(predictions, golds, labels)


def random_rating(seed: int, n: int = 200) -> PerExampleScores:
    generator = np.random.default_rng(seed)
    golds = [str(k) for k in generator.integers(1, 6, size=n)]
    predictions = [str(k) for k in generator.integers(1, 6, size=n)]
    return rating_scores(predictions, golds)


def test_interval_contains_the_point_estimate() -> None:
    for scores in (random_classification(1), random_rating(2)):
        point = scores.aggregate()
        intervals = bootstrap_ci(scores, n_resamples=500, seed=3)
        assert set(intervals) == set(scores.names())
        for name, (low, high) in intervals.items():
            assert low <= point[name] <= high
            assert low < high


def test_deterministic_for_a_seed() -> None:
    scores = random_classification(4)
    assert bootstrap_ci(scores, n_resamples=200, seed=11) == bootstrap_ci(scores, n_resamples=200, seed=11)
    assert bootstrap_ci(scores, n_resamples=200, seed=11) != bootstrap_ci(scores, n_resamples=200, seed=12)


def test_zero_width_when_all_examples_are_identical() -> None:
    generation = generation_scores(["the cat sat"] * 30, ["the cat sat on the mat"] * 30)
    for name, (low, high) in bootstrap_ci(generation, n_resamples=100).items():
        assert low == high == generation.aggregate()[name]
    rating = rating_scores(["4"] * 10, ["2"] * 10)
    assert bootstrap_ci(rating, n_resamples=100) == {"mae": (2.0, 2.0), "rmse": (2.0, 2.0)}


def test_higher_level_gives_a_wider_interval() -> None:
    scores = random_rating(5)
    narrow = bootstrap_ci(scores, n_resamples=400, level=0.5)["mae"]
    wide = bootstrap_ci(scores, n_resamples=400, level=0.99)["mae"]
    assert wide[0] < narrow[0] and narrow[1] < wide[1]


def test_bootstrap_arguments_are_checked() -> None:
    scores = random_rating(6, n=5)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(scores, level=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(scores, n_resamples=0)
    with pytest.raises(ValueError, match="no examples"):
        bootstrap_ci(rating_scores([], []))


def test_identical_inputs_give_zero_delta() -> None:
    scores = random_classification(7)
    comparison = paired_comparison(scores, scores, n_resamples=200)
    for name in ("accuracy", "f1"):
        assert comparison[name] == {"delta": 0.0, "low": 0.0, "high": 0.0, "p_better": 0.0}


def test_a_strictly_better_method_always_wins() -> None:
    golds = ["a", "b"] * 20
    baseline = classification_scores(["b", "a"] * 20, golds, ["a", "b"])  # all wrong
    method = classification_scores(golds, golds, ["a", "b"])  # all right
    comparison = paired_comparison(baseline, method, n_resamples=300, seed=1)
    assert comparison["accuracy"]["delta"] == 1.0
    assert comparison["accuracy"]["p_better"] == 1.0
    assert comparison["f1"]["p_better"] == 1.0
    assert comparison["accuracy"]["low"] == comparison["accuracy"]["high"] == 1.0


def test_lower_is_better_for_rating_errors() -> None:
    golds = ["1", "2", "3", "4", "5"] * 8
    baseline = rating_scores(["3"] * 40, golds)  # errors 2 1 0 1 2
    one_up = {"1": "2", "2": "3", "3": "4", "4": "5", "5": "5"}
    method = rating_scores([one_up[g] for g in golds], golds)  # errors 1 1 1 1 0
    comparison = paired_comparison(baseline, method, n_resamples=300)
    # MAE: baseline 6/5, method 4/5 -> delta -2/5, and lower MAE is the better one
    assert comparison["mae"]["delta"] == pytest.approx(-2 / 5)
    assert comparison["mae"]["p_better"] > 0.95
    assert comparison["mae"]["high"] < 0
    # swapping the roles flips the verdict
    assert paired_comparison(method, baseline, n_resamples=300)["mae"]["p_better"] < 0.05


def test_same_indices_are_applied_to_both() -> None:
    # method beats baseline by exactly 0.1 on every example, so every resample's delta is 0.1
    baseline = PerExampleScores("generation", {"rouge-1": np.linspace(0, 0.8, 50), "rouge-L": np.zeros(50)})
    method = PerExampleScores("generation", {"rouge-1": np.linspace(0.1, 0.9, 50), "rouge-L": np.zeros(50)})
    comparison = paired_comparison(baseline, method, n_resamples=200)["rouge-1"]
    assert comparison["p_better"] == 1.0
    assert comparison["low"] == pytest.approx(0.1) and comparison["high"] == pytest.approx(0.1)


def test_paired_comparison_needs_the_same_examples() -> None:
    with pytest.raises(ValueError, match="same examples"):
        paired_comparison(random_rating(1, n=10), random_rating(1, n=11))
    with pytest.raises(ValueError, match="different golds"):
        paired_comparison(random_rating(1, n=10), random_rating(2, n=10))
    with pytest.raises(ValueError, match="same metrics"):
        paired_comparison(random_rating(1, n=3), generation_scores(["a"] * 3, ["a"] * 3))
