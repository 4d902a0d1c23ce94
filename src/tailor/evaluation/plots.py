"""Figures and Markdown from saved evaluation runs (``tailor report``).

A run folder (``tailor eval --out``) holds ``results.json`` and per-method prediction
checkpoints with each example's profile size; the golds are read back from the data set
the run names. Two figures per run: the main metric by method with its 95% interval,
and the main metric by profile size (examples split into three equal groups). Across
runs, :func:`summary_table` puts every task's methods side by side.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tailor.evaluation.checkpoint import safe_name
from tailor.metrics import paired_comparison
from tailor.metrics.scores import PerExampleScores
from tailor.registry import require
from tailor.tasks import get_task


@dataclass(frozen=True)
class Run:
    folder: Path
    results: dict[str, Any]

    @property
    def task(self) -> str:
        return str(self.results["task"])

    @property
    def main_metric(self) -> str:
        return next(iter(self.results["results"][0]["metrics"]))

    def lower_is_better(self, metric: str) -> bool:
        """Whether a smaller value of ``metric`` is better, as the run's task's metric says."""
        return not get_task(self.results["config"]["task"]).metric(metric).higher_is_better


def load_run(folder: str | Path) -> Run:
    path = Path(folder) / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: pass a folder written by `tailor eval --out`")
    return Run(Path(folder), json.loads(path.read_text(encoding="utf-8")))


def prediction_rows(run: Run, method: str) -> dict[str, dict[str, Any]]:
    """``method``'s saved prediction rows (``output``, ``retrieved`` record ids, ...) by example id."""
    path = run.folder / "predictions" / f"{safe_name(method)}.jsonl"
    if not path.is_file():
        known = ", ".join(r["method"] for r in run.results["results"])
        raise FileNotFoundError(f"{path} does not exist: {run.folder} holds the methods {known}")
    rows = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                rows[row["id"]] = row
    return rows


def run_examples(run: Run) -> list[Any]:
    """The examples the run evaluated, read back from its data set, in file order."""
    config = run.results["config"]
    examples = get_task(config["task"]).load(config["data"], config["split"],
                                             limit=None if config.get("users") else config.get("limit"))
    if config.get("users"):
        wanted = set(config["users"])
        examples = [e for e in examples if e.user_id in wanted][:config.get("limit")]
    return examples


def method_scores(run: Run, method: str, examples: Sequence[Any] | None = None) -> PerExampleScores:
    """The per-example scores of ``method``'s saved predictions, on every example of the run
    (``examples``, when the caller has read them already)."""
    task = get_task(run.results["config"]["task"])
    rows = prediction_rows(run, method)
    examples = run_examples(run) if examples is None else examples
    missing = [e.id for e in examples if e.id not in rows]
    if missing:
        raise ValueError(f"{run.folder}: {method} has no prediction for {len(missing)} examples "
                         f"(first: {missing[0]}); finish the run first")
    return task.score([rows[e.id]["output"] for e in examples], [e.gold or "" for e in examples],
                      ids=[e.id for e in examples])


