import numpy as np
import pytest

from tailor.metrics import classification_scores
from tailor.tasks import get_task

MOVIE_TAGS = get_task("LaMP-2M").labels


def test_accuracy_and_macro_f1_by_hand_including_a_label_never_seen() -> None:
    labels = ["a", "b", "c", "d"]
    golds = ["a", "a", "b", "b", "c"]
    predictions = ["a", "b", "b", " c ", "x"]  # mapped: 0, 1, 1, 2, -1 (unknown)
    metrics = classification_scores(predictions, golds, labels).aggregate()
    # correct at positions 0 and 2 -> accuracy 2/5
    assert metrics["accuracy"] == pytest.approx(2 / 5)
    # a: tp=1, predicted 1, gold 2 -> P=1, R=1/2, F=2*(1/2)/(3/2)=2/3
    # b: tp=1, predicted 2, gold 2 -> P=1/2, R=1/2, F=1/2
    # c: tp=0 (c predicted for a b; the gold c got an unknown label) -> F=0
    # d: neither predicted nor gold -> F=0, still averaged in
    # macro-F1 = (2/3 + 1/2 + 0 + 0) / 4 = 7/24
    assert metrics["f1"] == pytest.approx(7 / 24)


def test_stripping_and_case_sensitivity() -> None:
    golds = ["comedy", "comedy", " action", "comedy", "comedy"]
    predictions = [" comedy ", "Comedy", "action\n", "", "funny"]
    scores = classification_scores(predictions, golds, MOVIE_TAGS)
    comedy, action = MOVIE_TAGS.index("comedy"), MOVIE_TAGS.index("action")
    assert scores.columns["prediction"].tolist() == [comedy, -1, action, -1, -1]
    assert scores.columns["gold"].tolist() == [comedy, comedy, action, comedy, comedy]
    metrics = scores.aggregate()
    # padded " comedy " and "action\n" match; "Comedy", "" and "funny" are wrong -> 2/5
    assert metrics["accuracy"] == pytest.approx(2 / 5)
    # comedy: tp=1, predicted 1, gold 4 -> F=2*1/(1+4)=2/5; action: tp=1, predicted 1, gold 1 -> F=1
    # the other 13 tags score 0 -> macro-F1 = (2/5 + 1) / 15 = 7/75
    assert metrics["f1"] == pytest.approx(7 / 75)


def test_all_correct_on_two_labels() -> None:
    metrics = classification_scores(["[1]", "[2]", "[2]"], ["[1]", "[2]", "[2]"], ["[1]", "[2]"]).aggregate()
    assert metrics == {"accuracy": 1.0, "f1": 1.0}


def test_gold_outside_the_label_set_names_the_example() -> None:
    with pytest.raises(ValueError, match=r"example 1 \(id 'u7-q3'\).*'horror'"):
        classification_scores(["comedy", "comedy"], ["comedy", "horror"], MOVIE_TAGS, ids=["u7-q2", "u7-q3"])
    with pytest.raises(ValueError, match="example 0"):
        classification_scores(["comedy"], ["Comedy"], MOVIE_TAGS)


def test_length_mismatch_and_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 golds"):
        classification_scores(["a", "b"], ["a"], ["a", "b"])
    with pytest.raises(ValueError, match="labels must not be empty"):
        classification_scores(["a"], ["a"], [])
    with pytest.raises(ValueError, match="unique"):
        classification_scores(["a"], ["a"], ["a", "a"])
    with pytest.raises(TypeError, match="prediction of example 0 is NoneType"):
        classification_scores([None], ["a"], ["a"])  # type: ignore[list-item]


def test_empty_inputs_score_but_cannot_aggregate() -> None:
    scores = classification_scores([], [], ["a", "b"])
    assert len(scores) == 0
    with pytest.raises(ValueError, match="no examples"):
        scores.aggregate()


def test_macro_f1_matches_sklearn_on_random_data() -> None:
    metrics_module = pytest.importorskip("sklearn.metrics")
    generator = np.random.default_rng(7)
    labels = [f"label{k}" for k in range(6)]
    for _ in range(20):
        n = int(generator.integers(1, 60))
        golds = [labels[k] for k in generator.integers(0, 5, size=n)]  # label5 never gold
        # -1 stands for an unknown label in the predictions
        predicted = generator.integers(-1, 6, size=n)
        predictions = ["???" if k < 0 else labels[k] for k in predicted]
        metrics = classification_scores(predictions, golds, labels).aggregate()
        gold_indices = [labels.index(g) for g in golds]
        expected_f1 = metrics_module.f1_score(
            gold_indices, predicted.tolist(), labels=list(range(6)), average="macro", zero_division=0
        )
        assert metrics["f1"] == pytest.approx(expected_f1, abs=1e-12)
        assert metrics["accuracy"] == pytest.approx(metrics_module.accuracy_score(gold_indices, predicted.tolist()))
