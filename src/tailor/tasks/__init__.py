"""Tasks by name: every task a command takes with ``--task`` is one declaration (a
:class:`TaskSpec`) registered in :data:`TASKS`, the built-ins exactly as a package's.

A task's declaration owns its data (file format, and for a packaged task the builder of its
data set), its prompts and answer parsing, its metrics and its defaults (``k``, ``layout``).
A new task is one module holding its declaration plus one entry: here for a built-in, in
the entry point group ``tailor.tasks`` for a package's. The LaMP tasks are one table
(:mod:`tailor.tasks.lamp`); the chat task ``tailor serve`` personalizes
(:mod:`tailor.tasks.chat`) has no data set to evaluate on and is not registered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tailor.data.packaged.build import BuildReport
from tailor.registry import Registry, UnknownNameError
from tailor.tasks.lamp import canonical_name
from tailor.tasks.spec import TaskKind, TaskSpec

BUILT_IN_TASKS: dict[str, str] = {
    "LaMP-1": "tailor.tasks.lamp:LAMP_1",
    "LaMP-2": "tailor.tasks.lamp:LAMP_2",
    "LaMP-2N": "tailor.tasks.lamp:LAMP_2N",
    "LaMP-2M": "tailor.tasks.lamp:LAMP_2M",
    "LaMP-3": "tailor.tasks.lamp:LAMP_3",
    "LaMP-4": "tailor.tasks.lamp:LAMP_4",
    "LaMP-5": "tailor.tasks.lamp:LAMP_5",
    "LaMP-6": "tailor.tasks.lamp:LAMP_6",
    "LaMP-7": "tailor.tasks.lamp:LAMP_7",
    "LongLaMP-2": "tailor.tasks.longlamp:LONGLAMP_2",
    "LongLaMP-3": "tailor.tasks.longlamp:LONGLAMP_3",
    "LongLaMP-4": "tailor.tasks.longlamp:LONGLAMP_4",
    "news-headlines": "tailor.tasks.news_headlines:NEWS_HEADLINES",
    "news-openings": "tailor.tasks.news_openings:NEWS_OPENINGS",
    "commits": "tailor.tasks.commits:COMMITS",
    "tweets": "tailor.tasks.tweets:TWEETS",
    "movielens-ratings": "tailor.tasks.movielens_ratings:MOVIELENS_RATINGS",
    "debates": "tailor.tasks.debates:DEBATES",
    "preference": "tailor.tasks.preference:PREFERENCE",
    "movielens-next": "tailor.tasks.next_item:MOVIELENS_NEXT",
    "movielens-next-full": "tailor.tasks.next_item:MOVIELENS_NEXT_FULL",
}
"""tailor's own tasks, as ``"module:attribute"`` entries like a package's entry points."""


def task_registry() -> Registry:
    """A registry of the built-in tasks and those packages add (entry points read anew)."""
    # LaMP names are taken in any spelling normalize_task_name accepts (LaMP_4, lamp4).
    return Registry("task", BUILT_IN_TASKS, group="tailor.tasks", canonical=canonical_name)


TASKS = task_registry()
"""Every task by name: the built-ins and those packages add (entry point group ``tailor.tasks``)."""


def get_task(name: str) -> TaskSpec:
    """The task registered as ``name`` (LaMP names in any spelling: ``LaMP-4``, ``LaMP_4``,
    ``lamp-4``); unknown names fail listing the valid ones."""
    try:
        task = TASKS.load(name)
    except UnknownNameError:
        raise UnknownNameError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS.names())}") from None
    if not isinstance(task, TaskSpec):
        raise TypeError(f"task {name!r} of entry point group tailor.tasks is not a TaskSpec")
    return task


def data_sets() -> list[TaskSpec]:
    """The tasks that build their own data set (``tailor data list``), by name."""
    # An entry that is no task (get_task refuses it by name) has no data set either.
    loaded = [TASKS.load(name) for name in TASKS.names()]
    return [task for task in loaded if isinstance(task, TaskSpec) and task.builder is not None]


def build_dataset(name: str, out: str | Path, **options: Any) -> BuildReport:
    """Build the data set of task ``name`` into ``out``; ``options`` go to its builder."""
    if name in TASKS and get_task(name).builder is not None:
        return get_task(name).build(out, **options)
    raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(task.name for task in data_sets())}")


__all__ = ["BUILT_IN_TASKS", "TASKS", "TaskKind", "TaskSpec", "build_dataset", "data_sets", "get_task",
           "task_registry"]
