import pytest

from tailor.metrics import score_task


def test_lamp_1_citation_choice() -> None:
    scores = score_task("LaMP_1", ["[1]", " [2] ", "1"], ["[1]", "[1]", "[2]"])
    # correct only at 0 -> accuracy 1/3; [1]: tp 1, predicted 1, gold 2 -> 2/3; [2]: tp 0 -> 0
    metrics = scores.aggregate()
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    assert metrics["f1"] == pytest.approx(1 / 3)


def test_lamp_2_variants_use_their_label_sets() -> None:
    assert score_task("LaMP-2", ["comedy"], ["comedy"]).n_labels == 15
    assert score_task("LaMP-2M", ["comedy"], ["comedy"]).aggregate()["accuracy"] == 1.0
    assert score_task("LaMP-2N", ["style & beauty"], ["style & beauty"]).aggregate()["accuracy"] == 1.0
    with pytest.raises(ValueError, match="not one of the labels"):
        score_task("LaMP-2N", ["comedy"], ["comedy"])  # a movie tag is no news category


def test_lamp_3_is_rating() -> None:
    metrics = score_task("lamp-3", ["4", "great"], ["5", "2"]).aggregate()
    # errors 1 and |5-2|=3 -> MAE 2, RMSE sqrt((1+9)/2) = sqrt(5)
    assert metrics == pytest.approx({"mae": 2.0, "rmse": 5**0.5})


@pytest.mark.parametrize("task", ["LaMP-4", "LaMP_5", "LaMP-6", "lamp-7"])
def test_generation_tasks(task: str) -> None:
    scores = score_task(task, ["the cat sat"], ["the cat sat on the mat"])
    assert scores.kind == "generation"
    assert scores.aggregate()["rouge-1"] == pytest.approx(2 / 3)


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="LaMP-7"):
        score_task("LaMP-9", [], [])


def test_ids_name_the_failing_example() -> None:
    with pytest.raises(ValueError, match="id '310'"):
        score_task("LaMP-1", ["[1]"], ["[3]"], ids=["310"])
