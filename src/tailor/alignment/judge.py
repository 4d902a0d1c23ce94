"""A pairwise LLM-as-judge: which of two replies a user with stated preferences would prefer.

The judge is any backend (``openai:URL`` for a strong model, the default model for a weak
one). Each pair is judged twice, in both orders, so that a judge that prefers whichever
reply comes first (a known bias of LLM judges) cancels out: ``a`` wins a point for each
order in which the judge picked it, and its verdict is the mean, ``1`` (``a`` better), ``0``
(``b`` better) or ``0.5`` (the orders disagree: a tie). The judge's prompt holds the
instruction, the user's stated preferences and the two replies labelled ``A`` and ``B``;
its answer is read as the letter it scores likelier (``likelihood``, for a backend that
scores candidates) or writes first (``generate``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tailor.types import Backend, GenerationRequest

__all__ = ["JUDGE_INSTRUCTION", "JudgeMode", "JudgedPair", "PairwiseJudge", "agreement"]

JudgeMode = Literal["likelihood", "generate"]
JUDGE_INSTRUCTION = ("You compare two replies to the same request for one user. Pick the reply that this user "
                     "would prefer, given their stated preferences. Answer with one letter: A or B.")
_LETTER = re.compile(r"\b([AB])\b")


@dataclass(frozen=True)
class JudgedPair:
    """Two replies to ``instruction`` for a user who states ``preferences``."""

    instruction: str
    preferences: str
    a: str
    b: str


class PairwiseJudge:
    """Judges :class:`JudgedPair` s with ``backend``, in both orders (see the module docstring)."""

    def __init__(self, backend: Backend, *, mode: JudgeMode = "likelihood", batch_size: int = 8) -> None:
        if mode not in ("likelihood", "generate"):
            raise ValueError(f"mode must be likelihood or generate, got {mode!r}")
        self.backend = backend
        self.mode = mode
        self.batch_size = batch_size

    def request(self, pair: JudgedPair, *, swapped: bool) -> GenerationRequest:
        first, second = (pair.b, pair.a) if swapped else (pair.a, pair.b)
        content = (f"The user's preferences: {pair.preferences}\n\nThe request: {pair.instruction}\n\n"
                   f"Reply A:\n{first}\n\nReply B:\n{second}\n\nWhich reply would this user prefer, A or B?")
        messages = ({"role": "system", "content": JUDGE_INSTRUCTION}, {"role": "user", "content": content})
        if self.mode == "likelihood":
            return GenerationRequest(messages, max_new_tokens=1, candidates=("A", "B"))
        return GenerationRequest(messages, max_new_tokens=8)

    def _letter(self, text: str) -> str | None:
        found = _LETTER.search(text.strip().upper()[:40])
        return found.group(1) if found else None

    def first_choices(self, pairs: Sequence[JudgedPair], *, swapped: bool) -> list[float]:
        """For each pair shown in one order: 1 when the judge picks the reply shown first, 0
        for the second, 0.5 when its answer names neither."""
        choices: list[float] = []
        for start in range(0, len(pairs), self.batch_size):
            batch = [self.request(pair, swapped=swapped) for pair in pairs[start:start + self.batch_size]]
            for result in self.backend.generate(batch):
                letter = self._letter(result.text)
                choices.append(1.0 if letter == "A" else 0.0 if letter == "B" else 0.5)
        return choices

    def judge(self, pairs: Sequence[JudgedPair]) -> list[float]:
        """Each pair's verdict for ``a``: 1, 0, or 0.5 when the two orders disagree."""
        straight = self.first_choices(pairs, swapped=False)
        swapped = self.first_choices(pairs, swapped=True)
        return [(first + (1.0 - second)) / 2.0 for first, second in zip(straight, swapped)]


def agreement(judged: Sequence[float], truth: Sequence[float]) -> list[float]:
    """Per pair, ``1 - |judge - truth|``: 1 when both pick the same reply, 0 when they pick
    opposite ones, 0.5 when one of them calls a tie."""
    if len(judged) != len(truth):
        raise ValueError(f"agreement needs as many verdicts as truths, got {len(judged)} and {len(truth)}")
    return [1.0 - abs(j - t) for j, t in zip(judged, truth)]
