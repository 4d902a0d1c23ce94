"""Facts about a user, as the LLM writes them and as the memory keeps them.

The extraction prompt asks for one fact per line::

    FACT: user.city = Lisbon | CONFIDENCE: 0.9
    FACT: user.likes += jazz | CONFIDENCE: 0.8

``subject.attribute = value`` states a fact that holds one value at a time (a city, a
job): a later fact with the same key supersedes it. ``+=`` adds one of many values (likes,
languages) and never supersedes. A fact without a key (``FACT: is training for a
marathon``) is kept as free text. The model can only *add* facts; whether one replaces
another is decided here, in code, by comparing normalized keys, so a confused model
cannot delete what the user said.

The parser is lenient about what small models do to the format (bullets, numbering,
markdown bold, ``90%`` or ``high`` as a confidence, several facts on one line) and drops
anything it cannot read, the template's own placeholders included.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

Operator = Literal["=", "+=", ""]

EXTRACTION_INSTRUCTION = (
    "You extract facts about the user from the user's message. Write one fact per line, exactly as\n"
    "FACT: user.<attribute> = <value> | CONFIDENCE: <0.0 to 1.0>\n"
    "Use `=` for an attribute with one value at a time (name, city, job, age) and `+=` for one of many "
    "values (likes, dislikes, hobbies, languages, allergies). Only write facts the user states about "
    "themselves. If there are none, write NONE."
)

MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 300
MAX_FACTS_PER_MESSAGE = 16
DEFAULT_CONFIDENCE = 0.5

_FACT_MARKER = re.compile(r"(?i)\bfact\s*\**\s*:\s*\**")
_CONFIDENCE = re.compile(r"(?i)\|?\s*\**\s*confidence\s*\**\s*[:=]?\s*\**\s*([^\s|*]*)\s*\**\s*$")
_KEY = re.compile(r"^[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*$")
_WORDS = re.compile(r"\w+")
_CONFIDENCE_WORDS = {"very high": 0.95, "high": 0.9, "medium": 0.6, "moderate": 0.6, "low": 0.3}
# The template's own words: a model that parrots the format must not create facts.
_PLACEHOLDERS = {"value", "<value>", "attribute", "<attribute>", "user.<attribute>", "user.attribute",
                 "subject.attribute", "none", "n/a", "unknown", ""}


@dataclass(frozen=True)
class Fact:
    """One fact about the user: ``key`` (``"user.city"``, or ``None`` for free text),
    ``operator`` (``"="`` one value, ``"+="`` one of many, ``""`` free text), ``value``
    and the model's ``confidence`` in it (0 to 1)."""

    key: str | None
    operator: Operator
    value: str
    confidence: float

    @property
    def text(self) -> str:
        """The fact as one line: ``user.city = Lisbon``, or the free text."""
        return f"{self.key} {self.operator} {self.value}" if self.key else self.value

    @property
    def normalized(self) -> str:
        """What two facts share when they say the same thing: the key and the value's words."""
        value = normalize_text(self.value)
        return f"{self.key}{self.operator}{value}" if self.key else value


def normalize_text(text: str) -> str:
    """Case-folded words joined by single spaces: punctuation and spacing never tell facts apart."""
    return " ".join(_WORDS.findall(text.casefold()))


def normalize_key(raw: str) -> str | None:
    """``"City"`` -> ``"user.city"``, ``"user.home-town"`` -> ``"user.home_town"``;
    ``None`` when the text is no key at all (``"I live in"``)."""
    key = raw.strip().strip("`'\"*").casefold()
    key = re.sub(r"[\s\-]+", "_", key)
    if not key or len(key) > MAX_KEY_CHARS or not _KEY.match(key):
        return None
    if "." not in key:
        key = f"user.{key}"
    return key


def parse_confidence(raw: str) -> float | None:
    """``0.9``, ``.9``, ``90%`` (numbers above 1 read as percentages), or ``high``/``medium``/``low``."""
    text = raw.strip().strip("*").strip().casefold().rstrip(".")
    if not text:
        return None
    if text in _CONFIDENCE_WORDS:
        return _CONFIDENCE_WORDS[text]
    percent = text.endswith("%")
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        return None
    if math.isnan(value):
        return None
    if percent or 1.0 < value <= 100.0:
        value /= 100.0
    return min(max(value, 0.0), 1.0)


def parse_fact(body: str) -> Fact | None:
    """One fact from the text after ``FACT:`` (confidence included), or ``None``."""
    confidence = DEFAULT_CONFIDENCE
    match = _CONFIDENCE.search(body)
    if match is not None:
        parsed = parse_confidence(match.group(1))
        if parsed is None and match.group(1):
            # "confidence: high" with a word we do not know: the line is still a fact.
            parsed = DEFAULT_CONFIDENCE
        confidence = parsed if parsed is not None else DEFAULT_CONFIDENCE
        body = body[: match.start()]
    body = body.strip().strip("|").strip().strip("*").strip()
    if not body:
        return None
    operator: Operator = ""
    key: str | None = None
    value = body
    for candidate in ("+=", "="):
        left, found, right = body.partition(candidate)
        if found:
            key = normalize_key(left)
            if key is not None:
                operator = "+=" if candidate == "+=" else "="
                value = right
            break
    previous = None
    while previous != value:  # '"Porto".' -> 'Porto'
        previous, value = value, value.strip(" \t`'\"*").rstrip(".")
    if len(value) > MAX_VALUE_CHARS or value.casefold() in _PLACEHOLDERS or not normalize_text(value):
        return None
    if key is None and (normalize_text(value) in _PLACEHOLDERS or "<" in value and ">" in value):
        return None
    return Fact(key=key, operator=operator, value=value, confidence=confidence)


def parse_facts(text: str) -> list[Fact]:
    """Every readable fact in a model's answer, in order, without repeats."""
    facts: list[Fact] = []
    seen: set[str] = set()
    for line in text.splitlines():
        pieces = _FACT_MARKER.split(line)
        for body in pieces[1:]:  # pieces[0] is whatever came before the first FACT:
            fact = parse_fact(body)
            if fact is None or fact.normalized in seen:
                continue
            seen.add(fact.normalized)
            facts.append(fact)
            if len(facts) == MAX_FACTS_PER_MESSAGE:
                return facts
    return facts


__all__ = ["EXTRACTION_INSTRUCTION", "Fact", "normalize_key", "normalize_text", "parse_confidence", "parse_fact",
           "parse_facts"]
