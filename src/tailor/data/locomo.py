"""LoCoMo (Maharana et al., ACL 2024): very long two-person conversations with questions
whose evidence turns are annotated. The reader takes the public ``locomo10.json`` layout,
gzipped or not::

    [{"sample_id": str,
      "conversation": {"speaker_a": str, "speaker_b": str,
                       "session_N_date_time": "1:56 pm on 8 May, 2023",
                       "session_N": [{"speaker", "dia_id", "text", "blip_caption"?, ...}]},
      "qa": [{"question", "answer" | "adversarial_answer", "evidence": [dia_id, ...],
              "category": 1..5}],
      ...}]

A turn that shares an image carries its caption (``blip_caption``); the reader keeps it
as ``caption``. A session without a date (or with one that does not parse) gets
``date=None``. Category 5 questions are adversarial: the conversation does not answer
them. Evidence ids are taken as written, with the few malformed ones of the public file
(``"D8:6; D9:17"``, ``"D:11:26"``) repaired where the intent is clear.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tailor.data.lamp import DataFormatError

ADVERSARIAL_CATEGORY = 5
_SESSION = re.compile(r"session_(\d+)")
_DIA_ID = re.compile(r"D:?(\d+):(\d+)")
_DATE_FORMATS = ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y", "%d %B, %Y", "%d %B %Y", "%Y-%m-%d")


@dataclass(frozen=True)
class Turn:
    """One message of a conversation. ``session`` counts from 1; ``date`` is the session's
    ISO date (``None`` when the data has none); ``caption`` describes a shared image."""

    id: str
    speaker: str
    text: str
    session: int
    date: str | None = None
    caption: str | None = None


@dataclass(frozen=True)
class Question:
    """A question about one conversation, its gold answer and the turns that hold it."""

    question: str
    answer: str
    evidence: tuple[str, ...]
    category: int

    @property
    def adversarial(self) -> bool:
        return self.category == ADVERSARIAL_CATEGORY


@dataclass(frozen=True)
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    turns: tuple[Turn, ...]
    questions: tuple[Question, ...]


def parse_session_date(text: Any) -> str | None:
    """``"1:56 pm on 8 May, 2023"`` -> ``"2023-05-08"``; ``None`` for a missing or unreadable date."""
    if not isinstance(text, str) or not text.strip():
        return None
    cleaned = " ".join(text.replace(",", ", ").split()).replace(" ,", ",").replace(",,", ",")
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, pattern).date().isoformat()
        except ValueError:
            continue
    found = re.search(r"(\d{1,2}) ([A-Za-z]+),? (\d{4})", cleaned)
    if found:
        try:
            return datetime.strptime(" ".join(found.groups()), "%d %B %Y").date().isoformat()
        except ValueError:
            return None
    return None


def evidence_ids(raw: Any) -> tuple[str, ...]:
    """The evidence turn ids of a question, repaired (``"D8:6; D9:17"`` is two ids)."""
    items = raw if isinstance(raw, list) else [raw] if raw else []
    ids: list[str] = []
    for item in items:
        for match in _DIA_ID.finditer(str(item)):
            ids.append(f"D{int(match.group(1))}:{int(match.group(2))}")
    return tuple(dict.fromkeys(ids))


def _conversation(path: Path, sample: Any, position: int) -> Conversation:
    if not isinstance(sample, dict) or not isinstance(sample.get("conversation"), dict):
        raise DataFormatError(path, f"sample {position}: expected an object with a 'conversation' object")
    body = sample["conversation"]
    sample_id = str(sample.get("sample_id", f"conv-{position}"))
    speakers = (str(body.get("speaker_a", "A")), str(body.get("speaker_b", "B")))
    sessions = sorted(int(m.group(1)) for key in body if (m := _SESSION.fullmatch(key)))
    turns: list[Turn] = []
    for number in sessions:
        session = body[f"session_{number}"]
        if not isinstance(session, list):
            raise DataFormatError(path, f"{sample_id}: session_{number} must be a list of turns")
        day = parse_session_date(body.get(f"session_{number}_date_time"))
        for index, turn in enumerate(session):
            if not isinstance(turn, dict):
                raise DataFormatError(path, f"{sample_id}: session_{number} turn {index} is not an object")
            caption = turn.get("blip_caption")
            turns.append(Turn(id=str(turn.get("dia_id") or f"D{number}:{index + 1}"),
                              speaker=str(turn.get("speaker", "")), text=str(turn.get("text", "")),
                              session=number, date=day,
                              caption=str(caption) if isinstance(caption, str) and caption.strip() else None))
    questions = []
    for item in sample.get("qa", []) or []:
        if not isinstance(item, dict) or "question" not in item:
            raise DataFormatError(path, f"{sample_id}: each qa item needs a 'question'")
        answer = item.get("answer", item.get("adversarial_answer", ""))
        questions.append(Question(question=str(item["question"]), answer="" if answer is None else str(answer),
                                  evidence=evidence_ids(item.get("evidence")), category=int(item.get("category", 0))))
    return Conversation(sample_id, speakers, tuple(turns), tuple(questions))


def read_locomo(path: str | Path) -> list[Conversation]:
    """The conversations of a LoCoMo file (``.json`` or ``.json.gz``)."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, f"not JSON ({error})") from None
    if isinstance(data, dict):  # one conversation on its own
        data = [data]
    if not isinstance(data, list):
        raise DataFormatError(path, "expected a list of LoCoMo conversations")
    return [_conversation(path, sample, position) for position, sample in enumerate(data)]


__all__ = ["ADVERSARIAL_CATEGORY", "Conversation", "Question", "Turn", "evidence_ids",
           "parse_session_date", "read_locomo"]
