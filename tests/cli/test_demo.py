"""`tailor demo`: builds a packaged task, compares the methods, says what the difference is."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from tailor.cli.demo import converts_model, demo_verdicts
from tailor.cli.main import main


def _result(method: str, n: int = 200, **paired: Any) -> SimpleNamespace:
    versus = {"rouge-1": paired} if paired else {}
    return SimpleNamespace(method=method, n=n, metrics={"rouge-1": 0.04}, versus_none=versus)


def test_a_verdict_follows_the_paired_interval() -> None:
    report = SimpleNamespace(results=[
        _result("none"),
        _result("bm25", delta=0.02, low=0.01, high=0.03),
        _result("dense", delta=-0.02, low=-0.03, high=-0.01),
        _result("hybrid", delta=0.01, low=-0.01, high=0.03),
    ])
    lines = demo_verdicts(report)
    assert lines[0] == "bm25 vs none: rouge-1 +0.0200 [+0.0100, +0.0300] (+50%), n=200: personalization helps"
    assert lines[1].endswith("personalization hurts")
    assert lines[2].endswith("no measurable difference (the interval contains 0)")


def test_for_an_error_metric_lower_is_the_better_side() -> None:
    report = SimpleNamespace(results=[
        SimpleNamespace(method="none", n=50, metrics={"mae": 1.2}, versus_none={}),
        SimpleNamespace(method="bm25", n=50, metrics={"mae": 1.1},
                        versus_none={"mae": {"delta": -0.1, "low": -0.15, "high": -0.05}}),
    ])
    assert demo_verdicts(report)[0].endswith("personalization helps")


def test_demo_runs_a_packaged_task_end_to_end(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--task", "tweets", "--n", "8", "--backend", "echo", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "built tweets" in out and "accounts" in out
    assert "bm25 vs none: rouge-1" in out and "n=8" in out
    assert (tmp_path / "eval-tweets-n8" / "results.json").exists()
    assert "converts" not in out  # the echo backend has no model to convert


def test_demo_shows_two_examples_side_by_side(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--n", "6", "--backend", "echo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    shown = out.split("What bm25 changed, on two questions chosen by a rule (")[1]
    assert shown.startswith("the question where bm25's rouge-1 gains most over none's, and a typical one")
    assert "[1] largest gain of bm25 over none: rouge-1" in shown and "[2] typical (median gain" in shown
    saved = {method: {row["id"]: row for row in map(json.loads, (tmp_path / "eval-tweets-n6" / "predictions" /
                                                               f"{method}.jsonl").read_text().splitlines())}
             for method in ("none", "bm25")}
    for block in shown.split("\n\n")[1:3]:
        lines = block.splitlines()
        assert [line.split()[0] for line in lines[1:]] == ["input", "retrieved", "gold", "none", "bm25"]
        question = lines[0].rsplit("question ", 1)[1].rstrip(")")
        assert lines[2].split()[1:5] == ["by", "bm25,", "1st", "of"] and len(saved["bm25"][question]["retrieved"]) == 4
        for line, method in zip(lines[4:], ("none", "bm25")):
            answer = line.split(None, 1)[1].rsplit("   [", 1)[0]
            assert answer == " ".join(saved[method][question]["output"].split())


def test_demo_json_carries_the_examples(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--n", "4", "--backend", "echo", "--out", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in data["results"]] == ["none", "bm25"]
    assert len(data["examples"]) == 2
    example = data["examples"][0]
    assert set(example["answers"]) == {"none", "bm25"} and example["retrieved"] and example["gold"]
    assert example["why"].startswith("largest gain of bm25 over none")


@pytest.mark.parametrize(("backend", "converts"), [
    ("default", True), ("default:fp32", True), ("default-fp32", True), ("default-onnx:int4", True),
    ("ray:2:default", True), ("echo", False), ("transformers:/models/x", False), ("openai:http://h/v1", False),
    ("ray:2:echo", False), ("llamacpp:/m.gguf", False),
])
def test_only_the_default_models_engines_convert(backend: str, converts: bool) -> None:
    assert converts_model(backend) is converts


def test_demo_runs_only_a_packaged_task_and_names_its_users(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--task", "LaMP-4", "--backend", "echo", "--out", str(tmp_path)]) == 1
    assert "tailor data list" in capsys.readouterr().err
    assert main(["demo", "--task", "debates", "--backend", "echo", "--n", "4", "--out", str(tmp_path)]) == 0
    assert " candidates, " in capsys.readouterr().out  # the task's own name for its users
