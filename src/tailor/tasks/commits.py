"""``commits``: a commit's subject from its body, per author, from any git history
(``tailor data build commits --repo PATH``, :func:`tailor.data.commits.build_commits`;
LaMP-6's file layout)."""

from __future__ import annotations

from tailor.data.commits import build_commits
from tailor.tasks.lamp import TitledTextTask

# Layout and k measured on the train split of pytest's history (first 48 questions, ROUGE-1;
# docs/results.md, "commits"): none 0.077; k=1 lamp 0.061, dialogue 0.129; k=2 lamp 0.091,
# dialogue 0.141. k=4 and 8 were not measured yet.
COMMITS = TitledTextTask(
    name="commits", kind="generation", max_new_tokens=24, data_format="LaMP-6", layout="dialogue", k=2,
    instruction="Answer with the commit subject line only, on one line, without quotes or explanation.",
    query_marker="commit message:", document_fields=("title", "text"),
    title_noun="subject", turn_prompt="Generate a subject for the following commit message: ",
    context_header="Subjects this author wrote for earlier commits:",
    builder=build_commits, users_are="authors",
)
