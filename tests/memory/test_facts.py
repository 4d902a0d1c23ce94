"""Reading facts out of what a model writes, however it bends the format."""

from __future__ import annotations

import pytest

from tailor.memory.facts import Fact, normalize_key, parse_confidence, parse_facts


@pytest.mark.parametrize(("answer", "expected"), [
    ("FACT: user.city = Lisbon | CONFIDENCE: 0.9", [Fact("user.city", "=", "Lisbon", 0.9)]),
    ("- FACT: user.city=Lisbon |CONFIDENCE:0.9", [Fact("user.city", "=", "Lisbon", 0.9)]),
    ("1. **FACT:** City = Lisbon | **CONFIDENCE:** 90%", [Fact("user.city", "=", "Lisbon", 0.9)]),
    ("FACT: user.likes += jazz | CONFIDENCE: high", [Fact("user.likes", "+=", "jazz", 0.9)]),
    ("fact: user.home-town = \"Porto\". | confidence: .75", [Fact("user.home_town", "=", "Porto", 0.75)]),
    ("FACT: user.job = nurse", [Fact("user.job", "=", "nurse", 0.5)]),
    ("FACT: is training for a marathon | CONFIDENCE: 0.8", [Fact(None, "", "is training for a marathon", 0.8)]),
    ("FACT: I live in = a flat | CONFIDENCE: 0.7", [Fact("user.i_live_in", "=", "a flat", 0.7)]),
    ("FACT: where? = here | CONFIDENCE: 0.7", [Fact(None, "", "where? = here", 0.7)]),
    ("FACT: user.age = 31 | CONFIDENCE: 7", [Fact("user.age", "=", "31", 0.07)]),
    ("FACT: user.a = x | CONFIDENCE: 0.9 FACT: user.b = y | CONFIDENCE: 0.4",
     [Fact("user.a", "=", "x", 0.9), Fact("user.b", "=", "y", 0.4)]),
    ("Sure! Here are the facts:\nFACT: user.pet = cat | CONFIDENCE: 1.0\nThat's all.", [Fact("user.pet", "=", "cat", 1.0)]),
    ("FACT: user.city = Lisbon | CONFIDENCE: 0.9\nFACT: user.city =  lisbon | CONFIDENCE: 0.8",
     [Fact("user.city", "=", "Lisbon", 0.9)]),
])
def test_facts_are_read_from_many_shapes(answer: str, expected: list[Fact]) -> None:
    assert parse_facts(answer) == expected


@pytest.mark.parametrize("answer", [
    "NONE",
    "",
    "FACT: NONE",
    "FACT: | CONFIDENCE: 0.9",
    "FACT: user.<attribute> = <value> | CONFIDENCE: <0.0 to 1.0>",  # a model parroting the template
    "FACT: user.city = | CONFIDENCE: 0.9",
    "FACT: user.city = " + "x" * 400,
    "The user lives in Lisbon.",  # no FACT marker: not a fact
])
def test_nothing_is_made_up_from_junk(answer: str) -> None:
    assert parse_facts(answer) == []


def test_facts_are_capped_per_message() -> None:
    answer = "\n".join(f"FACT: user.k{i} = v{i} | CONFIDENCE: 0.9" for i in range(40))
    assert len(parse_facts(answer)) == 16


@pytest.mark.parametrize(("raw", "value"), [("0.9", 0.9), ("90%", 0.9), ("1", 1.0), ("-3", 0.0), ("150", 1.0),
                                            ("low", 0.3), ("nan", None), ("lots", None), ("", None)])
def test_confidence(raw: str, value: float | None) -> None:
    assert parse_confidence(raw) == value


def test_keys_are_normalized() -> None:
    assert normalize_key("City") == "user.city"
    assert normalize_key("user.Favourite Food") == "user.favourite_food"
    assert normalize_key("I live in") == "user.i_live_in"
    assert normalize_key("where? ") is None
    assert normalize_key("x" * 80) is None


def test_a_fact_reads_as_one_line() -> None:
    assert Fact("user.city", "=", "Lisbon", 0.9).text == "user.city = Lisbon"
    assert Fact(None, "", "runs daily", 0.9).text == "runs daily"
    assert Fact("user.city", "=", "New  York!", 0.9).normalized == Fact("user.city", "=", "new york", 0.1).normalized
