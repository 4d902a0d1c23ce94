"""LaMP task names, their label sets, and the kind of metric each task is scored with."""

from __future__ import annotations

from typing import Literal

from tailor.task_names import normalize_task_name

MetricKind = Literal["classification", "rating", "generation"]

_NEWS_CATEGORIES: tuple[str, ...] = (
    "women",
    "religion",
    "politics",
    "style & beauty",
    "entertainment",
    "culture & arts",
    "sports",
    "science & technology",
    "travel",
    "business",
    "crime",
    "education",
    "healthy living",
    "parents",
    "food & drink",
)

_MOVIE_TAGS: tuple[str, ...] = (
    "sci-fi",
    "based on a book",
    "comedy",
    "action",
    "twist ending",
    "dystopia",
    "dark comedy",
    "classic",
    "psychology",
    "fantasy",
    "romance",
    "thought-provoking",
    "social commentary",
    "violence",
    "true story",
)

# The order of each tuple is the official evaluator's label order; macro-F1 does not depend on
# it, but predictions are mapped to these indices, so keep it stable.
LAMP_LABELS: dict[str, tuple[str, ...]] = {
    "LaMP-1": ("[1]", "[2]"),
    # Plain "LaMP-2" is the movie-tagging version (the one the current LaMP release ships).
    "LaMP-2": _MOVIE_TAGS,
    "LaMP-2M": _MOVIE_TAGS,
    "LaMP-2N": _NEWS_CATEGORIES,
    # Scored as numbers, not labels; listed so prompts and parsers can show the valid outputs.
    "LaMP-3": ("1", "2", "3", "4", "5"),
}

LAMP_TASK_KINDS: dict[str, MetricKind] = {
    "LaMP-1": "classification",
    "LaMP-2": "classification",
    "LaMP-2N": "classification",
    "LaMP-2M": "classification",
    "LaMP-3": "rating",
    "LaMP-4": "generation",
    "LaMP-5": "generation",
    "LaMP-6": "generation",
    "LaMP-7": "generation",
}

LAMP_TASKS: tuple[str, ...] = tuple(LAMP_TASK_KINDS)


def task_kind(name: str) -> MetricKind:
    """Return the kind of metric a LaMP task is scored with."""
    return LAMP_TASK_KINDS[normalize_task_name(name)]
