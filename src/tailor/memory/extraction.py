"""Fact extraction that a 135M model can do: code finds the statements, the model judges them.

A small model does not write ``FACT: ...`` lines reliably, but it can tell which of two
fixed answers fits better. So :class:`FactExtractor` cuts the message into candidate
statements (:func:`tailor.memory.clauses.candidate_statements`), asks the model about each
one ("a lasting fact about the writer?", after a few worked examples shown as earlier
turns) by scoring the answers ``yes`` and ``no`` by likelihood, and keeps a statement when
``score(yes) - score(no)`` reaches ``threshold``. Code then writes it as a fact
(:func:`tailor.memory.clauses.statement_fact`), with a confidence of
``sigmoid(margin - threshold)``: 0.5 at the threshold, so the memory's usual
``min_confidence`` of 0.5 keeps exactly what the extractor keeps.

Any backend that scores candidates works (transformers, ONNX Runtime GenAI, llama.cpp,
an OpenAI-compatible server with logprobs). :func:`prompted_extractor` keeps the other
way, a model that writes ``FACT:`` lines itself (:mod:`tailor.memory.facts`), for a model
strong enough to follow that format.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tailor.memory.clauses import candidate_statements, statement_fact
from tailor.memory.facts import EXTRACTION_INSTRUCTION, Fact, parse_facts
from tailor.types import GenerationRequest, GenerationResult

# requests -> results, as ``Backend.generate``.
Judge = Callable[[Sequence[GenerationRequest]], list[GenerationResult]]
Extract = Callable[[str], list[Fact]]

JUDGE_INSTRUCTION = (
    "Does the sentence tell a lasting fact about the person who wrote it: their name, where they live, "
    "their work, family, pets, diet, health, habits or tastes? Answer yes or no."
)
YES, NO = "yes", "no"
# Worked examples, shown as earlier turns; written for this prompt, none from a labelled set.
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("I live in Madrid", YES),
    ("I'm tired", NO),
    ("I work as an electrician", YES),
    ("My friend lives in Rome", NO),
    ("My husband is called Tom", YES),
    ("I don't get it", NO),
    ("I'm allergic to shellfish", YES),
    ("My package is late", NO),
    ("I have a daughter", YES),
    ("I'm waiting for the bus", NO),
    ("I love playing chess", YES),
)
# The margin (log-likelihood of yes minus no) at which a statement is kept: chosen on the
# development half of tests/memory/data/facts-labelled.jsonl on the default model
# (docs/results-memory.md), reported on the held-out half.
DEFAULT_THRESHOLD = -0.5


def judge_request(statement: str) -> GenerationRequest:
    """The request that asks whether ``statement`` is a lasting fact: ``yes`` or ``no`` scored."""
    messages: list[dict[str, str]] = [{"role": "system", "content": JUDGE_INSTRUCTION}]
    for example, answer in EXAMPLES:
        messages += [{"role": "user", "content": example}, {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": statement})
    return GenerationRequest(tuple(messages), max_new_tokens=1, candidates=(YES, NO))


@dataclass(frozen=True)
class Judged:
    """A candidate statement with the model's margin (``score(yes) - score(no)``)."""

    statement: str
    margin: float


class FactExtractor:
    """Facts from one user message: candidate statements judged by a model, written by code."""

    def __init__(self, judge: Judge, *, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold}")
        self.judge = judge
        self.threshold = threshold

    def judged(self, text: str) -> list[Judged]:
        """Every candidate statement of ``text`` with its margin, in order (one batch for the model)."""
        statements = candidate_statements(text)
        if not statements:
            return []
        results = self.judge([judge_request(statement) for statement in statements])
        if len(results) != len(statements):
            raise RuntimeError(f"the judge answered {len(results)} of {len(statements)} requests")
        return [Judged(statement, margin(result)) for statement, result in zip(statements, results)]

    def extract(self, text: str) -> list[Fact]:
        """The facts of ``text`` that the model keeps (margin at least :attr:`threshold`)."""
        return self.facts(self.judged(text))

    def facts(self, judged: Sequence[Judged], threshold: float | None = None) -> list[Fact]:
        """Facts from already judged statements, kept at ``threshold`` (default :attr:`threshold`)."""
        cut = self.threshold if threshold is None else threshold
        return [statement_fact(item.statement, _sigmoid(item.margin - cut)) for item in judged if item.margin >= cut]

    __call__ = extract


def margin(result: GenerationResult) -> float:
    """``score(yes) - score(no)`` of a judged request (its text decides when no scores came back)."""
    if result.scores is not None and YES in result.scores and NO in result.scores:
        return float(result.scores[YES]) - float(result.scores[NO])
    return 1.0 if result.text.strip().casefold().startswith(YES) else -1.0


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(value, 50.0), -50.0)))


def prompted_extractor(generate: Callable[[Sequence[dict[str, str]]], str]) -> Extract:
    """An extractor for a model that writes ``FACT:`` lines itself (``generate``: chat
    messages -> the model's answer)."""

    def extract(text: str) -> list[Fact]:
        messages = [{"role": "system", "content": EXTRACTION_INSTRUCTION}, {"role": "user", "content": text}]
        return parse_facts(generate(messages))

    return extract


__all__ = ["DEFAULT_THRESHOLD", "EXAMPLES", "JUDGE_INSTRUCTION", "NO", "YES", "FactExtractor", "Judge", "Judged",
           "judge_request", "margin", "prompted_extractor"]
