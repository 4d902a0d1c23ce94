"""``tailor usefulness``, ``tailor train-retriever``, ``tailor eval-retriever`` and ``tailor
train-selector``: what the model says each item is worth, a retriever trained on it, how well
retrievers order items by it, and the ``auto`` method's selector, trained on a data set's
train split."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tailor.cli import choices


def add_selection_verbs(verbs: Any) -> None:
    """Add ``usefulness``, ``train-retriever``, ``eval-retriever`` and ``train-selector`` to the
    ``tailor`` command's verbs."""
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

    retriever = verbs.add_parser("train-retriever", help="train a dense retriever (all-MiniLM-L6-v2) so that its "
                                 "order of a user's items follows their usefulness to the model (ROPG-KD); load it "
                                 "as dense:PATH")
    retriever.add_argument("--task", required=True, help=f"the task: {tasks}")
    retriever.add_argument("--data", required=True, help="folder holding train_questions.json and train_outputs.json")
    retriever.add_argument("--useful", required=True, metavar="FILE",
                           help="tailor usefulness's file for the data's train split (the only split read)")
    retriever.add_argument("--out", required=True, metavar="DIR", help="the model folder to write (whole or not at "
                           "all); tailor-retriever.json in it says what it was trained on")
    retriever.add_argument("--epochs", type=choices.positive, default=3, help="passes over the questions (default 3)")
    retriever.add_argument("--batch-size", type=choices.positive, default=16, help="questions per step (default 16)")
    retriever.add_argument("--seed", type=int, default=0)
    retriever.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    check = verbs.add_parser("eval-retriever", help="how well retrieval methods order each question's candidate "
                             "items by their usefulness to the model (NDCG, paired intervals against the first)")
    check.add_argument("--task", required=True, help=f"the task: {tasks}")
    check.add_argument("--data", required=True, help="the folder the usefulness file was measured on")
    check.add_argument("--useful", required=True, metavar="FILE", help="tailor usefulness's file (e.g. of the dev "
                       "split); its split is the one read")
    check.add_argument("--method", default="bm25,dense", metavar="METHOD,METHOD",
                       help="retrieval methods, the first the baseline (default bm25,dense; dense:PATH for a "
                       "trained retriever)")
    check.add_argument("--embedder", default="minilm", help=f"for dense methods without a folder: "
                       f"{choices.embedder_help()}")
    check.add_argument("--json", action="store_true", help="print one JSON object on stdout")

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


def run_train_retriever(args: argparse.Namespace) -> int:
    from tailor.training.retriever import RetrieverTrainingConfig, train_retriever

    metadata = train_retriever(RetrieverTrainingConfig(task=args.task, data=args.data, useful=args.useful,
                                                       out=args.out, epochs=args.epochs, batch_size=args.batch_size,
                                                       seed=args.seed))
    if args.json:
        sys.stdout.write(json.dumps({key: value for key, value in metadata.items() if key != "question_ids"}) + "\n")
        return 0
    print(f"retriever trained on {metadata['questions']} train questions ({metadata['candidates']} items each; "
          f"{metadata['dropped']} left out) in {metadata['train_seconds']:.1f} s -> {args.out}")
    print(f"teacher temperature {metadata['teacher_temperature']:.4f} (the median spread of usefulness), final "
          f"loss {metadata['train_loss']:.4f}; use it as --method dense:{args.out}")
    return 0


def run_eval_retriever(args: argparse.Namespace) -> int:
    from tailor.embeddings import load_embedder
    from tailor.evaluation.usefulness import rank_by_usefulness

    methods = [name.strip() for name in args.method.split(",") if name.strip()]
    embedder = load_embedder(args.embedder) if args.embedder != "minilm" else None
    check = rank_by_usefulness(args.task, args.data, args.useful, methods, embedder=embedder)
    if args.json:
        sys.stdout.write(json.dumps({"questions": check.questions, "without_useful": check.without_useful,
                                     "ndcg": check.ndcg, "versus_first": check.versus_first}) + "\n")
        return 0
    print(f"{check.questions} questions with a useful item ({check.without_useful} without one left out); gain: "
          "usefulness above 0; each method's paired difference against the first [95% interval]")
    print(check.table())
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


__all__ = ["add_selection_verbs", "run_eval_retriever", "run_train_retriever", "run_train_selector",
           "run_usefulness"]
