"""benchmarks/budgets.py, the command that rebuilds the prompt budgets' quality table: its
budgets parsed with clear errors, and every budget run on the same questions, the first one
the reference of the paired differences."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "fixtures" / "lamp" / "LaMP_4"


def budgets_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("budgets_benchmark", ROOT / "benchmarks" / "budgets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_budgets_are_parsed_and_bad_ones_named() -> None:
    budgets = budgets_module()
    assert budgets.parse_budgets("384/384, 256/128") == [(384, 384), (256, 128)]
    for bad in ("384", "384/", "a/128", "4/128"):
        with pytest.raises(ValueError, match=repr(bad)):
            budgets.parse_budgets(f"384/384,{bad}")


def test_every_budget_runs_on_the_same_questions_paired_against_the_first(tmp_path: Path) -> None:
    budgets = budgets_module()
    rows = budgets.run_task("LaMP-4", DATA, tmp_path, [(384, 384), (16, 8)], n=50, method="bm25", backend="echo")
    assert [row["budget"] for row in rows] == ["384/384", "16/8"]
    assert rows[0]["n"] == rows[1]["n"] > 0
    assert "delta" not in rows[0] and rows[1]["low"] <= rows[1]["delta"] <= rows[1]["high"]
    assert 0.0 <= rows[1]["same_text"] <= 1.0
    assert (tmp_path / "LaMP-4" / "budget-16-8" / "results.json").is_file()
