"""Simulated users' rewards on hand-made texts: each dimension places a reply where a reader
would, and a user's reward ranks replies by their own poles."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("textstat")
pytest.importorskip("vaderSentiment")
pytest.importorskip("emoji")

from tailor.alignment.dimensions import DIMENSIONS, dimension, quality, reading_ease
from tailor.alignment.users import SimulatedUser, population, read_users, write_users

PLAIN = "The sun is hot. It gives us light. We need it to live."
EXPERT = ("Photosynthetic organisms convert electromagnetic radiation into chemical potential energy through "
          "chlorophyll-mediated photophosphorylation.")
SHORT = "Yes, it rained."
LONG = " ".join(["The storm moved east across the valley and the river rose slowly through the night."] * 5)
FRIENDLY = "Oh you will love this! It is such a wonderful, happy idea for you 😀"
FORMAL = "The committee reviewed the document. The findings are listed in section four."
LIST = "- first point\n- second point\n- third point"
PROSE = "There are a few points to make, and each follows from the one before it."


@pytest.mark.parametrize(("name", "low", "high"), [
    ("expertise", PLAIN, EXPERT), ("informativeness", SHORT, LONG), ("style", FORMAL, FRIENDLY),
    ("format", PROSE, LIST)])
def test_each_dimension_places_hand_made_texts_at_its_poles(name: str, low: str, high: str) -> None:
    measure = dimension(name).measure
    assert -1.0 <= measure(low) < 0 < measure(high) <= 1.0
    assert dimension(name).score(low, dimension(name).poles[0]) > 0 > dimension(name).score(high, dimension(name).poles[0])


def test_reading_ease_is_flesch_s_formula() -> None:
    # 2 sentences, 6 words, 6 syllables: 206.835 - 1.015 * 3 - 84.6 * 1
    assert reading_ease("The cat sat. The dog ran.") == pytest.approx(206.835 - 1.015 * 3 - 84.6, abs=1e-6)
    assert reading_ease(PLAIN) > 60 > reading_ease(EXPERT)


def test_informativeness_is_the_documented_curve() -> None:
    assert dimension("informativeness").measure(" ".join(["word"] * 29)) == pytest.approx(0.0)
    assert dimension("informativeness").measure("") < -0.99


def test_list_items_count_in_any_common_marker() -> None:
    for text in ("* a\n* b", "1. a\n2. b", "• a\n• b"):
        assert dimension("format").measure(text) > 0.9
    assert dimension("format").measure("no list here") == -1.0


def test_quality_punishes_repetition_and_emptiness() -> None:
    assert quality(PROSE) == 0.0
    assert quality("the cat the cat the cat the cat the cat the cat") < -0.8
    assert quality("") == -1.0


def test_a_user_prefers_the_reply_at_their_own_poles() -> None:
    user = SimulatedUser("u", {"informativeness": "concise", "format": "list"},
                         {"informativeness": 0.5, "format": 0.5}, quality_weight=0.0)
    other = SimulatedUser("v", {"informativeness": "detailed", "format": "prose"},
                          {"informativeness": 0.5, "format": 0.5}, quality_weight=0.0)
    assert user.reward(LIST) > user.reward(LONG)
    assert other.reward(LONG) > other.reward(LIST)
    assert user.reward(LIST) == pytest.approx(-other.reward(LIST))


def test_a_user_is_checked() -> None:
    with pytest.raises(ValueError, match="poles plain and expert"):
        SimulatedUser("u", {"expertise": "medium"}, {"expertise": 1.0})
    with pytest.raises(ValueError, match="same dimensions"):
        SimulatedUser("u", {"expertise": "plain"}, {"style": 1.0})
    with pytest.raises(ValueError, match="unknown preference dimension"):
        SimulatedUser("u", {"tone": "x"}, {"tone": 1.0})


def test_sixteen_users_cover_every_combination_and_a_seed_reproduces_them(tmp_path: Path) -> None:
    users = population(16, seed=3)
    assert len({u.profile for u in users}) == 2 ** len(DIMENSIONS) == 16
    assert all(sum(u.weights.values()) == pytest.approx(1.0) for u in users)
    assert [u.to_dict() for u in population(16, seed=3)] == [u.to_dict() for u in users]
    assert [u.weights for u in population(16, seed=4)] != [u.weights for u in users]
    write_users(users, tmp_path, seed=3)
    assert [u.to_dict() for u in read_users(tmp_path)] == [u.to_dict() for u in users]
    assert "concise" in users[0].stated_preferences() and users[0].attributes()["preference_format"] == "prose"
