"""Figures and Markdown from saved evaluation runs (``tailor report``).

A run folder (``tailor eval --out``) holds ``results.json`` and per-method prediction
checkpoints with each example's profile size; the golds are read back from the data set
the run names. Two figures per run: the main metric by method with its 95% interval,
and the main metric by profile size (examples split into three equal groups).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tailor.data.lamp import load_split
from tailor.evaluation.checkpoint import safe_name
from tailor.evaluation.scoring import score_predictions
from tailor.metrics import paired_comparison
from tailor.metrics.scores import PerExampleScores, lower_is_better
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


def load_run(folder: str | Path) -> Run:
    path = Path(folder) / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: pass a folder written by `tailor eval --out`")
    return Run(Path(folder), json.loads(path.read_text(encoding="utf-8")))


def _method_rows(run: Run, method: str) -> dict[str, dict[str, Any]]:
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


def _examples(run: Run) -> list[Any]:
    config = run.results["config"]
    examples = load_split(config["data"], config["split"], get_task(config["task"]).lamp_format,
                          limit=None if config.get("users") else config.get("limit"))
    if config.get("users"):
        wanted = set(config["users"])
        examples = [e for e in examples if e.user_id in wanted][:config.get("limit")]
    return examples


def method_scores(run: Run, method: str, examples: Sequence[Any] | None = None) -> PerExampleScores:
    """The per-example scores of ``method``'s saved predictions, on every example of the run
    (``examples``, when the caller has read them already)."""
    task = get_task(run.results["config"]["task"])
    rows = _method_rows(run, method)
    examples = _examples(run) if examples is None else examples
    missing = [e.id for e in examples if e.id not in rows]
    if missing:
        raise ValueError(f"{run.folder}: {method} has no prediction for {len(missing)} examples "
                         f"(first: {missing[0]}); finish the run first")
    return score_predictions(task, [rows[e.id]["output"] for e in examples], [e.gold or "" for e in examples],
                             ids=[e.id for e in examples])


def versus_table(run: Run, baselines: list[str]) -> str:
    """Paired differences on the run's main metric of every method against each of
    ``baselines`` (any methods of the run: ``bm25`` for ``lora+bm25``, ``user-mean``...),
    with the run's bootstrap settings."""
    config = run.results["config"]
    metric = run.main_metric
    methods = [r["method"] for r in run.results["results"]]
    unknown = [b for b in baselines if b not in methods]
    if unknown:
        raise ValueError(f"{run.folder} holds no method {', '.join(unknown)} (it holds {', '.join(methods)})")
    examples = _examples(run)  # the data set, read once for every method
    scores = {m: method_scores(run, m, examples) for m in methods}
    direction = "lower is better" if lower_is_better(metric) else "higher is better"
    header = ["method", *[f"Δ {metric} vs {b} [95% CI] ({direction})" for b in baselines]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in methods:
        cells = []
        for baseline in baselines:
            if method == baseline:
                cells.append("—")
                continue
            compared = paired_comparison(scores[baseline], scores[method],
                                         n_resamples=int(config.get("n_resamples", 1000)),
                                         seed=int(config.get("seed", 0)))[metric]
            cells.append(f"{compared['delta']:+.4f} [{compared['low']:+.4f}, {compared['high']:+.4f}]")
        lines.append("| " + " | ".join([method, *cells]) + " |")
    return "\n".join(lines)


def per_example_metric(run: Run, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(profile size, value of the main metric) per example, for one method of a run."""
    task = get_task(run.results["config"]["task"])
    rows = _method_rows(run, method)
    kept = [e for e in _examples(run) if e.id in rows]
    scored = score_predictions(task, [rows[e.id]["output"] for e in kept], [e.gold or "" for e in kept])
    sizes = np.array([rows[e.id].get("profile_size", len(e.profile)) for e in kept], dtype=float)
    if scored.kind == "generation":
        values = np.asarray(scored.columns[run.main_metric], dtype=float)
    elif scored.kind == "rating":
        values = np.abs(np.asarray(scored.columns["prediction"]) - np.asarray(scored.columns["gold"]))
    else:
        values = (np.asarray(scored.columns["prediction"]) == np.asarray(scored.columns["gold"])).astype(float)
    return sizes, values


def plot_run(run: Run, out: str | Path) -> list[Path]:
    """Write ``<task>-by-method.png`` and ``<task>-by-profile-size.png`` under ``out``."""
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
    direction = "lower is better" if lower_is_better(metric) else "higher is better"
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
    axis.set_xlabel("profile size (records; median of each third of the examples)")
    axis.set_ylabel(label_metric)
    axis.set_title(f"{run.task}: {label_metric} by profile size")
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    by_size = out / f"{run.task}-by-profile-size.png"
    figure.savefig(by_size, dpi=120)
    plt.close(figure)
    return [by_method, by_size]


def markdown_table(run: Run) -> str:
    """The run's results as a Markdown table: n, every metric with its 95% interval, the
    paired difference against ``none`` on the main metric, and seconds per example."""
    results = run.results["results"]
    metric = run.main_metric
    names = list(results[0]["metrics"])
    direction = "lower is better" if lower_is_better(metric) else "higher is better"
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
