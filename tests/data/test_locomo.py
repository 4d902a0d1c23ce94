"""The LoCoMo reader on small conversations in the public layout."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tailor.data.lamp import DataFormatError
from tailor.data.locomo import evidence_ids, parse_session_date, read_locomo

SAMPLE = [{
    "sample_id": "conv-x",
    "conversation": {
        "speaker_a": "Ana", "speaker_b": "Rui",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ana", "dia_id": "D1:1", "text": "I adopted a puppy!"},
            {"speaker": "Rui", "dia_id": "D1:2", "text": "Look at this.", "img_url": ["http://x"],
             "blip_caption": "a photo of a red bicycle", "query": "bike"},
        ],
        "session_2": [{"speaker": "Ana", "dia_id": "D2:1", "text": "The puppy is called Rex."}],
        "session_10_date_time": "10:04 am on 3 January, 2024",
        "session_10": [{"speaker": "Rui", "dia_id": "D10:1", "text": "Happy new year."}],
    },
    "qa": [
        {"question": "What did Ana adopt?", "answer": "a puppy", "evidence": ["D1:1"], "category": 4},
        {"question": "When did Ana adopt a puppy?", "answer": 2023, "evidence": ["D1:1; D2:1"], "category": 2},
        {"question": "What did Rui adopt?", "adversarial_answer": "a puppy", "evidence": ["D:1:1"], "category": 5},
    ],
    "event_summary": {},
}]


def write(path: Path, data: object, *, zipped: bool) -> Path:
    raw = json.dumps(data).encode()
    path.write_bytes(gzip.compress(raw) if zipped else raw)
    return path


@pytest.mark.parametrize("zipped", [False, True])
def test_reads_turns_in_session_order_with_dates_and_captions(tmp_path: Path, zipped: bool) -> None:
    (conversation,) = read_locomo(write(tmp_path / "locomo.json", SAMPLE, zipped=zipped))
    assert conversation.sample_id == "conv-x"
    assert conversation.speakers == ("Ana", "Rui")
    assert [turn.id for turn in conversation.turns] == ["D1:1", "D1:2", "D2:1", "D10:1"]  # 10 after 2
    assert [turn.date for turn in conversation.turns] == ["2023-05-08", "2023-05-08", None, "2024-01-03"]
    assert [turn.session for turn in conversation.turns] == [1, 1, 2, 10]
    assert conversation.turns[1].caption == "a photo of a red bicycle"
    assert conversation.turns[0].caption is None


def test_questions_answers_and_repaired_evidence(tmp_path: Path) -> None:
    (conversation,) = read_locomo(write(tmp_path / "locomo.json", SAMPLE, zipped=False))
    first, second, third = conversation.questions
    assert (first.answer, first.evidence, first.adversarial) == ("a puppy", ("D1:1",), False)
    assert (second.answer, second.evidence) == ("2023", ("D1:1", "D2:1"))
    assert (third.answer, third.evidence, third.adversarial) == ("a puppy", ("D1:1",), True)


def test_dates_and_evidence_parsing() -> None:
    assert parse_session_date("8:56 pm on 20 July, 2023") == "2023-07-20"
    assert parse_session_date("") is None
    assert parse_session_date(None) is None
    assert parse_session_date("sometime") is None
    assert evidence_ids(["D"]) == ()
    assert evidence_ids("D3:4") == ("D3:4",)


def test_bad_layout_says_where(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="conversation"):
        read_locomo(write(tmp_path / "bad.json", [{"sample_id": "a"}], zipped=False))
    broken = [{**SAMPLE[0], "conversation": {**SAMPLE[0]["conversation"], "session_2": "oops"}}]
    with pytest.raises(DataFormatError, match="session_2"):
        read_locomo(write(tmp_path / "bad2.json", broken, zipped=False))
