"""``tailor eval-facts``: fact extraction measured on labelled messages (precision, recall)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from tailor.memory.extraction import DEFAULT_THRESHOLD


def add_eval_facts_verb(verbs: Any) -> None:
    """Add ``eval-facts`` to the ``tailor`` command's verbs."""
    verb = verbs.add_parser("eval-facts", help="measure fact extraction on labelled messages "
                            "(precision and recall per split, with a threshold sweep)")
    verb.add_argument("--data", required=True, help="labelled messages, JSON lines: "
                      '{"split": "dev"|"test", "text": ..., "facts": [{"key": ..., "value": ...}]} '
                      "(tests/memory/data/facts-labelled.jsonl)")
    verb.add_argument("--backend", default="default", help="the model judging statements (default: default)")
    verb.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                      help=f"keep a statement when score(yes) - score(no) reaches this (default {DEFAULT_THRESHOLD})")
    verb.add_argument("--json", action="store_true", help="print one JSON object on stdout (with every "
                      "statement's margin)")


def _cell(value: float) -> str:
    return "-" if isinstance(value, float) and math.isnan(value) else f"{value:.3f}"


def _finite(value: Any) -> Any:
    """``value`` with every NaN (precision of nothing extracted) as ``None``, for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def run_eval_facts(args: argparse.Namespace) -> int:
    from tailor.backends import load_backend
    from tailor.evaluation.facts import evaluate_extraction, read_labelled
    from tailor.memory.extraction import FactExtractor

    if not math.isfinite(args.threshold):
        raise ValueError(f"--threshold must be a finite number, got {args.threshold}")
    messages = read_labelled(args.data)
    backend = load_backend(args.backend)
    extractor = FactExtractor(backend.generate, threshold=args.threshold)

    def progress(done: int, total: int) -> None:
        if done == total or done % 20 == 0:
            print(f"eval-facts: {done}/{total} messages", file=sys.stderr, flush=True)

    report = evaluate_extraction(messages, extractor, progress=None if args.json else progress)
    report["backend"] = args.backend
    if args.json:
        sys.stdout.write(json.dumps(_finite(report), ensure_ascii=False) + "\n")
        return 0
    print(f"{report['n']} messages, {report['statements_judged']} statements judged on {args.backend}, "
          f"{report['ms_per_message_p50']:.0f} ms per message (p50), {report['ms_per_message_p95']:.0f} (p95)")
    print("| split | threshold | messages | gold facts | extracted | precision | recall | F1 | negatives with a fact |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = [(f"{args.threshold:g}", report["results"]), ("rules only", report["rules_only"])]
    rows += [(f"{entry['threshold']:g} (sweep)", {k: v for k, v in entry.items() if k != "threshold"})
             for entry in report["sweep"]]
    for label, by_split in rows:
        for split, metrics in by_split.items():
            print(f"| {split} | {label} | {metrics['messages']} | {metrics['gold_facts']} | {metrics['extracted']} | "
                  f"{_cell(metrics['precision'])} | {_cell(metrics['recall'])} | {_cell(metrics['f1'])} | "
                  f"{metrics['false_positive_messages']}/{metrics['negative_messages']} |")
    return 0


__all__ = ["add_eval_facts_verb", "run_eval_facts"]
