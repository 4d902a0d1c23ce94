"""A task a package adds by entry point is a task everywhere one is taken, with its own file
format, its own metric and its own data set builder, and without editing tailor."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import tailor.tasks
from tailor.cli.main import main
from tailor.tasks import get_task, task_registry

PLUGIN = '''
"""Slogans: the slogan a shop writes for a product, from the shop's earlier slogans.

Each split is one JSON-lines file, ``{split}.jsonl``: one object per question with ``id``,
``shop``, ``product``, ``slogan`` (the gold) and ``earlier`` (the shop's earlier slogans).
Predictions and golds files are JSON lines of ``{"id", "slogan"}``.
"""
import json
from dataclasses import dataclass
from pathlib import Path

from tailor.data.packaged.build import BuildReport
from tailor.metrics import Metric
from tailor.tasks.spec import TaskSpec
from tailor.types import HistoryRecord, Profile, TaskExample

EXACT_MATCH = Metric.per_example(
    "exact-match", "1 when the answer is the gold slogan, case aside",
    lambda prediction, gold: float(prediction.strip().lower() == gold.strip().lower()))


@dataclass(frozen=True)
class SloganTask(TaskSpec):
    def load(self, folder, split="dev", *, limit=None):
        examples = []
        for line in Path(folder, f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            records = tuple(HistoryRecord(id=f"{row['id']}-{i}", fields={"text": text})
                            for i, text in enumerate(row["earlier"]))
            examples.append(TaskExample(id=row["id"], user_id=row["shop"], input="product: " + row["product"],
                                        profile=Profile(row["shop"], records), gold=row.get("slogan")))
        return examples if limit is None else examples[:limit]

    def write_predictions(self, path, predictions):
        pairs = predictions.items() if isinstance(predictions, dict) else predictions
        Path(path).write_text("".join(json.dumps({"id": i, "slogan": s}) + "\\n" for i, s in pairs),
                              encoding="utf-8")

    def read_outputs(self, path):
        rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
        return {row["id"]: row["slogan"] for row in rows}


def build_slogans(out, *, shops=2):
    """Slogans of made-up shops, in JSON lines."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"{shop}-{product}", "shop": f"shop{shop}", "product": product, "slogan": product,
             "earlier": [f"shop{shop} loves {p}" for p in ("tea", "cake")]}
            for shop in range(shops) for product in ("fresh bread", "hot soup", "cold milk")]
    (out / "dev.jsonl").write_text("".join(json.dumps(row) + "\\n" for row in rows), encoding="utf-8")
    return BuildReport("slogans", "slogans", str(out), {"dev": len(rows)}, shops, "made up")


SLOGANS = SloganTask(name="slogans", kind="generation", instruction="Answer with the slogan only.",
                     query_marker="product:", document_fields=("text",), max_new_tokens=4, k=1,
                     metrics=(EXACT_MATCH, "rouge-1"), builder=build_slogans)
RECIPES = TaskSpec(name="recipes", kind="generation", instruction="Answer with a dish.",
                   query_marker="", document_fields=("text",), k=2)
NOT_A_TASK = object()
'''


@pytest.fixture()
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plug-in module and its dist-info (entry points) on the path; the task registry
    swapped for a fresh one, so that it reads the entry points again."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "tailor_test_task.py").write_text(PLUGIN)
    dist_info = site / "tailor_test_task-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: tailor-test-task\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[tailor.tasks]\nslogans = tailor_test_task:SLOGANS\nrecipes = tailor_test_task:RECIPES\n"
        "broken = tailor_test_task:NOT_A_TASK\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(tailor.tasks, "TASKS", task_registry())
    yield tmp_path
    sys.modules.pop("tailor_test_task", None)


def test_a_task_added_by_entry_point_is_found_by_name(plugin: Path) -> None:
    task = get_task("recipes")
    assert task.name == "recipes" and task.k == 2
    assert get_task("lamp_4").name == "LaMP-4"  # built-ins as before
    with pytest.raises(TypeError, match="not a TaskSpec"):
        get_task("broken")
    with pytest.raises(ValueError, match="valid tasks: .*recipes"):
        get_task("nope")


def test_a_task_with_its_own_format_and_metric_runs_in_eval_and_score(
        plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run = plugin / "data", plugin / "run"
    assert main(["data", "build", "slogans", "--out", str(data)]) == 0
    assert "built slogans" in capsys.readouterr().out
    assert main(["eval", "--task", "slogans", "--data", str(data), "--backend", "echo", "--method", "none,bm25",
                 "--out", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "slogans" and report["n"] == 6
    for result in report["results"]:
        assert list(result["metrics"]) == ["exact-match", "rouge-1"]
        low, high = result["ci95"]["exact-match"]
        assert 0.0 <= low <= result["metrics"]["exact-match"] <= high <= 1.0
    assert "exact-match" in report["results"][1]["versus_none"]
    # Predictions are written in the task's own format, and `tailor score` reads and scores them with it.
    written = [json.loads(line) for line in (run / "none_outputs.json").read_text(encoding="utf-8").splitlines()]
    assert {row["id"] for row in written} == {f"{shop}-{product}" for shop in range(2)
                                             for product in ("fresh bread", "hot soup", "cold milk")}
    golds = plugin / "golds.jsonl"
    golds.write_text("".join(json.dumps({"id": row["id"], "slogan": row["slogan"]}) + "\n" for row in written),
                     encoding="utf-8")
    assert main(["score", "--task", "slogans", "--golds", str(golds), "--preds", str(run / "none_outputs.json"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"task": "slogans", "n": 6,
                                                   "metrics": {"exact-match": 1.0, "rouge-1": 1.0}}
    # Against the data's golds, `tailor score` gives what `tailor eval` reported.
    (plugin / "dev_golds.jsonl").write_text("".join(
        json.dumps({"id": json.loads(line)["id"], "slogan": json.loads(line)["slogan"]}) + "\n"
        for line in (data / "dev.jsonl").read_text(encoding="utf-8").splitlines()), encoding="utf-8")
    assert main(["score", "--task", "slogans", "--golds", str(plugin / "dev_golds.jsonl"),
                 "--preds", str(run / "none_outputs.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"] == report["results"][0]["metrics"]


def test_a_task_with_a_builder_is_a_data_set(plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert "slogans\tSlogans of made-up shops, in JSON lines." in listed
    assert not any(line.startswith(("recipes", "LaMP-")) for line in listed)  # no builder, no data set
    # An option the builder does not take is refused, naming it.
    assert main(["data", "build", "slogans", "--out", str(plugin / "x"), "--min-commits", "3"]) == 2
    assert "takes no option 'min_commits' (its options: shops)" in capsys.readouterr().err


def test_the_task_help_lists_the_registry(plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "slogans" in help_text and "LaMP-2N" in help_text and "news-headlines" in help_text
