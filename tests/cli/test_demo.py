"""`tailor demo`: builds a packaged task, compares the methods, says what the difference is."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tailor.cli.main import demo_verdicts, main


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
