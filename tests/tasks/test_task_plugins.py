"""A task a package adds by entry point is a task everywhere one is taken."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import tailor.tasks
from tailor.registry import Registry
from tailor.tasks import get_task


def test_a_task_added_by_entry_point_is_found_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tailor_test_task.py").write_text(
        "from tailor.tasks.base import TaskSpec\n"
        "RECIPES = TaskSpec(name='recipes', kind='generation', instruction='Answer with a dish.',\n"
        "                   query_marker='', document_fields=('text',), k=2)\n"
        "NOT_A_TASK = object()\n")
    dist_info = tmp_path / "tailor_test_task-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: tailor-test-task\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[tailor.tasks]\nrecipes = tailor_test_task:RECIPES\nbroken = tailor_test_task:NOT_A_TASK\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(tailor.tasks, "TASK_PLUGINS", Registry("task", {}, group="tailor.tasks"))
    task = get_task("recipes")
    assert task.name == "recipes" and task.k == 2
    assert get_task("lamp_4").name == "LaMP-4"  # built-ins first
    with pytest.raises(TypeError, match="not a TaskSpec"):
        get_task("broken")
    with pytest.raises(ValueError, match="valid tasks: .*recipes"):
        get_task("nope")
    monkeypatch.delitem(sys.modules, "tailor_test_task")
