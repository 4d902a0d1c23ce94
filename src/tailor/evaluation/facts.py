"""Fact extraction measured on labelled messages: precision and recall of the facts kept.

A labelled file is JSON lines, one message each::

    {"split": "dev", "text": "Actually I moved to Porto last month",
     "facts": [{"key": "user.city", "value": "Porto"}]}

``facts`` lists the lasting facts about the writer that the message states (empty for a
question, small talk, a request, an opinion about the world, a passing moment, news about
someone else). An extracted fact is correct when it holds every word of one of its
message's gold values and, when both have a key, the same key; precision is the share of
extracted facts that are correct, recall the share of gold facts that some extracted fact
matches. ``split`` separates the messages a threshold may be chosen on (``dev``) from the
ones reported as held out (``test``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tailor.memory.extraction import FactExtractor, Judged
from tailor.memory.facts import Fact, normalize_key, normalize_text

SPLITS = ("dev", "test")
# Thresholds shown beside the configured one, so a reader sees the trade-off on each split.
SWEEP = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class GoldFact:
    """A fact a labelled message states: its words (``value``) and, when it has one, its key."""

    value: str
    key: str | None = None


@dataclass(frozen=True)
class LabelledMessage:
    text: str
    facts: tuple[GoldFact, ...]
    split: str


def read_labelled(path: str | Path) -> list[LabelledMessage]:
    """The labelled messages of a JSON-lines file; raises :class:`ValueError` naming the bad line."""
    messages = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            facts = []
            for fact in row.get("facts", []):
                key = normalize_key(fact["key"]) if fact.get("key") else None
                facts.append(GoldFact(value=str(fact["value"]), key=key))
            split = str(row.get("split", "test"))
            if split not in SPLITS:
                raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
            messages.append(LabelledMessage(text=str(row["text"]), facts=tuple(facts), split=split))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}, line {number}: {error}") from None
    if not messages:
        raise ValueError(f"{path} holds no labelled messages")
    return messages


def fact_matches(fact: Fact, gold: GoldFact) -> bool:
    """Whether an extracted ``fact`` says what ``gold`` says (all its words; the same key when both have one)."""
    if gold.key is not None and fact.key is not None and gold.key != fact.key:
        return False
    words = set(normalize_text(fact.value).split())
    wanted = normalize_text(gold.value).split()
    return bool(wanted) and all(word in words for word in wanted)


def score_extraction(messages: Sequence[LabelledMessage], extracted: Sequence[Sequence[Fact]]) -> dict[str, Any]:
    """Precision, recall and F1 of ``extracted`` (one list of facts per message), with the counts,
    and how many messages without facts got some (``false_positive_messages``)."""
    if len(messages) != len(extracted):
        raise ValueError(f"{len(messages)} messages but {len(extracted)} lists of facts")
    kept = correct = gold = found = negatives = wrong_negatives = 0
    for message, facts in zip(messages, extracted):
        kept += len(facts)
        correct += sum(any(fact_matches(fact, g) for g in message.facts) for fact in facts)
        gold += len(message.facts)
        found += sum(any(fact_matches(fact, g) for fact in facts) for g in message.facts)
        if not message.facts:
            negatives += 1
            wrong_negatives += bool(facts)
    precision = correct / kept if kept else math.nan
    recall = found / gold if gold else math.nan
    f1 = 2 * precision * recall / (precision + recall) if kept and gold and precision + recall > 0 else 0.0
    return {"messages": len(messages), "gold_facts": gold, "extracted": kept, "correct": correct,
            "precision": precision, "recall": recall, "f1": f1, "negative_messages": negatives,
            "false_positive_messages": wrong_negatives}


def evaluate_extraction(messages: Sequence[LabelledMessage], extractor: FactExtractor, *,
                        progress: Callable[[int, int], None] | None = None,
                        sweep: Iterable[float] = SWEEP) -> dict[str, Any]:
    """Judge every message once, then score each split at the extractor's threshold, at
    each threshold of ``sweep``, and with every candidate kept (``rules_only``: what the
    code alone would store)."""
    judged: list[list[Judged]] = []
    seconds: list[float] = []
    for index, message in enumerate(messages):
        start = time.perf_counter()
        judged.append(extractor.judged(message.text))
        seconds.append(time.perf_counter() - start)
        if progress is not None:
            progress(index + 1, len(messages))

    def at(threshold: float, split: str) -> dict[str, Any]:
        chosen = [(message, items) for message, items in zip(messages, judged) if split in ("all", message.split)]
        return score_extraction([message for message, _ in chosen],
                                [extractor.facts(items, threshold) for _, items in chosen])

    splits = [split for split in (*SPLITS, "all") if split == "all" or any(m.split == split for m in messages)]
    ordered = sorted(seconds)
    return {
        "n": len(messages),
        "threshold": extractor.threshold,
        "results": {split: at(extractor.threshold, split) for split in splits},
        "rules_only": {split: at(-math.inf, split) for split in splits},
        "sweep": [{"threshold": value, **{split: at(value, split) for split in splits}} for value in sweep],
        "statements_judged": sum(len(items) for items in judged),
        "ms_per_message_p50": 1000 * ordered[len(ordered) // 2],
        "ms_per_message_p95": 1000 * ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
        "messages": [{"text": message.text, "split": message.split,
                      "judged": [{"statement": item.statement, "margin": round(item.margin, 4)} for item in items],
                      "facts": [fact.text for fact in extractor.facts(items)]}
                     for message, items in zip(messages, judged)],
    }


__all__ = ["SPLITS", "SWEEP", "GoldFact", "LabelledMessage", "evaluate_extraction", "fact_matches", "read_labelled",
           "score_extraction"]
