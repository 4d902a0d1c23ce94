"""The command line, run in-process through ``main(argv)``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tailor.cli.main import main
from tailor.data.lamp import write_outputs

FIXTURES = Path(__file__).parents[1] / "fixtures" / "lamp"


def test_eval_json_prints_one_object_in_the_contract_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--task", "LaMP-6", "--data", str(FIXTURES / "LaMP_6"), "--split", "dev",
                 "--method", "none,bm25", "--backend", "echo", "--out", str(tmp_path / "run"), "--json"])
    assert code == 0
    stdout = capsys.readouterr().out
    data = json.loads(stdout)  # one object and nothing else
    assert stdout.count("\n") == 1
    assert data["task"] == "LaMP-6" and data["split"] == "dev" and data["n"] == 2
    for result in data["results"]:
        assert set(result) >= {"method", "metrics", "ci95", "seconds"}
        assert set(result["metrics"]) >= {"rouge-1", "rouge-L"}
        assert all(len(interval) == 2 for interval in result["ci95"].values())
        assert result["engine"] == "echo"  # the engine that generated each method's outputs
    assert (tmp_path / "run" / "none_outputs.json").exists()
    saved = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    assert [r["engine"] for r in saved["results"]] == ["echo", "echo"]


def test_eval_table_on_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--task", "LaMP-3", "--data", str(FIXTURES / "LaMP_3"), "--method", "none,recency",
                 "--backend", "echo", "--scoring", "likelihood"])
    assert code == 0
    table = capsys.readouterr().out
    assert "mae (95% CI)" in table and "recency" in table and "lower is better" in table


def test_score_follows_the_official_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    golds = tmp_path / "golds.json"
    preds = tmp_path / "preds.json"
    write_outputs(golds, "LaMP-3", {"a": "1", "b": "3", "c": "5"})
    # "4 stars" is not a number: scored as the farther of 1 and 5 from the gold 3 (a tie -> 5).
    write_outputs(preds, "LaMP-3", {"a": "2", "b": "4 stars", "c": "5"})
    assert main(["score", "--task", "LaMP_3", "--golds", str(golds), "--preds", str(preds), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "LaMP-3" and result["n"] == 3
    assert result["metrics"]["mae"] == pytest.approx((1 + 2 + 0) / 3)
    assert result["metrics"]["rmse"] == pytest.approx(((1 + 4 + 0) / 3) ** 0.5)


def test_score_refuses_files_of_different_splits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    golds, preds = tmp_path / "golds.json", tmp_path / "preds.json"
    write_outputs(golds, "LaMP-4", {"a": "x", "b": "y"})
    write_outputs(preds, "LaMP-4", {"a": "x"})
    assert main(["score", "--task", "LaMP-4", "--golds", str(golds), "--preds", str(preds)]) == 1
    assert "no prediction for 1 gold id(s), first 'b'" in capsys.readouterr().err


def test_errors_say_what_and_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--task", "LaMP-4", "--data", str(tmp_path / "missing"), "--backend", "echo"]) == 1
    assert "missing" in capsys.readouterr().err
    assert main(["eval", "--task", "LaMP-9", "--data", str(tmp_path), "--backend", "echo"]) == 1
    assert "valid tasks" in capsys.readouterr().err
    assert main(["eval", "--task", "LaMP-4", "--data", str(FIXTURES / "LaMP_4"), "--backend", "nope"]) == 1
    assert "unknown backend 'nope'; valid names: default, default-fp32, default-onnx, echo" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "dev_questions.json").write_text('[{"id": "1", "profile": []}]')
    assert main(["eval", "--task", "LaMP-4", "--data", str(bad), "--backend", "echo"]) == 1
    err = capsys.readouterr().err
    assert "dev_questions.json" in err and "'1'" in err and "input" in err


def test_data_build_writes_a_lamp_format_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "build", "news-headlines", "--out", str(tmp_path / "news")]) == 0
    assert "9 users" in capsys.readouterr().out
    assert (tmp_path / "news" / "dev_questions.json").exists()


def test_light_import() -> None:
    """import tailor (and the CLI module) must not import torch, transformers, fastapi or ray."""
    code = ("import sys, tailor, tailor.cli.main, tailor.store, tailor.retrieval, tailor.metrics; "
            "heavy = [m for m in ('torch', 'transformers', 'fastapi', 'ray') if m in sys.modules]; "
            "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
