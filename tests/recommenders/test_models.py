"""Each classic recommender on a tiny data set: fitted on every history, it ranks a
sci-fi fan's next sci-fi film above the rest, deterministically, and scores a user the
fit never saw from their history."""

from __future__ import annotations

import pytest

pytest.importorskip("implicit")

from tailor.recommenders import ALS, BPR, Interactions, ItemKNN, Popularity

SCIFI = ["a", "b", "e", "g"]
OTHER = ["c", "d", "f", "h"]
HISTORIES = {f"s{n}": SCIFI[:3] if n % 2 else SCIFI[1:] for n in range(12)} | {
    f"o{n}": OTHER[:3] if n % 2 else OTHER[1:] for n in range(12)}


def _models() -> list:
    return [ItemKNN(neighbours=10), ItemKNN(neighbours=10, similarity="cosine"),
            ALS(factors=4, iterations=10), BPR(factors=4, iterations=200, learning_rate=0.05)]


@pytest.mark.parametrize("model", _models(), ids=lambda m: f"{m.name}-{getattr(m, 'similarity', '')}")
def test_a_fan_gets_more_of_what_they_chose(model) -> None:
    interactions = Interactions.from_histories(HISTORIES)
    model.fit(interactions)
    columns = [interactions.item_index[item] for item in ("g", "h")]
    scifi, other = model.scores("s1", SCIFI[:3], columns)
    assert scifi > other
    again = type(model)(**{k: v for k, v in vars(model).items() if k in type(model).__dataclass_fields__})
    again.fit(interactions)
    assert list(again.scores("s1", SCIFI[:3], columns)) == pytest.approx(list(model.scores("s1", SCIFI[:3], columns)))


@pytest.mark.parametrize("model", _models(), ids=lambda m: f"{m.name}-{getattr(m, 'similarity', '')}")
def test_a_user_the_fit_never_saw_is_scored_from_their_history(model) -> None:
    interactions = Interactions.from_histories(HISTORIES)
    model.fit(interactions)
    columns = [interactions.item_index[item] for item in ("a", "d")]
    scifi, other = model.scores("newcomer", ["b", "e", "g"], columns)
    assert scifi > other


def test_popularity_counts_the_users_who_chose_an_item() -> None:
    interactions = Interactions.from_histories({"u1": ["a", "b"], "u2": ["b"], "u3": ["b", "c", "b"]})
    model = Popularity()
    model.fit(interactions)
    assert list(model.scores("anyone", [], [interactions.item_index[i] for i in "abc"])) == [1, 3, 1]
