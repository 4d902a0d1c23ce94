"""A method typed without --k or a layout gets the task's measured defaults."""

from __future__ import annotations

import json
from pathlib import Path

from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.tasks import get_task

FIXTURES = Path(__file__).parents[1] / "fixtures" / "lamp"


def retrieved_counts(out: Path, method: str) -> list[int]:
    rows = [json.loads(line) for line in (out / "predictions" / f"{method}.jsonl").read_text().splitlines()]
    return [len(row["retrieved"]) for row in rows]


def test_eval_without_k_takes_the_tasks_default_and_records_it(tmp_path: Path) -> None:
    task = get_task("commits")
    assert (task.k, task.layout) == (2, "dialogue")  # measured on the train split (tasks/__init__.py)
    out = tmp_path / "run"
    report = evaluate(EvalConfig(task="commits", data=str(FIXTURES / "LaMP_6"), split="dev", methods=("bm25",),
                                 backend="echo", out=str(out)), progress=None)
    assert report.config["k"] == 2
    assert json.loads((out / "results.json").read_text())["config"]["k"] == 2
    # The fixture's two questions hold 2 and 1 earlier items: k=2 takes all of them.
    assert retrieved_counts(out, "bm25") == [2, 1]


def test_an_explicit_k_wins_over_the_tasks_default(tmp_path: Path) -> None:
    out = tmp_path / "run"
    report = evaluate(EvalConfig(task="commits", data=str(FIXTURES / "LaMP_6"), split="dev", methods=("bm25",),
                                 backend="echo", k=1, out=str(out)), progress=None)
    assert report.config["k"] == 1
    assert retrieved_counts(out, "bm25") == [1, 1]


def test_lamp_tasks_keep_lamps_k_of_one() -> None:
    assert {get_task(name).k for name in ("LaMP-1", "LaMP-4", "LaMP-6", "news-headlines")} == {1}
