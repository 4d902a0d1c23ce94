"""``tailor usefulness`` and ``tailor train-selector``: what the model says each item is worth,
and the ``auto`` method's selector, both from a data set's train split."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tailor.cli import choices


def add_selection_verbs(verbs: Any) -> None:
    """Add ``usefulness`` and ``train-selector`` to the ``tailor`` command's verbs."""
    from tailor.tasks import TASKS

    tasks = ", ".join(TASKS.names())
    useful = verbs.add_parser("usefulness", help="per-item usefulness from the model: the log-likelihood of the gold "
                              "output with each of the user's top items (BM25) in the prompt minus without it")
    useful.add_argument("--task", required=True, help=f"the task: {tasks}")
    useful.add_argument("--data", required=True, help="folder holding {split}_questions.json and _outputs.json")
    useful.add_argument("--split", default="train", help="the split measured (default train)")
    useful.add_argument("--out", required=True, metavar="FILE",
                        help="JSON lines: id, item, usefulness, rank, loglik, loglik_without (resumable; settings and "
                        "cost in FILE.run.json)")
    useful.add_argument("--top-n", type=choices.positive, default=8, help="candidate items per question (default 8)")
    useful.add_argument("--limit", type=choices.positive, default=None, help="first N questions in file order")
    useful.add_argument("--backend", default="default", help=choices.backend_help())
    useful.add_argument("--batch-size", type=choices.positive, default=8)
    useful.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    train = verbs.add_parser("train-selector", help="train the auto method's selector (which of none and the "
                             "retrieval methods to use per input) on the data's train split")
    train.add_argument("--task", required=True, help=f"the task: {tasks}")
    train.add_argument("--data", required=True, help="folder holding train_questions.json and train_outputs.json")
    train.add_argument("--out", required=True, metavar="PATH", help="the selector file (JSON) to write; each option's "
                       "answers are kept in PATH.outcomes/, so a rerun resumes")
    train.add_argument("--limit", type=choices.positive, default=None, help="first N train questions in file order")
    train.add_argument("--options", default=None, metavar="METHOD,METHOD",
                       help="none first, then the methods it may choose (default none,bm25,recency,dense,hybrid)")
    train.add_argument("--backend", default="default", help=choices.backend_help())
    train.add_argument("--k", type=choices.positive, default=None, help="items retrieved per input (default: the "
                       "task's)")
    train.add_argument("--embedder", default="minilm", help=f"for the dense options: {choices.embedder_help()}")
    train.add_argument("--batch-size", type=choices.positive, default=8)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run_usefulness(args: argparse.Namespace) -> int:
    from tailor.evaluation.usefulness import UsefulnessConfig, item_usefulness

    config = UsefulnessConfig(task=args.task, data=args.data, out=args.out, split=args.split, top_n=args.top_n,
                              limit=args.limit, backend=args.backend, batch_size=args.batch_size)
    report = item_usefulness(config)
    if args.json:
        sys.stdout.write(json.dumps(report.to_json()) + "\n")
        return 0
    print(f"{report.examples} questions measured ({report.items} items, {report.requests} requests, "
          f"{report.seconds:.1f} s); {report.skipped} skipped (done before, or without a gold or profile)")
    print(f"cost: {report.seconds_per_example:.3f} s and {report.requests_per_example:.1f} requests per question "
          f"over the {report.total_examples} in {report.out}")
    return 0


def run_train_selector(args: argparse.Namespace) -> int:
    from tailor.evaluation.selection import SelectorConfig, train_selector
    from tailor.personalizers.selector import DEFAULT_OPTIONS

    options = tuple(name.strip() for name in args.options.split(",") if name.strip()) if args.options else (
        DEFAULT_OPTIONS)
    config = SelectorConfig(task=args.task, data=args.data, out=args.out, backend=args.backend, options=options,
                            k=args.k, limit=args.limit, embedder=args.embedder, batch_size=args.batch_size,
                            seed=args.seed)
    selector = train_selector(config)
    summary = {"out": args.out, "task": selector.task, "options": list(selector.options), "margin": selector.margin,
               **{key: selector.training.get(key) for key in ("n", "outcomes", "cross_validated_gain", "seconds",
                                                               "seconds_per_example")}}
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return 0
    print(f"selector for {selector.task} on {summary['n']} train questions -> {args.out}")
    print("mean metric per option: " + ", ".join(f"{option} {value:.4f}"
                                                 for option, value in (summary["outcomes"] or {}).items()))
    if selector.margin is None:
        print("no option was clearly better than none on held-out folds: auto answers none")
    else:
        print(f"an option is chosen when its predicted gain over none exceeds {selector.margin:.4f}")
    return 0


__all__ = ["add_selection_verbs", "run_train_selector", "run_usefulness"]
