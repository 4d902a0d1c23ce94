"""The preference dimensions a simulated user holds a pole on, each scored by a plain function.

In the manner of Personalized Soups (Jang et al. 2023), whose users choose a pole on each of
three dimensions (expertise, informativeness, style), and PersonalLLM (Zollo et al.), whose
users are weighted mixtures of reward functions. Each dimension's :meth:`Dimension.measure`
maps a reply to ``[-1, 1]``: ``-1`` all the way to its first pole, ``+1`` to its second.

=============== ================= ================= =================================================
dimension       first pole (-1)   second pole (+1)  measure
=============== ================= ================= =================================================
expertise       ``plain``         ``expert``        ``tanh((60 - FRE) / 25)``, FRE the Flesch reading
                                                    ease: plain words and short sentences read easily
                                                    (FRE 60 and up). Words and sentences are counted
                                                    by ``textstat``, syllables by ``pyphen`` (its
                                                    hyphenation dictionary; textstat's own syllable
                                                    count downloads NLTK's cmudict at run time)
informativeness ``concise``       ``detailed``      ``tanh(log2((words + 1) / 30))``: 30 words is the
                                                    middle, 8 words -0.95, 60 words +0.76
style           ``formal``        ``friendly``      ``tanh(2 * warmth - 0.5)``, warmth ``0.5 *
                                                    compound + 0.25 * tanh(you / 2) + 0.25 *
                                                    tanh(emoji + exclamations)``: VADER's sentiment
                                                    (``vaderSentiment``), second-person words, emoji
                                                    (``emoji``) and exclamation marks; a neutral
                                                    reply (warmth 0) leans formal, -0.46
format          ``prose``         ``list``          ``tanh(items) * 2 - 1`` over list items (lines
                                                    starting with ``-``, ``*``, ``•`` or ``1.``): no
                                                    list -1, one item -0.24, two +0.93
=============== ================= ================= =================================================

:func:`quality` is what every simulated user shares: a reply that repeats itself (the same
word three-gram again and again, a small model's failure) is worse for all of them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tailor.registry import require

__all__ = ["DIMENSIONS", "Dimension", "dimension", "expertise", "format_", "informativeness", "quality", "reading_ease", "style", "words"]

_WORD = re.compile(r"[A-Za-z0-9']+")
_YOU = re.compile(r"\b(you|your|yours|yourself|you're|you'll|you've)\b", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+\S", re.MULTILINE)


def words(text: str) -> list[str]:
    """The words of ``text`` (letters, digits and apostrophes)."""
    return _WORD.findall(text)


@lru_cache(maxsize=1)
def _hyphenator() -> Any:
    return require("pyphen", "align").Pyphen(lang="en_US")


def reading_ease(text: str) -> float:
    """The Flesch reading ease of ``text``: ``206.835 - 1.015 * words / sentences - 84.6 *
    syllables / words`` (about 90 for a child's sentence, 0 to 30 for an academic paper)."""
    textstat = require("textstat", "align")
    count = max(int(textstat.lexicon_count(text)), 1)
    sentences = max(int(textstat.sentence_count(text)), 1)
    hyphenator = _hyphenator()
    syllables = sum(len(hyphenator.positions(word.lower())) + 1 for word in words(text))
    return 206.835 - 1.015 * count / sentences - 84.6 * syllables / count


def expertise(text: str) -> float:
    """-1 for plain words and short sentences, +1 for expert vocabulary (Flesch reading ease)."""
    if not words(text):
        return 0.0
    return math.tanh((60.0 - reading_ease(text)) / 25.0)


def informativeness(text: str) -> float:
    """-1 for a short reply, +1 for a long one: ``tanh(log2((words + 1) / 30))``."""
    return math.tanh(math.log2((len(words(text)) + 1) / 30.0))


@lru_cache(maxsize=1)
def _vader() -> Any:
    module = require("vaderSentiment.vaderSentiment", "align")
    return module.SentimentIntensityAnalyzer()


def style(text: str) -> float:
    """-1 for a formal, neutral reply, +1 for a warm one (sentiment, "you", emoji, "!")."""
    if not text.strip():
        return 0.0
    emoji = require("emoji", "align")
    compound = float(_vader().polarity_scores(text)["compound"])
    you = len(_YOU.findall(text))
    lively = emoji.emoji_count(text) + text.count("!")
    warmth = 0.5 * compound + 0.25 * math.tanh(you / 2.0) + 0.25 * math.tanh(lively)
    return math.tanh(2.0 * warmth - 0.5)


def format_(text: str) -> float:
    """-1 for prose, +1 for a list: ``tanh(items) * 2 - 1`` over the reply's list items."""
    return math.tanh(len(_LIST_ITEM.findall(text))) * 2.0 - 1.0


def quality(text: str) -> float:
    """0 for a reply that never repeats a word three-gram, towards -1 the more it does; -1 for no words."""
    tokens = [w.lower() for w in words(text)]
    if not tokens:
        return -1.0
    grams = [tuple(tokens[i:i + 3]) for i in range(len(tokens) - 2)]
    if not grams:
        return 0.0
    repeated = 1.0 - len(set(grams)) / len(grams)
    return -math.tanh(3.0 * repeated)


@dataclass(frozen=True)
class Dimension:
    """One preference dimension: its two poles and the function that places a reply between them."""

    name: str
    poles: tuple[str, str]
    help: str
    measure: Callable[[str], float] = field(compare=False, repr=False)

    def sign(self, pole: str) -> int:
        """-1 for the first pole, +1 for the second."""
        if pole not in self.poles:
            raise ValueError(f"dimension {self.name} has the poles {self.poles[0]} and {self.poles[1]}, not {pole!r}")
        return -1 if pole == self.poles[0] else 1

    def score(self, text: str, pole: str) -> float:
        """How well ``text`` fits ``pole``, in ``[-1, 1]``."""
        return self.sign(pole) * self.measure(text)


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("expertise", ("plain", "expert"), "plain words and short sentences, or expert vocabulary", expertise),
    Dimension("informativeness", ("concise", "detailed"), "a short answer, or a long and detailed one",
              informativeness),
    Dimension("style", ("formal", "friendly"), "a neutral, formal tone, or a warm, friendly one", style),
    Dimension("format", ("prose", "list"), "running prose, or a list of points", format_),
)
"""Every dimension a simulated user holds a pole on, in a fixed order."""


def dimension(name: str) -> Dimension:
    """The dimension named ``name``."""
    for known in DIMENSIONS:
        if known.name == name:
            return known
    raise ValueError(f"unknown preference dimension {name!r}; dimensions: {', '.join(d.name for d in DIMENSIONS)}")
