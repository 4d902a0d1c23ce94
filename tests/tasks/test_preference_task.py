"""The ``preference`` task: one example per user and prompt, scored by that user's reward,
and ``tailor simulate`` writes its folder."""

from __future__ import annotations

import json
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

pytest.importorskip("textstat")

from tailor.alignment.pairs import read_pairs, read_prompts
from tailor.cli.main import main
from tailor.tasks import get_task
from tailor.tasks.preference import user_of


def run(*argv: str) -> dict:
    out = StringIO()
    with redirect_stdout(out):
        assert main(list(argv)) == 0
    return json.loads(out.getvalue())


def test_simulate_writes_a_preference_folder_the_task_reads(tmp_path: Path) -> None:
    made = run("simulate", "users", "--n", "4", "--seed", "1", "--out", str(tmp_path), "--json")
    assert len(made["users"]) == 4
    counts = run("simulate", "pairs", "--users", str(tmp_path), "--prompts", "3", "--eval-prompts", "2",
                 "--backend", "echo", "--samples", "6", "--json")
    assert counts["users"] == 4 and counts["train_pairs"] == len(read_pairs(tmp_path / "train_pairs.jsonl"))
    assert all(p.chosen != p.rejected for p in read_pairs(tmp_path / "train_pairs.jsonl"))
    assert [p.id for p in read_prompts(tmp_path / "dev_prompts.jsonl")] == ["news-0003", "news-0004"]
    again = tmp_path / "again"
    run("simulate", "pairs", "--users", str(tmp_path), "--out", str(again), "--prompts", "3", "--eval-prompts", "2",
        "--backend", "echo", "--samples", "6", "--json")
    assert (again / "train_pairs.jsonl").read_text() == (tmp_path / "train_pairs.jsonl").read_text()

    task = get_task("preference")
    examples = task.load(tmp_path, "dev")
    assert len(examples) == 4 * 2 and examples[0].id == "sim-00/news-0003"
    assert examples[0].input.startswith(("Explain", "What", "Tell", "Give"))
    assert examples[0].profile.attributes["preference_expertise"] in ("plain", "expert")
    user = user_of(examples[0].gold or "")
    scores = task.score(["- one\n- two", "A plain short answer."], [examples[0].gold or ""] * 2)
    assert list(scores.columns["reward"]) == pytest.approx([user.reward("- one\n- two"),
                                                            user.reward("A plain short answer.")])
    assert task.parse("  - a\n- b  ") == "- a\n- b"
