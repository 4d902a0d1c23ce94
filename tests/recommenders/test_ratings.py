"""The rating models through scikit-surprise (``item-mean``, ``svd``): hand-computed item
means, SVD learning who likes what on a tiny data set, and the methods reading every
stored rating, an item keyed by its text."""

from __future__ import annotations

import pytest

pytest.importorskip("surprise")

from tailor.methods import build_personalizer
from tailor.recommenders.ratings import SVD, ItemMean
from tailor.store import InMemoryProfileStore
from tailor.tasks import get_task
from tailor.types import HistoryRecord, Profile

RATING = get_task("movielens-ratings")
PROMPT = "What rating from 1 to 5 would this user give the following movie? Answer with a single number. movie: "
RATINGS = [("ann", "alien", 5.0), ("bob", "alien", 3.0), ("ann", "big", 1.0), ("cat", "big", 2.0), ("cat", "heat", 4.0)]


def test_item_mean_is_the_items_mean_shrunk_toward_the_global_mean() -> None:
    plain = ItemMean(shrinkage=0.0)
    plain.fit(RATINGS, (1.0, 5.0))
    assert plain.predict("ann", "alien")[0] == pytest.approx(4.0)
    assert plain.predict("stranger", "big") == (pytest.approx(1.5), False)
    assert plain.predict("ann", "unrated")[0] == pytest.approx(3.0)  # nobody rated it: the global mean, 15 / 5
    shrunk = ItemMean(shrinkage=2.0)
    shrunk.fit(RATINGS, (1.0, 5.0))
    assert shrunk.predict("ann", "alien")[0] == pytest.approx((5 + 3 + 2 * 3.0) / (2 + 2))


def test_svd_learns_who_likes_what_and_is_deterministic() -> None:
    scifi, drama = ["alien", "blade", "gattaca"], ["casablanca", "dumbo", "fargo"]
    ratings = [(f"s{n}", movie, 5.0) for n in range(8) for movie in scifi]
    ratings += [(f"s{n}", movie, 1.0) for n in range(8) for movie in drama]
    ratings += [(f"d{n}", movie, 5.0) for n in range(8) for movie in drama]
    ratings += [(f"d{n}", movie, 1.0) for n in range(8) for movie in scifi]
    ratings += [("new", "alien", 5.0), ("new", "casablanca", 1.0)]
    model = SVD(factors=4, epochs=100, learning_rate=0.02, regularization=0.01)
    model.fit(ratings, (1.0, 5.0))
    liked, known = model.predict("new", "gattaca")
    assert known and liked > model.predict("new", "fargo")[0] + 1.0
    again = SVD(factors=4, epochs=100, learning_rate=0.02, regularization=0.01)
    again.fit(ratings, (1.0, 5.0))
    assert again.predict("new", "gattaca")[0] == pytest.approx(liked)
    assert 1.0 <= model.predict("nobody", "gattaca")[0] <= 5.0 and not model.predict("nobody", "gattaca")[1]


def rated(user: str, *pairs: tuple[str, str]) -> Profile:
    return Profile(user, tuple(HistoryRecord(f"{user}-{i}", {"text": movie, "score": score})
                               for i, (movie, score) in enumerate(pairs)))


@pytest.mark.parametrize("name", ["item-mean", "svd"])
def test_the_methods_fit_on_every_stored_rating(name: str) -> None:
    store = InMemoryProfileStore()
    ann = rated("ann", ("Heat (1995), genres: Action", "5"), ("Big (1988), genres: Comedy", "2"))
    store.add_profiles([ann, rated("bob", ("Heat (1995), genres: Action", "5"), ("Up (2009)", "1"))])
    personalizer = build_personalizer(name, RATING, k=1, count_tokens=lambda text: len(text.split()), store=store)
    heat = personalizer.personalize(RATING, PROMPT + "heat (1995),  genres: action", ann)
    up = personalizer.personalize(RATING, PROMPT + "Up (2009)", ann)
    assert float(heat.answer or 0) > float(up.answer or 0) and heat.granularity == "user"
    assert heat.messages == ()  # no model is asked
    assert personalizer.personalize(RATING, PROMPT + "Up (2009)", Profile("stranger")).granularity == "global"
