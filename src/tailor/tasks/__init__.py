"""Task specs by name: the LaMP tasks and tailor's own packaged real-data tasks."""

from __future__ import annotations

from tailor.registry import Registry
from tailor.task_names import normalize_task_name
from tailor.tasks.base import TaskKind, TaskSpec
from tailor.tasks.lamp import LAMP_TASKS, TitledTextTask
from tailor.tasks.own import PACKAGED_TASKS

# tailor's own tasks, built from packaged real data by ``tailor data build``.
OWN_TASKS: dict[str, TaskSpec] = {
    # Layout and k measured on the train split (first 48, docs/results.md, "news-headlines,
    # the whole dev split"): none 0.213; k=1 lamp 0.198, dialogue 0.169; k=2 lamp 0.188,
    # dialogue 0.198. No choice beats none; the LaMP layout with k=1 stays.
    "news-headlines": TitledTextTask(
        name="news-headlines", kind="generation", max_new_tokens=24, data_format="LaMP-4",
        instruction="Answer with the headline only, on one line, without quotes or explanation.",
        query_marker="article:", document_fields=("title", "text"),
        title_noun="headline", turn_prompt="Generate a headline for the following article: ",
        context_header="Headlines this outlet wrote for earlier articles:",
    ),
    # A commit's subject from its body, per author: any git history (`tailor data build commits`).
    # Layout and k measured on the train split of pytest's history (first 48 questions, ROUGE-1;
    # docs/results.md, "commits"): none 0.077; k=1 lamp 0.061, dialogue 0.129; k=2 lamp 0.091,
    # dialogue 0.141. k=4 and 8 were not measured yet.
    "commits": TitledTextTask(
        name="commits", kind="generation", max_new_tokens=24, data_format="LaMP-6", layout="dialogue", k=2,
        instruction="Answer with the commit subject line only, on one line, without quotes or explanation.",
        query_marker="commit message:", document_fields=("title", "text"),
        title_noun="subject", turn_prompt="Generate a subject for the following commit message: ",
        context_header="Subjects this author wrote for earlier commits:",
    ),
    **PACKAGED_TASKS,  # tweets, movielens-ratings, debates
}

TASKS: dict[str, TaskSpec] = {**LAMP_TASKS, **OWN_TASKS}


TASK_PLUGINS = Registry("task", {}, group="tailor.tasks")
"""Tasks that packages add: each entry is a :class:`TaskSpec` (entry point ``tailor.tasks``),
taken by every command that takes ``--task``."""


def get_task(name: str) -> TaskSpec:
    """The task spec for ``name`` (``LaMP-4``, ``LaMP_4`` and ``lamp-4`` alike), or one a
    package adds (:data:`TASK_PLUGINS`)."""
    if name in OWN_TASKS:
        return OWN_TASKS[name]
    try:
        canonical = normalize_task_name(name)
    except ValueError:
        if name in TASK_PLUGINS:
            task = TASK_PLUGINS.load(name)
            if not isinstance(task, TaskSpec):
                raise TypeError(f"task {name!r} of entry point group tailor.tasks is not a TaskSpec") from None
            return task
        valid = [*TASKS, *TASK_PLUGINS.names()]
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(valid)}") from None
    return TASKS[canonical]


__all__ = ["OWN_TASKS", "TASKS", "TASK_PLUGINS", "TaskKind", "TaskSpec", "get_task"]
