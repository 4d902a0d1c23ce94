"""A reader of the PRISM alignment data set's published layout (Kirk et al. 2024: 1,500
participants, 8,011 conversations with 21 models, every rating tied to the participant's
survey profile). PRISM is on a data hub, not in a package: download its files yourself and
point this reader at the folder.

Files read (JSON lines)::

    conversations.jsonl  {"conversation_id", "user_id", "conversation_type", "opening_prompt",
                          "conversation_history": [{"turn": 0, "role": "user" | "model",
                          "content", "model_name", "score": 1-100, "if_chosen": bool,
                          "within_turn_id"}, ...], ...}
    survey.jsonl         {"user_id", "self_description", "system_string",
                          "stated_prefs": {attribute: score}, demographics...}   (optional)

In each turn the participant wrote one message and rated several model replies (four in the
opening turn, two later) on a 1-100 scale; the conversation went on with the reply they
chose. Each turn with replies of different scores gives one pair: the best-rated reply
over the worst-rated, after the conversation so far (the participant's earlier messages and
the replies they chose). :func:`read_prism_profiles` gives each participant's survey
answers as profile attributes (text only), the stated preferences among them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tailor.alignment.pairs import PreferencePair

__all__ = ["read_prism", "read_prism_profiles"]


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{number}: expected a JSON object")
                yield number, row


def _conversations(folder: str | os.PathLike[str]) -> Path:
    source = Path(folder)
    path = source / "conversations.jsonl" if source.is_dir() else source
    if not path.is_file():
        raise FileNotFoundError(f"no PRISM conversations at {folder}: expected conversations.jsonl")
    return path


def read_prism(folder: str | os.PathLike[str], *, min_gap: float = 1.0) -> list[PreferencePair]:
    """One pair per rated turn of every conversation (best over worst score, when the scores
    differ by at least ``min_gap`` points), the participant's ``user_id`` as the pair's user."""
    path = _conversations(folder)
    pairs = []
    for number, row in _lines(path):
        try:
            user = str(row["user_id"])
            history = row["conversation_history"]
            if not isinstance(history, list):
                raise TypeError("conversation_history must be a list")
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: {error}") from None
        by_turn: dict[int, list[Mapping[str, Any]]] = {}
        for utterance in history:
            by_turn.setdefault(int(utterance.get("turn", 0)), []).append(utterance)
        context: list[dict[str, str]] = []
        for turn in sorted(by_turn):
            utterances = by_turn[turn]
            prompts = [u for u in utterances if u.get("role") == "user" and isinstance(u.get("content"), str)]
            replies = [u for u in utterances if u.get("role") == "model" and isinstance(u.get("content"), str)
                       and isinstance(u.get("score"), (int, float)) and u["content"].strip()]
            if not prompts:
                break
            context.append({"role": "user", "content": prompts[0]["content"]})
            ranked = sorted(replies, key=lambda u: (-float(u["score"]), int(u.get("within_turn_id", 0))))
            if len(ranked) >= 2 and float(ranked[0]["score"]) - float(ranked[-1]["score"]) >= min_gap \
                    and ranked[0]["content"].strip() != ranked[-1]["content"].strip():
                pairs.append(PreferencePair(user, tuple(context), ranked[0]["content"], ranked[-1]["content"],
                                            f"{row.get('conversation_id', number)}-{turn}",
                                            float(ranked[0]["score"]) - float(ranked[-1]["score"]), "prism"))
            chosen = next((u for u in replies if u.get("if_chosen")), ranked[0] if ranked else None)
            if chosen is None:
                break
            context.append({"role": "assistant", "content": chosen["content"]})
    return pairs


def read_prism_profiles(folder: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """Each participant's survey answers as text attributes (``stated_prefs`` flattened to
    ``stated_pref_<name>``), by ``user_id``; empty without ``survey.jsonl``."""
    path = Path(folder) / "survey.jsonl" if Path(folder).is_dir() else Path(folder).with_name("survey.jsonl")
    if not path.is_file():
        return {}
    profiles: dict[str, dict[str, str]] = {}
    for _, row in _lines(path):
        if "user_id" not in row:
            continue
        attributes: dict[str, str] = {}
        for key, value in row.items():
            if key == "user_id" or value is None:
                continue
            if key == "stated_prefs" and isinstance(value, Mapping):
                attributes.update({f"stated_pref_{name}": str(score) for name, score in value.items()})
            elif isinstance(value, (str, int, float, bool)):
                attributes[key] = str(value)
            elif isinstance(value, Mapping):
                attributes.update({f"{key}_{name}": str(inner) for name, inner in value.items()
                                   if isinstance(inner, (str, int, float, bool))})
        profiles[str(row["user_id"])] = attributes
    return profiles
