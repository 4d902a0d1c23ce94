"""``movielens-ratings``: the rating (1-5) a user gives a movie, from their earlier ratings
(recbole's MovieLens 100k, built by :func:`tailor.data.packaged.movielens.build_movielens_ratings`;
LaMP-3's file layout).

The turn prompt is the phrase the data set's inputs start with, so that an item replayed as
an earlier exchange (the dialogue layout) reads exactly like the real question.
"""

from __future__ import annotations

from dataclasses import dataclass

from tailor.data.packaged.movielens import build_movielens_ratings
from tailor.tasks.lamp import RatingTask
from tailor.types import HistoryRecord


@dataclass(frozen=True)
class MovieRatingTask(RatingTask):
    """The rating (1-5) a user gives a movie; items are the user's earlier ratings."""

    turn_prompt: str = ("What rating from 1 to 5 would this user give the following movie? "
                        "Answer with a single number. movie: ")

    def render_item(self, record: HistoryRecord) -> str:
        return f'{record.fields.get("score", "")} is the rating this user gave "{record.fields.get("text", "")}"'

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        return self.turn_prompt + record.fields.get("text", ""), record.fields.get("score", "")


MOVIELENS_RATINGS = MovieRatingTask(
    name="movielens-ratings", kind="rating", labels=("1", "2", "3", "4", "5"), max_new_tokens=4,
    data_format="LaMP-3",
    instruction="Answer with a single number from 1 to 5, without explanation.",
    query_marker="movie:", document_fields=("text",),
    context_header="Ratings this user gave to earlier movies:",
    builder=build_movielens_ratings,
)
