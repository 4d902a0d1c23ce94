"""Labels and ratings from the user's profile: priors, kNN votes, mean baselines, decisions."""

from __future__ import annotations

import math

import pytest

from tailor.methods import build_personalizer, parse_method
from tailor.personalizers.labels import (
    PriorPersonalizer,
    combine,
    decide,
    item_label,
    label_distribution,
    normalize,
)
from tailor.store import InMemoryProfileStore
from tailor.tasks import get_task
from tailor.types import HistoryRecord, Profile

RATING = get_task("movielens-ratings")
TAGS = get_task("LaMP-2")
PROMPT = "What rating from 1 to 5 would this user give the following movie? Answer with a single number. movie: "


def count_words(text: str) -> int:
    return len(text.split())


def rated(user: str, *pairs: tuple[str, str]) -> Profile:
    return Profile(user, tuple(HistoryRecord(f"{user}-{i}", {"text": movie, "score": score})
                               for i, (movie, score) in enumerate(pairs)))


def build(name: str, task=RATING, store=None, k: int = 1):  # type: ignore[no-untyped-def]
    return build_personalizer(name, task, k=k, count_tokens=count_words, store=store)


def test_item_labels_are_the_items_outputs() -> None:
    assert item_label(RATING, HistoryRecord("a", {"text": "Heat", "score": "4"})) == "4"
    assert item_label(RATING, HistoryRecord("a", {"text": "Heat", "score": "4.0"})) == "4"
    assert item_label(RATING, HistoryRecord("a", {"text": "Heat", "score": "nine"})) is None
    assert item_label(TAGS, HistoryRecord("a", {"description": "x", "tag": "Comedy"})) == "comedy"
    # LaMP-1's profile items are papers: they carry no label.
    assert item_label(get_task("LaMP-1"), HistoryRecord("a", {"title": "x"})) is None


def test_label_distribution_is_add_one_smoothed() -> None:
    distribution = label_distribution(RATING, ["4", "4", "5"])
    assert math.exp(distribution["4"]) == pytest.approx(3 / 8)
    assert math.exp(distribution["1"]) == pytest.approx(1 / 8)
    assert math.fsum(math.exp(v) for v in distribution.values()) == pytest.approx(1.0)


def test_decisions_are_the_mode_for_labels_and_the_median_for_ratings() -> None:
    # Ratings 1 (0.4), 5 (0.35), 3 (0.25): the mode is 1, the median (and MAE's best answer) 3.
    probabilities = {"1": 0.4, "2": 0.0, "3": 0.25, "4": 0.0, "5": 0.35}
    logs = {k: math.log(v) if v else -math.inf for k, v in probabilities.items()}
    assert decide(RATING, logs) == "3"
    labels = dict.fromkeys(TAGS.labels, -math.inf) | {"comedy": math.log(0.4), "classic": math.log(0.6)}
    assert decide(TAGS, labels) == "classic"
    tie = dict.fromkeys(TAGS.labels, 0.0)
    assert decide(TAGS, tie) == TAGS.labels[0]


def test_combine_is_a_normalized_product() -> None:
    first = normalize({"a": 0.0, "b": 0.0})
    second = {"a": math.log(0.9), "b": math.log(0.1)}
    assert math.exp(combine(first, second)["a"]) == pytest.approx(0.9)


def test_profile_prior_answers_the_users_usual_rating_without_a_model() -> None:
    personalizer = build("profile-prior")
    generous = rated("u1", *[(f"movie {i}", "5") for i in range(8)], ("A", "4"), ("B", "4"))
    decided = personalizer.personalize(RATING, PROMPT + "E", generous)
    assert decided.answer == "5"
    assert decided.messages == ()
    assert decided.granularity == "user"
    # No labelled item: the smoothed prior is uniform, its median the middle of the scale.
    assert personalizer.personalize(RATING, PROMPT + "E", Profile("u2")).answer == "3"
    assert personalizer.personalize(RATING, PROMPT + "E", Profile("u2")).granularity == "global"


def test_knn_votes_with_the_items_retrieved_for_the_input() -> None:
    personalizer = build("knn")  # --k 1, but a vote takes at least 4 voters
    profile = rated("u1", ("space opera stars", "5"), ("space opera wars", "5"), ("space opera trek", "4"),
                    ("romance in paris", "1"), ("romance in rome", "1"), ("romance at sea", "1"),
                    ("romance in london", "2"))
    space = personalizer.personalize(RATING, PROMPT + "space opera galaxy", profile)
    assert space.answer == "5"  # votes 5, 5, 4 and a romance item's: between 4 and 5, the profile holds 5 more
    assert len(space.retrieved) == 4
    romance = personalizer.personalize(RATING, PROMPT + "romance in venice", profile)
    assert romance.answer == "1"
    tags = build("knn", task=TAGS)
    tagged = Profile("u1", tuple(HistoryRecord(f"t{i}", {"description": d, "tag": t}) for i, (d, t) in enumerate(
        [("a ghost haunts a house", "fantasy"), ("ghost story at night", "fantasy"), ("two friends laugh", "comedy")])))
    assert tags.personalize(TAGS, "description: a ghost in the attic", tagged).answer == "fantasy"


