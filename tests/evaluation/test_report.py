"""tailor report: Markdown tables and figures from saved runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailor.backends.echo import EchoBackend
from tailor.cli.main import main
from tailor.evaluation.plots import load_run, markdown_table, per_example_metric, versus_table
from tailor.evaluation.runner import EvalConfig, evaluate

FIXTURES = Path(__file__).parents[1] / "fixtures" / "lamp"


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    evaluate(EvalConfig(task="LaMP-3", data=str(FIXTURES / "LaMP_3"), methods=("none", "bm25"), backend="echo",
                        scoring="likelihood", out=str(out), n_resamples=50), backend=EchoBackend(), progress=None)
    return out


def test_markdown_table_matches_results_json(run: Path) -> None:
    loaded = load_run(run)
    table = markdown_table(loaded).splitlines()
    assert table[0].startswith("| method | n | mae [95% CI] | rmse [95% CI] | Δ mae vs none")
    assert "lower is better" in table[0]
    mae = loaded.results["results"][1]["metrics"]["mae"]
    assert table[3].startswith(f"| bm25 | 2 | {mae:.4f} [")


def test_per_example_values_average_to_the_reported_metric(run: Path) -> None:
    loaded = load_run(run)
    for result in loaded.results["results"]:
        sizes, errors = per_example_metric(loaded, result["method"])
        assert errors.mean() == pytest.approx(result["metrics"]["mae"])
        assert list(sizes) == [2.0, 1.0]  # the fixture's two profiles


def test_report_command_writes_both_figures(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    figures = tmp_path / "figures"
    assert main(["report", str(run), "--figures", str(figures)]) == 0
    out = capsys.readouterr().out
    assert "### LaMP-3" in out
    for name in ("LaMP-3-by-method.png", "LaMP-3-by-profile-size.png"):
        assert (figures / name).read_bytes().startswith(b"\x89PNG")


def test_report_on_a_folder_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 1
    assert "results.json does not exist" in capsys.readouterr().err


def test_versus_compares_every_method_with_a_named_one(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loaded = load_run(run)
    table = versus_table(loaded, ["bm25"]).splitlines()
    assert table[0] == "| method | Δ mae vs bm25 [95% CI] (lower is better) |"
    # Against bm25, none's difference is bm25's against none with the sign turned.
    versus_none = loaded.results["results"][1]["versus_none"]["mae"]["delta"]
    assert table[2].startswith(f"| none | {-versus_none:+.4f} [")
    assert table[3] == "| bm25 | — |"
    assert main(["report", str(run), "--versus", "bm25,none"]) == 0
    assert "Δ mae vs bm25 [95% CI] (lower is better) | Δ mae vs none" in capsys.readouterr().out


def test_versus_names_the_methods_a_run_holds(run: Path) -> None:
    with pytest.raises(ValueError, match=r"holds no method lora\+bm25 \(it holds none, bm25\)"):
        versus_table(load_run(run), ["lora+bm25"])
