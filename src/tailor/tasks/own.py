"""Task specs for tailor's own packaged real-data tasks whose items LaMP's classes do not
render well: tweet completion, movie rating, debate replies (see :mod:`tailor.data.packaged`).

Each turn prompt is the phrase the data set's inputs start with, so that an item replayed
as an earlier exchange (the dialogue layout) reads exactly like the real question.
"""

from __future__ import annotations

from dataclasses import dataclass

from tailor.data.packaged.tweets import split_tweet
from tailor.tasks.base import TaskSpec
from tailor.tasks.lamp import RatingTask
from tailor.types import HistoryRecord


def _field(record: HistoryRecord, name: str) -> str:
    return record.fields.get(name, "")


@dataclass(frozen=True)
class TweetCompletionTask(TaskSpec):
    """The rest of a tweet, given its first half; items are the account's earlier tweets."""

    turn_prompt: str = "Complete the following tweet: "

    def render_item(self, record: HistoryRecord) -> str:
        return f'"{_field(record, "text")}"'

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        # Cut the earlier tweet where the questions are cut, so it demonstrates the task.
        head, tail = split_tweet(_field(record, "text"))
        return (self.turn_prompt + head, tail) if tail else None

    def long_field(self, record: HistoryRecord) -> str | None:
        return "text"


@dataclass(frozen=True)
class MovieRatingTask(RatingTask):
    """The rating (1-5) a user gives a movie; items are the user's earlier ratings."""

    turn_prompt: str = ("What rating from 1 to 5 would this user give the following movie? "
                        "Answer with a single number. movie: ")

    def render_item(self, record: HistoryRecord) -> str:
        return f'{_field(record, "score")} is the rating this user gave "{_field(record, "text")}"'

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        return self.turn_prompt + _field(record, "text"), _field(record, "score")


@dataclass(frozen=True)
class DebateReplyTask(TaskSpec):
    """The opening of a speaker's reply to the turn before it; items are the speaker's
    earlier utterances, each with the turn it replied to (``prompt``)."""

    turn_prompt: str = "Give this speaker's reply to the following debate turn: "

    def render_item(self, record: HistoryRecord) -> str:
        prompt = _field(record, "prompt")
        said = f'"{_field(record, "text")}"'
        return f'to "{prompt}" this speaker replied {said}' if prompt else said

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        prompt = _field(record, "prompt")
        return (self.turn_prompt + prompt, _field(record, "text")) if prompt else None

    def long_field(self, record: HistoryRecord) -> str | None:
        return "text"


PACKAGED_TASKS: dict[str, TaskSpec] = {
    # Layout and k measured on the train split (first 64, docs/results.md, "tweets"): none
    # 0.040; lamp k=1/2/4/8 0.083/0.089/0.065/0.076; dialogue 0.090/0.082/0.101/0.089.
    "tweets": TweetCompletionTask(
        name="tweets", kind="generation", max_new_tokens=32, data_format="LaMP-7", layout="dialogue", k=4,
        instruction="Answer with the words that finish the tweet only, on one line, without repeating its "
                    "beginning and without explanation.",
        query_marker="tweet:", document_fields=("text",),
        context_header="Earlier tweets by this account:",
    ),
    "movielens-ratings": MovieRatingTask(
        name="movielens-ratings", kind="rating", labels=("1", "2", "3", "4", "5"), max_new_tokens=4,
        data_format="LaMP-3",
        instruction="Answer with a single number from 1 to 5, without explanation.",
        query_marker="movie:", document_fields=("text",),
        context_header="Ratings this user gave to earlier movies:",
    ),
    # Layout and k measured on the train split (first 48, docs/results.md, "debates"): none
    # 0.0998; lamp k=1/2/4 0.115/0.096/0.098; dialogue 0.082/0.068/0.065. The LaMP layout with
    # k=1 stays.
    "debates": DebateReplyTask(
        name="debates", kind="generation", max_new_tokens=64, data_format="LaMP-7",
        instruction="Answer with the opening of the speaker's reply only, in their own words, on one line, "
                    "without quotes or explanation.",
        query_marker="turn:", document_fields=("prompt", "text"),
        context_header="Earlier replies by this speaker in the debates:",
    ),
}