def test_mean_baselines_read_the_user_and_the_store() -> None:
    store = InMemoryProfileStore()
    harsh, kind = rated("harsh", ("A", "1"), ("B", "2")), rated("kind", ("A", "5"), ("B", "5"), ("C", "4"))
    store.add_profiles([harsh, kind])
    user_mean, global_mean = build("user-mean", store=store), build("global-mean", store=store)
    assert user_mean.personalize(RATING, PROMPT + "X", harsh).answer == "1.5"
    assert global_mean.personalize(RATING, PROMPT + "X", harsh).answer == "3.4"
    assert global_mean.personalize(RATING, PROMPT + "X", harsh).granularity == "global"
    # A user without ratings gets the global mean.
    assert user_mean.personalize(RATING, PROMPT + "X", Profile("new")).answer == "3.4"


def dated(user: str, *rows: tuple[str, str, str | None]) -> Profile:
    """A profile of (movie, rating, date) rows."""
    return Profile(user, tuple(HistoryRecord(f"{user}-{i}", {"text": movie, "score": score}, date)
                               for i, (movie, score, date) in enumerate(rows)))


def test_item_bias_adds_how_others_rated_the_item_to_the_users_mean() -> None:
    store = InMemoryProfileStore()
    alice = dated("alice", ("Heat (1995), genres: Action", "3", "1998-01-01"),
                  ("Up (2009), genres: Comedy", "4", "1998-01-10"))
    bob = dated("bob", ("Heat (1995), genres: Action", "5", "1997-06-01"), ("Big (1988), genres: Comedy", "3", "1997-06-02"))
    carol = dated("carol", ("Heat (1995), genres: Action", "4", "1997-07-01"), ("Big (1988), genres: Comedy", "1", "1997-07-02"))
    store.add_profiles([alice, bob, carol])
    personalizer = build("item-bias", store=store)
    # mu: the 5 ratings dated before alice's latest day (1998-01-10): 3, 5, 3, 4, 1 -> 3.2. Heat's
    # others: bob 5, carol 4 -> bias (1.8 + 0.8) / 2 = 1.3. Alice's mean 3.5 -> 4.8.
    decided = personalizer.personalize(RATING, PROMPT + "Heat (1995), genres: Action", alice)
    assert decided.answer == "4.8" and decided.granularity == "user"
    # Big: bob 3, carol 1 -> bias (-0.2 - 2.2) / 2 = -1.2 -> 2.3; an item nobody rated: the user's mean.
    assert personalizer.personalize(RATING, PROMPT + "Big (1988), genres: Comedy", alice).answer == "2.3"
    assert personalizer.personalize(RATING, PROMPT + "Jaws (1975), genres: Thriller", alice).answer == "3.5"
    # Same item whatever the spacing and case of its text.
    assert personalizer.personalize(RATING, PROMPT + "heat (1995),  genres: action", alice).answer == "4.8"


def test_item_bias_reads_no_rating_from_the_day_of_the_users_latest_item_on() -> None:
    store = InMemoryProfileStore()
    early = dated("early", ("Heat (1995), genres: Action", "4", "1997-01-02"), ("Big (1988), genres: Comedy", "4", "1997-01-05"))
    later = dated("later", ("Heat (1995), genres: Action", "1", "1997-01-05"), ("Heat (1995), genres: Action", "1", "1997-03-01"))
    other = dated("other", ("Heat (1995), genres: Action", "5", "1997-01-01"))
    store.add_profiles([early, later, other])
    # For "early" (latest item 1997-01-05) only other's 5 of 1997-01-01 is earlier: later's two 1s
    # (that day and after) are not read. mu = (5 + 4) / 2 = 4.5; bias +0.5; early's mean 4 -> 4.5.
    answer = build("item-bias", store=store).personalize(RATING, PROMPT + "Heat (1995), genres: Action", early).answer
    assert answer == "4.5"


def test_item_bias_is_clipped_to_the_scale_and_needs_a_rating_task() -> None:
    store = InMemoryProfileStore()
    fan = rated("fan", ("A", "5"), ("B", "5"))
    crowd = [rated(f"c{i}", ("A", "5"), ("C", "1"), ("D", "1")) for i in range(3)]
    store.add_profiles([fan, *crowd])
    # Undated: every rating counts. mu = (10 + 3 * 7) / 11; A's bias = 5 - mu > 0; 5 + bias clips to 5.
    assert build("item-bias", store=store).personalize(RATING, PROMPT + "A", fan).answer == "5"
    with pytest.raises(ValueError, match="needs a rating task"):
        build("item-bias", task=TAGS, store=InMemoryProfileStore())


def test_prior_methods_keep_the_inner_prompt_and_add_the_users_prior() -> None:
    personalizer = build("bm25+prior")
    assert isinstance(personalizer, PriorPersonalizer)
    assert personalizer.calibrated
    profile = rated("u1", ("space opera", "5"), ("romance", "2"))
    decided = personalizer.personalize(RATING, PROMPT + "space opera again", profile)
    assert decided.retrieved == ("u1-0",)
    assert "space opera" in decided.messages[-1]["content"]
    assert decided.label_prior is not None and decided.label_prior["5"] > decided.label_prior["1"]
    assert decided.answer is None


def test_label_methods_are_checked_against_the_task() -> None:
    with pytest.raises(ValueError, match="label set or ratings"):
        build("profile-prior", task=get_task("LaMP-4"))
    with pytest.raises(ValueError, match="needs a rating task"):
        build("user-mean", task=TAGS, store=InMemoryProfileStore())
    with pytest.raises(ValueError, match="takes no layout"):
        parse_method("knn:dialogue")
    assert str(parse_method("bm25+prior:dialogue")) == "bm25+prior:dialogue"
