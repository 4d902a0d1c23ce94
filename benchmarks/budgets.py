"""Prompt budgets: how many prompt tokens a task's retrieval prompt needs to keep its quality.

    python benchmarks/budgets.py                                     # tweets and news-headlines
    python benchmarks/budgets.py --commits-log ../shared/data/pytest-commits.log.gz
    python benchmarks/budgets.py --budgets 384/384,256/256,192/128 --n 200 --method bm25

Prefill is most of an example's time on CPUs without int8 dot-product instructions (every
engine's prefill runs at 290-430 tokens/s on an AVX2-only 2-core CPU, docs/benchmarks.md),
so a prompt half as long is nearly twice as fast there. Each budget is ``INPUT/CONTEXT``:
the tokens the task input may take, and those all retrieved items together may take (each
item gets an equal share, cut at a word boundary). For each task the same first ``--n`` dev
questions run under every budget with the task's defaults otherwise (``tailor eval
--input-tokens I --context-tokens C``, one run folder per budget under ``--runs``; a rerun
resumes), and the table gives, per budget: the mean prompt tokens (chat template included),
examples/s, ROUGE-1 against the golds, and the paired difference from the first budget
(today's default, 384/384) with its 95% bootstrap interval. The budget that a task can use
is the smallest whose interval holds 0 and whose difference is within 0.01.

The CPU is named above the table; the seconds are the run's (batch 8, the chosen backend).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tailor.machine import describe as describe_cpu

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

DEFAULT_BUDGETS = "384/384,256/256,256/128,128/128"


def parse_budgets(text: str) -> list[tuple[int, int]]:
    """``"384/384,256/128"`` -> ``[(384, 384), (256, 128)]``; a ValueError naming the bad part."""
    budgets = []
    for part in text.split(","):
        first, slash, second = part.strip().partition("/")
        if not slash or not first.isdigit() or not second.isdigit() or min(int(first), int(second)) < 8:
            raise ValueError(f"--budgets: {part!r} is not INPUT/CONTEXT (two token counts of at least 8, e.g. 256/128)")
        budgets.append((int(first), int(second)))
    return budgets


def run_task(task_name: str, data: Path, runs: Path, budgets: list[tuple[int, int]], *, n: int, method: str,
             backend: str) -> list[dict[str, Any]]:
    """Every budget's run of ``method`` on ``task_name``, and the rows of the table."""
    from tailor.evaluation.runner import EvalConfig, evaluate
    from tailor.metrics.bootstrap import paired_comparison
    from tailor.metrics.scores import generation_scores
    from tailor.tasks import get_task

    task = get_task(task_name)
    examples = task.load(data, "dev", limit=n)
    golds = [str(e.gold) for e in examples]
    ids = [e.id for e in examples]
    scored, rows = [], []
    for number, (input_tokens, context_tokens) in enumerate(budgets):
        out = runs / task_name / f"budget-{input_tokens}-{context_tokens}"
        began = time.perf_counter()
        report = evaluate(EvalConfig(task=task_name, data=str(data), split="dev", methods=(method,), backend=backend,
                                     limit=n, input_tokens=input_tokens, context_tokens=context_tokens,
                                     out=str(out)), progress=None)
        result = report.results[0]
        predictions = {}
        for line in (out / "predictions" / f"{method.replace('/', '_')}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            predictions[str(row["id"])] = str(row["output"])
        scores = generation_scores([predictions[i] for i in ids], golds, bleu=False, ids=ids)
        scored.append((scores, predictions))
        row = {"task": task_name, "budget": f"{input_tokens}/{context_tokens}", "n": len(ids),
               "prompt_tokens": result.prompt_tokens, "examples_per_s": len(ids) / max(result.seconds, 1e-9),
               "rouge1": float(scores.columns["rouge-1"].mean()), "wall_s": round(time.perf_counter() - began, 1)}
        if number:
            delta = paired_comparison(scored[0][0], scores)["rouge-1"]
            row |= {"delta": delta["delta"], "low": delta["low"], "high": delta["high"],
                    "same_text": sum(scored[0][1][i] == predictions[i] for i in ids) / len(ids)}
        rows.append(row)
        print(f"  {task_name} {row['budget']}: {json.dumps(row)}", file=sys.stderr)
    return rows


def build(task_name: str, data: Path, commits_log: str | None) -> None:
    from tailor.tasks import build_dataset, get_task

    if get_task(task_name).has_split(data, "dev"):
        return
    if task_name == "commits":
        if not commits_log:
            raise SystemExit("the commits task needs --commits-log PATH (its data is not packaged)")
        build_dataset("commits", data, log=commits_log)
    else:
        build_dataset(task_name, data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=None, help="default: tweets,news-headlines (and commits with --commits-log)")
    parser.add_argument("--budgets", default=DEFAULT_BUDGETS, help=f"INPUT/CONTEXT,... (default {DEFAULT_BUDGETS})")
    parser.add_argument("--n", type=int, default=200, help="dev questions per task (default 200)")
    parser.add_argument("--method", default="bm25", help="the retrieval method (default bm25)")
    parser.add_argument("--backend", default="default", help="the model (default: the default engine)")
    parser.add_argument("--runs", default=None, help="run folders (default $TMPDIR/tailor-bench/budgets)")
    parser.add_argument("--commits-log", default=None, help="a pytest log for the commits task")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    budgets = parse_budgets(args.budgets)
    tasks = args.tasks.split(",") if args.tasks else ["tweets", "news-headlines", *(["commits"] if args.commits_log else [])]
    runs = Path(args.runs) if args.runs else Path(os.environ.get("TMPDIR", "/tmp")) / "tailor-bench" / "budgets"
    rows = []
    for task_name in tasks:
        data = runs / "data" / task_name
        build(task_name, data, args.commits_log)
        rows += run_task(task_name, data, runs, budgets, n=args.n, method=args.method, backend=args.backend)
    if args.json:
        print(json.dumps({"cpu": describe_cpu(), "method": args.method, "backend": args.backend, "rows": rows}))
        return 0
    print(f"CPU: {describe_cpu()}; --method {args.method} --backend {args.backend}; first {args.n} dev questions\n")
    print("| task | budget (input/context) | n | prompt tokens | examples/s | ROUGE-1 | Δ vs first budget [95% CI] "
          "| same text |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        delta = (f"{row['delta']:+.4f} [{row['low']:+.4f}, {row['high']:+.4f}]" if "delta" in row else "—")
        same = f"{row['same_text']:.0%}" if "same_text" in row else "—"
        tokens = f"{row['prompt_tokens']:.0f}" if row["prompt_tokens"] is not None else "?"
        print(f"| {row['task']} | {row['budget']} | {row['n']} | {tokens} | {row['examples_per_s']:.2f} | "
              f"{row['rouge1']:.4f} | {delta} | {same} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
