"""tailor report: Markdown tables and figures from saved runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailor.backends.echo import EchoBackend
from tailor.cli.main import main
from tailor.evaluation.plots import differences, load_run, markdown_table, per_example_metric, versus_table
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


def _generation_run(tmp_path: Path, task: str, methods: tuple[str, ...]) -> Path:
    out = tmp_path / task
    evaluate(EvalConfig(task=task, data=str(FIXTURES / task.replace("-", "_")), methods=methods, backend="echo",
                        out=str(out), n_resamples=50), backend=EchoBackend(), progress=None)
    return out


def test_summary_puts_every_task_in_one_table_per_metric(run: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    headlines = _generation_run(tmp_path, "LaMP-4", ("none", "bm25", "recency"))
    assert main(["report", "--summary", str(run), str(headlines)]) == 0
    out = capsys.readouterr().out
    ratings, generation = out.strip().split("\n\n**rouge-1**")
    assert ratings.startswith("**mae** (lower is better): each method's value, then its paired difference against "
                              "`none` [95% bootstrap interval]; bold where the interval excludes 0 on the better side.")
    loaded = load_run(headlines)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in generation.splitlines() if line.startswith("| ")}
    assert rows["method"] == "| method | LaMP-4 (n=3) |"
    none, bm25 = loaded.results["results"][0], loaded.results["results"][1]
    assert rows["none"] == f"| none | {none['metrics']['rouge-1']:.4f} |"
    paired = bm25["versus_none"]["rouge-1"]
    assert rows["bm25"] == (f"| bm25 | {bm25['metrics']['rouge-1']:.4f}, "
                            f"{paired['delta']:+.3f} [{paired['low']:+.3f}, {paired['high']:+.3f}] |")
    assert "Split dev; model echo; engine echo; tailor " in generation


def test_summary_takes_each_runs_baseline_from_versus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    headlines = _generation_run(tmp_path, "LaMP-4", ("none", "bm25"))
    titles = _generation_run(tmp_path, "LaMP-5", ("none", "recency", "bm25"))
    assert main(["report", "--summary", "--versus", "recency", str(headlines), str(titles)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "against the baseline its column names" in lines[0]
    assert lines[2] == "| method | LaMP-4 (n=3, vs none) | LaMP-5 (n=2, vs recency) |"
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in lines if line.startswith("| ")}
    # LaMP-5's none and bm25 are compared with recency, from the saved predictions.
    against_recency = differences(load_run(titles), ["recency"])["recency"]
    for method in ("none", "bm25"):
        paired = against_recency[method]
        assert f"{paired['delta']:+.3f} [{paired['low']:+.3f}, {paired['high']:+.3f}]" in rows[method][1]
    assert rows["recency"][1].endswith("(baseline) |")
    assert rows["none"][0].endswith("(baseline)") and rows["recency"][0] == ""


def test_summary_bolds_only_a_difference_on_the_better_side() -> None:
    from tailor.evaluation.plots import _summary_cell

    assert _summary_cell(False, 0.5, {"delta": 0.1, "low": 0.05, "high": 0.15}) == "0.5000, **+0.100 [+0.050, +0.150]**"
    assert _summary_cell(False, 0.3, {"delta": -0.1, "low": -0.15, "high": -0.05}) == "0.3000, -0.100 [-0.150, -0.050]"
    assert _summary_cell(True, 0.9, {"delta": -0.1, "low": -0.15, "high": -0.05}) == "0.9000, **-0.100 [-0.150, -0.050]**"
    assert _summary_cell(True, 0.9, {"delta": -0.1, "low": -0.15, "high": 0.05}) == "0.9000, -0.100 [-0.150, +0.050]"


def test_summary_refuses_figures(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--summary", str(run), "--figures", str(tmp_path / "f")]) == 2
    assert "--figures draws one run's plots" in capsys.readouterr().err
