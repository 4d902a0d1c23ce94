"""``movielens-ratings``: the rating (1 to 5) a user gives a movie (LaMP-3's layout).

Source: MovieLens 100k as ``recbole`` ships it (``dataset_example/ml-100k/``, RecBole's
atomic files: ``ml-100k.inter`` = user, movie, rating, Unix timestamp; ``ml-100k.item`` =
title, release year, genres; ``ml-100k.user`` = age, gender, occupation, zip code):
100,000 ratings by 943 users of 1,682 movies, Sep 1997 to Apr 1998. The "user" is the
MovieLens user.

LaMP-3 predicts the score of a review the user wrote, from their earlier reviews and
scores. Here there is no review: the item is the movie itself, shown as "title (year),
genres: ...", and the profile is the user's earlier ratings in the same layout
(``text`` = the movie, ``score`` = its rating, ``date`` = the day it was rated), so what
personalizes the answer is the user's taste: how they rated similar movies, and how
harshly they rate at all. Each question also carries ``user_attributes`` (age, gender,
occupation): the LaMP readers ignore keys they do not know, so LaMP tools still read
the files, and persona-level methods can use them (zip codes are left out).

Splits, per user, in time order (ratings ordered by timestamp, then movie id): the
latest ``questions_per_user`` ratings are the ``dev`` questions, the ones before them
the ``train`` questions. Each question's profile is the user's ratings before every
question of its split, at most ``profile_size`` (the latest). Only users with at least
``min_profile`` ratings before their first train question are kept; every MovieLens user
rated at least 20 movies, so with the defaults (2 questions per split, profile of up to
100, at least 10 in it) all 943 users qualify: 1,886 questions per split, about 14 MB
per questions file. Questions are interleaved across users (in user id order), so the
first 943 of a split cover every user.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tailor.data.interactions import (
    NEGATIVES,
    Interaction,
    build_next_item,
    read_interactions_csv,
    read_items_csv,
)
from tailor.data.packaged.build import (
    BuildOptionError,
    BuildReport,
    Question,
    check_at_least_one,
    package_file,
    write_splits,
)

RATING_PROMPT = ("What rating from 1 to 5 would this user give the following movie? Answer with a single number. "
                 "movie: ")
SOURCE = "recbole dataset_example/ml-100k"
_INSTALL = "install it with: pip install --no-deps recbole"
_ARTICLES = ("The", "A", "An")


def _atomic_rows(name: str) -> list[dict[str, str]]:
    """Rows of a RecBole atomic file, keyed by the header's field names without their
    ``:type`` suffixes (``user_id:token`` -> ``user_id``)."""
    path = package_file("recbole", f"dataset_example/ml-100k/{name}", install_hint=_INSTALL)
    with open(path, encoding="utf-8", newline="") as stream:
        reader = csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [column.partition(":")[0] for column in next(reader)]
        return [dict(zip(header, row)) for row in reader if row]


def _title(raw: str) -> str:
    # MovieLens files a leading article at the end ("Usual Suspects, The"); put it back.
    for article in _ARTICLES:
        if raw.endswith(f", {article}"):
            return f"{article} {raw[:-len(article) - 2]}"
    return raw


def describe_movie(title: str, year: str, genres: str) -> str:
    """The movie as the task shows it: ``Title (year), genres: A, B``."""
    text = _title(title.strip())
    if year.strip():
        text += f" ({year.strip()})"
    names = genres.split()
    return f"{text}, genres: {', '.join(names)}" if names else text


def read_movie_descriptions() -> dict[str, str]:
    """Movie id -> its description (:func:`describe_movie`)."""
    return {row["item_id"]: describe_movie(row.get("movie_title", ""), row.get("release_year", ""),
                                           row.get("class", ""))
            for row in _atomic_rows("ml-100k.item")}


def read_ratings() -> dict[str, list[tuple[int, str, str]]]:
    """User id -> their (timestamp, movie id, rating) triples, in time order."""
    by_user: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for row in _atomic_rows("ml-100k.inter"):
        by_user[row["user_id"]].append((int(float(row["timestamp"])), row["item_id"], str(int(float(row["rating"])))))
    for ratings in by_user.values():
        ratings.sort(key=lambda rating: (rating[0], int(rating[1])))
    return dict(by_user)


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")


def build_movielens_ratings(out: str | Path, *, questions_per_user: int = 2, profile_size: int = 100,
                            min_profile: int = 10, max_users: int | None = None) -> BuildReport:
    """Movie rating prediction per MovieLens user (recbole ml-100k, LaMP-3 layout).

    ``max_users`` keeps only the first that many qualifying users (in user id order), for
    quick builds."""
    check_at_least_one(questions_per_user=questions_per_user, profile_size=profile_size, min_profile=min_profile)
    if max_users is not None:
        check_at_least_one(max_users=max_users)
    movies = read_movie_descriptions()
    attributes = {row["user_id"]: {name: row.get(name, "") for name in ("age", "gender", "occupation")}
                  for row in _atomic_rows("ml-100k.user")}
    splits: dict[str, dict[str, list[Question]]] = {"train": {}, "dev": {}}
    for user, ratings in sorted(read_ratings().items(), key=lambda pair: int(pair[0])):
        train_start = len(ratings) - 2 * questions_per_user
        if train_start < min_profile:
            continue
        if max_users is not None and len(splits["dev"]) >= max_users:
            break
        for split, start in (("train", train_start), ("dev", train_start + questions_per_user)):
            profile = [{"id": f"{user}-{movie}", "text": movies[movie], "score": rating, "date": _day(timestamp)}
                       for timestamp, movie, rating in ratings[max(0, start - profile_size):start]]
            questions: list[Question] = []
            for _, movie, rating in ratings[start:start + questions_per_user]:
                question: dict[str, Any] = {"id": f"{user}-{movie}", "user_id": user,
                                            "input": RATING_PROMPT + movies[movie], "profile": profile}
                if user in attributes:
                    question["user_attributes"] = attributes[user]
                questions.append((question, rating))
            splits[split][user] = questions
    return write_splits(out, name="movielens-ratings", data_format="LaMP-3", source=SOURCE, splits=splits)


def read_interactions() -> list[Interaction]:
    """Every MovieLens 100k rating as an interaction (user, movie, timestamp, rating)."""
    return [Interaction(user, movie, float(timestamp), rating)
            for user, ratings in read_ratings().items() for timestamp, movie, rating in ratings]


def build_movielens_next(out: str | Path, *, interactions: str | Path | None = None, items: str | Path | None = None,
                         negatives: int = NEGATIVES, seed: int = 0, max_users: int | None = None) -> BuildReport:
    """Next-item ranking per user, leave-last-out (MovieLens 100k via recbole, or your CSVs).

    With neither file: MovieLens 100k (the movie is ``Title (year), genres: ...``, each
    question carries the user's age, gender and occupation). With ``interactions`` (a
    ``user,item,timestamp[,rating]`` CSV) and ``items`` (an ``item,title`` CSV): those
    instead. The layout is :mod:`tailor.data.interactions`'."""
    if (interactions is None) != (items is None):
        raise BuildOptionError("give both --interactions (user,item,timestamp[,rating]) and --items (item,title), "
                               "or neither for MovieLens 100k")
    if interactions is not None and items is not None:
        return build_next_item(out, read_interactions_csv(interactions), read_items_csv(items), name="movielens-next",
                               source=f"{interactions} with {items}", negatives=negatives, seed=seed,
                               max_users=max_users)
    attributes = {row["user_id"]: {name: row.get(name, "") for name in ("age", "gender", "occupation")}
                  for row in _atomic_rows("ml-100k.user")}
    titles = {row["item_id"]: _title(row.get("movie_title", "").strip()) for row in _atomic_rows("ml-100k.item")}
    return build_next_item(out, read_interactions(), read_movie_descriptions(), name="movielens-next", source=SOURCE,
                           negatives=negatives, seed=seed, max_users=max_users, attributes=attributes, titles=titles,
                           question="Which movie will this user watch next?")
