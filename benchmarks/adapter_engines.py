"""An adapter method on two engines, from two `tailor eval` runs of it on the same examples.

    python benchmarks/adapter_engines.py FAST_RUN REFERENCE_RUN [--method lora+bm25]

``scripts/results-adapter-engines.sh`` makes the runs: ``lora+bm25`` with a task's global
adapter on the default engine (the adapter merged into the OpenVINO model,
:mod:`tailor.backends.merged`) and on the float32 transformers model (``--backend
default-fp32``, PEFT applying the adapter). Prints a Markdown row per run: examples/s (the
method's examples over its seconds in results.json: generation, retrieval and the adapter
included), the main metric with its interval, and for the fast run the speed-up and the
paired difference of the metric against the reference (95% bootstrap interval).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tailor.evaluation.plots import load_run, method_scores, run_examples
from tailor.metrics import paired_comparison


def compare(fast_folder: Path, reference_folder: Path, method: str) -> None:
    fast, reference = load_run(fast_folder), load_run(reference_folder)
    if fast.task != reference.task:
        raise SystemExit(f"the runs are of different tasks: {fast.task}, {reference.task}")
    metric = fast.main_metric
    examples = run_examples(fast)
    ids = [e.id for e in examples]
    if ids != [e.id for e in run_examples(reference)]:
        raise SystemExit("the runs evaluated different examples: give both the same --limit and data")
    entries = {}
    for name, run in (("fast", fast), ("reference", reference)):
        found = [r for r in run.results["results"] if r["method"] == method]
        if not found:
            raise SystemExit(f"{run.folder} holds no {method}")
        entries[name] = found[0]
    rates = {name: len(ids) / float(entry["seconds"]) for name, entry in entries.items()}
    paired = paired_comparison(method_scores(reference, method, examples), method_scores(fast, method, examples),
                               n_resamples=1000, seed=0)[metric]
    cpu = fast.results.get("machine", {}).get("cpu", {})
    described = ", ".join(str(part) for part in (cpu.get("model"), cpu.get("architecture"),
                                                 f"{cpu.get('cores')} cores", *cpu.get("instruction_sets", ())) if part)
    print(f"{fast.task}, {method}, n = {len(ids)}; CPU: {described}\n")
    print(f"| engine (run) | examples/s | {metric} [95% CI] | speed-up | Δ {metric} vs reference [95% CI] |")
    print("|---|---|---|---|---|")
    for name, run in (("fast", fast), ("reference", reference)):
        entry = entries[name]
        low, high = entry["ci95"][metric]
        extra = (f"{rates['fast'] / rates['reference']:.2f}x | {paired['delta']:+.4f} "
                 f"[{paired['low']:+.4f}, {paired['high']:+.4f}]") if name == "fast" else "1x | —"
        print(f"| {entry.get('engine') or run.results['config'].get('backend')} ({run.folder.name}) | "
              f"{rates[name]:.3f} | {entry['metrics'][metric]:.4f} [{low:.4f}, {high:.4f}] | {extra} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fast", type=Path, help="the run on the default engine")
    parser.add_argument("reference", type=Path, help="the run on the float32 transformers model")
    parser.add_argument("--method", default="lora+bm25")
    args = parser.parse_args(argv)
    compare(args.fast, args.reference, args.method)
    return 0


if __name__ == "__main__":
    sys.exit(main())
