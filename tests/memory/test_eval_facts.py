"""Extraction measured on labelled messages: matching, precision and recall by hand, the file, the command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tailor.cli.main import main
from tailor.evaluation.facts import GoldFact, LabelledMessage, fact_matches, read_labelled, score_extraction
from tailor.memory.facts import Fact

LABELLED = Path(__file__).parent / "data" / "facts-labelled.jsonl"


def fact(text: str, key: str | None = None) -> Fact:
    return Fact(key=key, operator="=" if key else "", value=text, confidence=0.9)


def test_a_fact_matches_when_it_holds_the_gold_words_and_no_other_key() -> None:
    assert fact_matches(fact("Porto", "user.city"), GoldFact("Porto", "user.city"))
    assert fact_matches(fact("I'm left-handed"), GoldFact("left handed"))
    assert fact_matches(fact("I live in Porto"), GoldFact("Porto", "user.city"))  # free text says it too
    assert not fact_matches(fact("Porto", "user.hometown"), GoldFact("Porto", "user.city"))
    assert not fact_matches(fact("Lisbon", "user.city"), GoldFact("Porto", "user.city"))
    assert not fact_matches(fact("two cats"), GoldFact("three cats"))


def test_precision_and_recall_by_hand() -> None:
    messages = [LabelledMessage("I'm Ana and I live in Porto", (GoldFact("Ana", "user.name"),
                                                                 GoldFact("Porto", "user.city")), "dev"),
                LabelledMessage("I'm stuck in traffic", (), "dev"),
                LabelledMessage("Hello", (), "test")]
    extracted = [[fact("Ana", "user.name")], [fact("I'm stuck in traffic")], []]
    scores = score_extraction(messages, extracted)
    # 2 extracted, 1 correct; 2 gold facts, 1 found; 1 of 2 negatives got a fact.
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5 and scores["f1"] == 0.5
    assert (scores["negative_messages"], scores["false_positive_messages"]) == (2, 1)
    nothing = score_extraction(messages, [[], [], []])
    assert math.isnan(nothing["precision"]) and nothing["recall"] == 0.0 and nothing["f1"] == 0.0
    with pytest.raises(ValueError, match="3 messages but 1"):
        score_extraction(messages, [[]])


def test_the_labelled_set_has_100_messages_many_negatives_and_two_splits() -> None:
    messages = read_labelled(LABELLED)
    assert len(messages) >= 100
    negatives = [message for message in messages if not message.facts]
    assert len(negatives) >= 0.4 * len(messages)
    for split in ("dev", "test"):
        part = [message for message in messages if message.split == split]
        assert len(part) >= 50 and any(m.facts for m in part) and any(not m.facts for m in part)


def test_a_bad_labelled_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "I live in Oslo", "facts": [{"key": "user.city", "value": "Oslo"}]}\n'
                    '{"facts": []}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        read_labelled(path)
    path.write_text('{"text": "hi", "split": "train"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="split must be one of dev, test"):
        read_labelled(path)


def test_eval_facts_command_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "labelled.jsonl"
    rows = [{"split": "dev", "text": "I live in Oslo", "facts": [{"key": "user.city", "value": "Oslo"}]},
            {"split": "test", "text": "What time is it?", "facts": []}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert main(["eval-facts", "--data", str(path), "--backend", "echo", "--threshold", "-100", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 2 and report["backend"] == "echo" and report["threshold"] == -100
    assert report["results"]["dev"]["precision"] == 1.0 and report["results"]["dev"]["recall"] == 1.0
    assert report["results"]["test"]["precision"] is None  # nothing extracted: no precision, in strict JSON
    assert report["messages"][0]["facts"] == ["user.city = Oslo"]
    assert main(["eval-facts", "--data", str(path), "--backend", "echo"]) == 0
    assert "| dev | -0.5 |" in capsys.readouterr().out
