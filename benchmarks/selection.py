"""The retrieval-optimization table of docs/selection.md, from the folders that
``scripts/results-selection.sh`` and ``scripts/results-retriever.sh`` write:

    python benchmarks/selection.py RUNS_DIR

One row per task folder in RUNS_DIR (a ``tailor eval --out`` folder holding ``auto``):

- ``auto`` against ``none`` and against the task's best fixed retrieval method (the one of
  ``bm25``, ``recency``, ``dense`` and ``hybrid`` with the best mean on these very
  questions, which favours the fixed method), paired 95% bootstrap intervals; how often
  ``auto`` chose each option; the selector's training seconds;
- where the folder also holds a trained retriever's ``dense:PATH`` run: its answers against
  ``dense`` (its starting embedder) and ``bm25``, its training seconds, and from
  ``RUNS_DIR/TASK-ndcg.json`` (``tailor eval-retriever --json``) its NDCG@5 on the dev
  split's usefulness labels against ``dense``.

Prints Markdown.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path
from typing import Any

from tailor.evaluation.plots import Run, load_run, method_scores, prediction_rows, run_examples
from tailor.metrics import paired_comparison

FIXED = ("bm25", "recency", "dense", "hybrid")


def _paired(delta: dict[str, float]) -> str:
    cell = f"{delta['delta']:+.4f} [{delta['low']:+.4f}, {delta['high']:+.4f}]"
    return f"**{cell}**" if delta["low"] > 0 or delta["high"] < 0 else cell


def task_row(run: Run, runs_dir: Path) -> dict[str, Any]:
    """What the table shows of one task's run."""
    metric = run.main_metric
    methods = [result["method"] for result in run.results["results"]]
    examples = run_examples(run)
    scores = {method: method_scores(run, method, examples) for method in methods}
    means = {method: score.aggregate()[metric] for method, score in scores.items()}
    fixed = [method for method in FIXED if method in scores]
    best = max(fixed, key=lambda method: means[method])
    row: dict[str, Any] = {"task": run.task, "n": len(examples), "metric": metric, "none": means["none"],
                           "best": best, "best_value": means[best], "auto": means["auto"],
                           "auto_vs_none": paired_comparison(scores["none"], scores["auto"])[metric],
                           "auto_vs_best": paired_comparison(scores[best], scores["auto"])[metric]}
    chosen = collections.Counter(str(r.get("notes", {}).get("chosen")) for r in prediction_rows(run, "auto").values())
    row["chosen"] = dict(chosen.most_common())
    selectors = sorted((run.folder / "selectors").glob("*.json"))
    if selectors:
        training = json.loads(selectors[0].read_text(encoding="utf-8")).get("training", {})
        row["selector_seconds"] = training.get("seconds")
        row["selector_n"] = training.get("n")
    trained = [method for method in methods if method.startswith("dense:")]
    if trained:
        method = trained[0]
        row["trained"] = method
        row["trained_value"] = means[method]
        row["trained_vs_dense"] = paired_comparison(scores["dense"], scores[method])[metric]
        row["trained_vs_bm25"] = paired_comparison(scores["bm25"], scores[method])[metric]
        row["trained_seconds_per_example"] = run.results["results"][methods.index(method)]["seconds"] / len(examples)
        metadata = Path(method.partition(":")[2]) / "tailor-retriever.json"
        if metadata.is_file():
            row["retriever_seconds"] = json.loads(metadata.read_text(encoding="utf-8")).get("train_seconds")
        ndcg = runs_dir / f"{run.folder.name}-ndcg.json"
        if ndcg.is_file():
            check = json.loads(ndcg.read_text(encoding="utf-8"))
            row["ndcg5_vs_dense"] = check["versus_first"][method]["ndcg@5"] | {
                "value": check["ndcg"][method]["ndcg@5"], "dense": check["ndcg"]["dense"]["ndcg@5"]}
    return row


def tables(rows: list[dict[str, Any]]) -> str:
    lines = [("**auto**: the main metric (ROUGE-1), paired differences [95% bootstrap interval]; bold where the "
             "interval excludes 0."), "",
             ("| task | n | none | best fixed | auto | Δ auto vs none | Δ auto vs best fixed | auto chose | "
             "selector training |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        chosen = ", ".join(f"{option} {count}" for option, count in row["chosen"].items())
        training = (f"{row['selector_seconds']:.0f} s ({row['selector_n']} train questions)"
                    if row.get("selector_seconds") is not None else "—")
        lines.append(f"| {row['task']} | {row['n']} | {row['none']:.4f} | {row['best']} {row['best_value']:.4f} | "
                     f"{row['auto']:.4f} | {_paired(row['auto_vs_none'])} | {_paired(row['auto_vs_best'])} | "
                     f"{chosen} | {training} |")
    trained = [row for row in rows if "trained" in row]
    if trained:
        lines += ["", ("**The trained retriever** (`dense:PATH`): NDCG@5 of the dev split's items by usefulness, "
                  "then the answers' main metric."), "",
                  ("| task | NDCG@5: dense → trained (Δ) | answers: trained | Δ vs dense | Δ vs bm25 | "
                  "training | s/example |"),
                  "|---|---|---|---|---|---|---|"]
        for row in trained:
            ndcg = row.get("ndcg5_vs_dense")
            ndcg_cell = (f"{ndcg['dense']:.4f} → {ndcg['value']:.4f} ({_paired(ndcg)})" if ndcg else "—")
            seconds = f"{row['retriever_seconds']:.0f} s" if row.get("retriever_seconds") is not None else "—"
            per_example = row.get("trained_seconds_per_example")
            speed = f"{per_example:.2f}" if per_example is not None else "—"
            lines.append(f"| {row['task']} | {ndcg_cell} | {row['trained_value']:.4f} | "
                         f"{_paired(row['trained_vs_dense'])} | {_paired(row['trained_vs_bm25'])} | {seconds} | "
                         f"{speed} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", help="the folder scripts/results-selection.sh wrote")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    runs_dir = Path(args.runs)
    rows = []
    for folder in sorted(path.parent for path in runs_dir.glob("*/results.json")):
        run = load_run(folder)
        if any(result["method"] == "auto" for result in run.results["results"]):
            rows.append(task_row(run, runs_dir))
    if not rows:
        print(f"{runs_dir}: no tailor eval folder with auto in it", file=sys.stderr)
        return 1
    print(json.dumps(rows, indent=2) if args.json else tables(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
