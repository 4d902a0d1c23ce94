"""End to end: `tailor eval` with the real default model on LaMP-format data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailor.cli.main import main
from tailor.data.lamp import read_outputs

pytestmark = pytest.mark.model
FIXTURES = Path(__file__).parents[1] / "fixtures" / "lamp"


def test_eval_lamp_6_with_the_default_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(["eval", "--task", "LaMP-6", "--data", str(FIXTURES / "LaMP_6"), "--split", "dev",
                 "--method", "none,bm25", "--out", str(out), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["task"] == "LaMP-6" and data["n"] == 2
    assert [r["method"] for r in data["results"]] == ["none", "bm25"]
    for result in data["results"]:
        assert 0.0 <= result["metrics"]["rouge-1"] <= 1.0
        assert result["seconds"] > 0
    _, predictions = read_outputs(out / "bm25_outputs.json")
    # The model answered: a one-line subject, not empty, not the whole email.
    assert all(p and "\n" not in p and len(p.split()) <= 24 for p in predictions.values())
    rows = [json.loads(line) for line in (out / "predictions" / "bm25.jsonl").read_text().splitlines()]
    assert all(row["retrieved"] for row in rows)


def test_eval_classification_with_likelihood_scoring(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--task", "LaMP-2M", "--data", str(FIXTURES / "LaMP_2M"), "--method", "none,bm25",
                 "--scoring", "likelihood", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["method"] for r in data["results"]} == {"none", "bm25"}
    assert all(0.0 <= r["metrics"]["accuracy"] <= 1.0 for r in data["results"])