def differences(run: Run, baselines: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """For each of ``baselines`` (any methods of the run), the paired difference on the run's
    main metric (``delta``, ``low``, ``high``) of every other method against it, from the
    saved predictions, with the run's bootstrap settings."""
    config = run.results["config"]
    metric = run.main_metric
    methods = [r["method"] for r in run.results["results"]]
    unknown = [b for b in baselines if b not in methods]
    if unknown:
        raise ValueError(f"{run.folder} holds no method {', '.join(unknown)} (it holds {', '.join(methods)})")
    examples = run_examples(run)  # the data set, read once for every method
    scores = {m: method_scores(run, m, examples) for m in methods}
    return {baseline: {method: paired_comparison(scores[baseline], scores[method],
                                                 n_resamples=int(config.get("n_resamples", 1000)),
                                                 seed=int(config.get("seed", 0)))[metric]
                       for method in methods if method != baseline}
            for baseline in baselines}


def versus_table(run: Run, baselines: list[str]) -> str:
    """Paired differences on the run's main metric of every method against each of
    ``baselines`` (any methods of the run: ``bm25`` for ``lora+bm25``, ``user-mean``...),
    with the run's bootstrap settings."""
    metric = run.main_metric
    compared = differences(run, baselines)
    direction = "lower is better" if run.lower_is_better(metric) else "higher is better"
    header = ["method", *[f"Δ {metric} vs {b} [95% CI] ({direction})" for b in baselines]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in run.results["results"]:
        method = result["method"]
        cells = []
        for baseline in baselines:
            paired = compared[baseline].get(method)
            cells.append(f"{paired['delta']:+.4f} [{paired['low']:+.4f}, {paired['high']:+.4f}]" if paired else "—")
        lines.append("| " + " | ".join([method, *cells]) + " |")
    return "\n".join(lines)


def example_values(run: Run, method: str, examples: Sequence[Any],
                   rows: dict[str, dict[str, Any]] | None = None) -> np.ndarray:
    """``method``'s main metric on each of ``examples`` (all of which it must have predicted;
    ``rows``, its prediction rows when the caller has read them): the metric itself for a
    generation task, the absolute error for a rating, 1 (right) or 0 (wrong) for a label."""
    task = get_task(run.results["config"]["task"])
    rows = prediction_rows(run, method) if rows is None else rows
    scored = task.score([rows[e.id]["output"] for e in examples], [e.gold or "" for e in examples])
    if scored.kind in ("generation", "ranking"):
        return np.asarray(scored.columns[run.main_metric], dtype=float)
    if scored.kind == "rating":
        return np.abs(np.asarray(scored.columns["prediction"]) - np.asarray(scored.columns["gold"]))
    return (np.asarray(scored.columns["prediction"]) == np.asarray(scored.columns["gold"])).astype(float)


def per_example_metric(run: Run, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(profile size, value of the main metric) per example, for one method of a run."""
    rows = prediction_rows(run, method)
    kept = [e for e in run_examples(run) if e.id in rows]
    sizes = np.array([rows[e.id].get("profile_size", len(e.profile)) for e in kept], dtype=float)
    return sizes, example_values(run, method, kept, rows)


def plot_run(run: Run, out: str | Path) -> list[Path]:
    """Write ``<task>-by-method.png`` and ``<task>-by-profile-size.png`` (a ranking task's:
    ``<task>-by-history-length.png``) under ``out``."""
    plt = require("matplotlib.pyplot", "plot")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metric = run.main_metric
    results = run.results["results"]
    names = [r["method"] for r in results]
    values = [r["metrics"][metric] for r in results]
    lows = [r["metrics"][metric] - r["ci95"][metric][0] for r in results]
    highs = [r["ci95"][metric][1] - r["metrics"][metric] for r in results]
    figure, axis = plt.subplots(figsize=(max(5.0, 0.75 * len(names) + 2), 3.6))
    colors = ["#888888" if n == "none" else "#3b6ea5" for n in names]
    axis.bar(range(len(names)), values, yerr=[lows, highs], color=colors, capsize=3)
    if "none" in names:
        axis.axhline(values[names.index("none")], color="#888888", linestyle="--", linewidth=1)
    axis.set_xticks(range(len(names)), names, rotation=35, ha="right")
    direction = "lower is better" if run.lower_is_better(metric) else "higher is better"
    axis.set_ylabel(f"{metric} ({direction})")
    axis.set_title(f"{run.task}: {metric} by method (n={run.results['n']}, 95% CI)")
    figure.tight_layout()
    by_method = out / f"{run.task}-by-method.png"
    figure.savefig(by_method, dpi=120)
    plt.close(figure)

    # By profile size: the examples split into thirds by profile size (same split for every method).
    sizes, _ = per_example_metric(run, names[0])
    edges = np.unique(np.quantile(sizes, [0, 1 / 3, 2 / 3, 1]))
    figure, axis = plt.subplots(figsize=(6.4, 3.8))
    label_metric = {"rating": "absolute error", "classification": "accuracy"}.get(
        get_task(run.results["config"]["task"]).kind, metric)
    for name in names:
        sizes, per_example = per_example_metric(run, name)
        groups = np.digitize(sizes, edges[1:-1], right=True) if len(edges) > 2 else np.zeros(len(sizes), int)
        centers, means = [], []
        for group in range(max(len(edges) - 1, 1)):
            chosen = groups == group
            if chosen.any():
                centers.append(float(np.median(sizes[chosen])))
                means.append(float(per_example[chosen].mean()))
        style = {"color": "#888888", "linestyle": "--"} if name == "none" else {}
        axis.plot(centers, means, marker="o", label=name, **style)
    ranking = get_task(run.results["config"]["task"]).kind == "ranking"
    size = "history length" if ranking else "profile size"
    axis.set_xlabel(f"{size} (records; median of each third of the examples)")
    axis.set_ylabel(label_metric)
    axis.set_title(f"{run.task}: {label_metric} by {size}")
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    by_size = out / f"{run.task}-by-{size.replace(' ', '-')}.png"
    figure.savefig(by_size, dpi=120)
    plt.close(figure)
    return [by_method, by_size]


def cold_table(run: Run) -> str:
    """The metrics of each method on the run's cold users alone (a task that reports them:
    ``cold`` in results.json), with their 95% intervals; empty when the run has none."""
    results = [r for r in run.results["results"] if r.get("cold")]
    if not results:
        return ""
    cold = results[0]["cold"]
    names = list(cold["metrics"])[:4]
    header = ["method", "n", *[f"{n} [95% CI]" for n in names]]
    lines = [f"Cold users (at most {cold['max_profile']} history items):", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        part = result["cold"]
        cells = [f"{part['metrics'][n]:.4f} [{part['ci95'][n][0]:.4f}, {part['ci95'][n][1]:.4f}]" for n in names]
        lines.append("| " + " | ".join([result["method"], str(part["n"]), *cells]) + " |")
    return "\n".join(lines)


def markdown_table(run: Run) -> str:
    """The run's results as a Markdown table: n, every metric with its 95% interval, the
    paired difference against ``none`` on the main metric, and seconds per example."""
    results = run.results["results"]
    metric = run.main_metric
    names = list(results[0]["metrics"])
    direction = "lower is better" if run.lower_is_better(metric) else "higher is better"
    header = ["method", "n", *[f"{n} [95% CI]" for n in names], f"Δ {metric} vs none [95% CI] ({direction})",
              "s/example"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        cells = [f"{result['metrics'][n]:.4f} [{result['ci95'][n][0]:.4f}, {result['ci95'][n][1]:.4f}]"
                 for n in names]
        versus = result.get("versus_none", {}).get(metric)
        delta = f"{versus['delta']:+.4f} [{versus['low']:+.4f}, {versus['high']:+.4f}]" if versus else "—"
        lines.append("| " + " | ".join([result["method"], str(result.get("n", run.results["n"])), *cells, delta,
                                        f"{result['seconds'] / max(run.results['n'], 1):.2f}"]) + " |")
    return "\n".join(lines)


def summary_table(runs: Sequence[Run], baselines: Sequence[str] = ()) -> str:
    """Several runs (one per task) side by side: one Markdown table per main metric, a row
    per method, a column per run. A cell holds the method's value and its paired difference
    against the run's baseline with the 95% interval, in bold where the interval lies wholly
    on the better side of 0. A run's baseline is the first of ``baselines`` it holds (a rating
    task's ``user-mean``), else ``none``; the difference against ``none`` is the one
    ``results.json`` holds, any other is computed from the saved predictions."""
    if not runs:
        raise ValueError("summary_table needs at least one run")
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.main_metric, []).append(run)
    tables = []
    for metric, group in groups.items():
        columns = []
        for run in group:
            methods = [r["method"] for r in run.results["results"]]
            baseline = next((b for b in baselines if b in methods), "none")
            if baseline == "none":
                paired = {r["method"]: r["versus_none"][metric] for r in run.results["results"]
                          if metric in r.get("versus_none", {})}
            else:
                paired = differences(run, [baseline])[baseline]
            values = {r["method"]: r["metrics"][metric] for r in run.results["results"]}
            columns.append((run, baseline, values, paired))
        shared = {baseline for _, baseline, _, _ in columns}
        one_baseline = next(iter(shared)) if len(shared) == 1 else None
        direction = "lower is better" if group[0].lower_is_better(metric) else "higher is better"
        against = f"`{one_baseline}`" if one_baseline else "the baseline its column names"
        caption = (f"**{metric}** ({direction}): each method's value, then its paired difference against "
                   f"{against} [95% bootstrap interval]; bold where the interval excludes 0 on the better side.")
        lines = [caption, ""]
        header = ["method", *[f"{run.task} (n={run.results['n']}"
                              + ("" if one_baseline else f", vs {baseline}") + ")"
                              for run, baseline, _, _ in columns]]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        methods = list(dict.fromkeys(m for _, _, values, _ in columns for m in values))
        for method in methods:
            cells = [method]
            for _, baseline, values, paired in columns:
                cell = _summary_cell(group[0].lower_is_better(metric), values.get(method), paired.get(method))
                mark = " (baseline)" if method == baseline and cell and not one_baseline else ""
                cells.append(cell + mark)
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", _provenance(group)]
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def _summary_cell(lower_better: bool, value: float | None, paired: dict[str, float] | None) -> str:
    if value is None:
        return ""
    if not paired:
        return f"{value:.4f}"
    delta = f"{paired['delta']:+.3f} [{paired['low']:+.3f}, {paired['high']:+.3f}]"
    better = paired["high"] < 0 if lower_better else paired["low"] > 0
    return f"{value:.4f}, " + (f"**{delta}**" if better else delta)


def _provenance(runs: Sequence[Run]) -> str:
    """What the runs ran on: split, model, engines, tailor version and commit (each once)."""
    def distinct(values: Any) -> str:
        return ", ".join(dict.fromkeys(str(v) for v in values if v)) or "?"

    results = [r for run in runs for r in run.results["results"]]
    commits = [str(run.results.get("git_commit") or "")[:7] for run in runs]
    return (f"Split {distinct(run.results['config'].get('split') for run in runs)}; "
            f"model {distinct(run.results.get('model') for run in runs)}; "
            f"engine {distinct(r.get('engine') for r in results)}; "
            f"tailor {distinct(run.results.get('tailor_version') for run in runs)}"
            + (f" (commit {distinct(commits)})" if any(commits) else "") + ".")
