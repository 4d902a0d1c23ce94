"""A task scores itself with its declared metrics, by the official LaMP evaluator's rules."""

from __future__ import annotations

import pytest

from tailor.metrics import METRICS
from tailor.tasks import TASKS, get_task


def test_lamp_1_citation_choice() -> None:
    scores = get_task("LaMP_1").score(["[1]", " [2] ", "1"], ["[1]", "[1]", "[2]"])
    # correct only at 0 -> accuracy 1/3; [1]: tp 1, predicted 1, gold 2 -> 2/3; [2]: tp 0 -> 0
    metrics = scores.aggregate()
    assert list(metrics) == ["accuracy", "f1"]
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    assert metrics["f1"] == pytest.approx(1 / 3)


def test_lamp_2_variants_use_their_label_sets() -> None:
    assert get_task("LaMP-2").score(["comedy"], ["comedy"]).n_labels == 15
    assert get_task("LaMP-2M").score(["comedy"], ["comedy"]).aggregate()["accuracy"] == 1.0
    assert get_task("LaMP-2N").score(["style & beauty"], ["style & beauty"]).aggregate()["accuracy"] == 1.0
    with pytest.raises(ValueError, match="not one of the labels"):
        get_task("LaMP-2N").score(["comedy"], ["comedy"])  # a movie tag is no news category


@pytest.mark.parametrize("name", ["lamp-3", "movielens-ratings"])
def test_ratings_score_mae_and_rmse(name: str) -> None:
    metrics = get_task(name).score(["4", "great"], ["5", "2"]).aggregate()
    # errors 1 and |5-2|=3 (an answer that is no number counts as the farther end) -> MAE 2, RMSE sqrt(5)
    assert metrics == pytest.approx({"mae": 2.0, "rmse": 5**0.5})
    assert list(metrics) == ["mae", "rmse"]


@pytest.mark.parametrize("name", ["LaMP-4", "LaMP_5", "LaMP-6", "lamp-7", "news-headlines", "commits", "tweets",
                                  "debates"])
def test_generation_tasks(name: str) -> None:
    scores = get_task(name).score(["the cat sat"], ["the cat sat on the mat"])
    assert scores.kind == "generation"
    assert list(scores.aggregate()) == ["rouge-1", "rouge-L", "bleu"]
    assert scores.aggregate()["rouge-1"] == pytest.approx(2 / 3)


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="LaMP-7"):
        get_task("LaMP-9")


def test_ids_name_the_failing_example() -> None:
    with pytest.raises(ValueError, match="id '310'"):
        get_task("LaMP-1").score(["[1]"], ["[3]"], ids=["310"])


def test_every_task_declares_registered_metrics_and_knows_their_direction() -> None:
    for name in TASKS.names():
        task = get_task(name)
        assert task.scoring_metrics, name
        for metric in task.scoring_metrics:
            assert metric is METRICS.load(metric.name)
            assert task.metric(metric.name) is metric
    assert not get_task("LaMP-3").metric("mae").higher_is_better
    assert get_task("LaMP-4").metric("rouge-1").higher_is_better
    with pytest.raises(ValueError, match="no metric 'mae'; its metrics: rouge-1, rouge-L, bleu"):
        get_task("LaMP-4").metric("mae")
