"""Does an engine keep quality? Two `tailor eval --out` runs of the same task and examples,
made with two backends, compared example by example.

    python benchmarks/engine_quality.py --data DATA_DIR --runs FP32_RUN,NEW_RUN --methods none,bm25

For each method in both runs: ROUGE-1 of each run against the golds (``DATA_DIR``'s
``dev_outputs.json``), the paired difference (second run minus first) with its 95%
bootstrap interval, and the share of examples whose answer is the same text. Prints a
Markdown table (``--json`` for one JSON object). Issue 10 asks the new default engine to
stay within 0.01 ROUGE-1 of the float32 model on `news-headlines` and `commits`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def predictions(run: Path, method: str) -> dict[str, str]:
    path = run / "predictions" / f"{method.replace('/', '_')}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `tailor eval ... --method {method} --out {run}`")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {str(row["id"]): str(row["output"]) for row in rows}


def compare(data: Path, runs: list[Path], methods: list[str]) -> dict[str, Any]:
    from tailor.data.lamp import read_outputs
    from tailor.metrics.bootstrap import paired_comparison
    from tailor.metrics.scores import generation_scores

    _, golds = read_outputs(data / "dev_outputs.json")
    table: dict[str, Any] = {}
    for method in methods:
        first, second = predictions(runs[0], method), predictions(runs[1], method)
        ids = [i for i in first if i in second]
        if not ids:
            raise ValueError(f"{method}: the two runs share no example ids")
        gold = [golds[i] for i in ids]
        before = generation_scores([first[i] for i in ids], gold, bleu=False)
        after = generation_scores([second[i] for i in ids], gold, bleu=False)
        delta = paired_comparison(before, after)["rouge-1"]
        table[method] = {
            "n": len(ids),
            "rouge1_first": float(before.columns["rouge-1"].mean()),
            "rouge1_second": float(after.columns["rouge-1"].mean()),
            "delta": delta["delta"], "low": delta["low"], "high": delta["high"],
            "same_text": sum(first[i] == second[i] for i in ids) / len(ids),
        }
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="the task's data folder (holds dev_outputs.json)")
    parser.add_argument("--runs", required=True, help="two `tailor eval --out` folders: REFERENCE,NEW")
    parser.add_argument("--methods", default="none,bm25")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    runs = [Path(r) for r in args.runs.split(",")]
    if len(runs) != 2:
        parser.error("--runs takes two folders, REFERENCE,NEW")
    try:
        table = compare(Path(args.data), runs, [m for m in args.methods.split(",") if m])
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"runs": [str(r) for r in runs], "methods": table}, indent=2))
        return 0
    print(f"{runs[0]} (reference) against {runs[1]}, same examples\n")
    print("| method | n | ROUGE-1 reference | ROUGE-1 new | Δ [95% CI] | same text |")
    print("|---|---|---|---|---|---|")
    for method, r in table.items():
        print(f"| {method} | {r['n']} | {r['rouge1_first']:.4f} | {r['rouge1_second']:.4f} | "
              f"{r['delta']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}] | {r['same_text']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
