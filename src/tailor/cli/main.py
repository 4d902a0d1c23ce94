"""The ``tailor`` command. Each verb fills one config and calls one library function.

Heavy modules (the evaluation stack, torch through the backends) are imported inside
the verbs, so ``tailor --help`` and ``tailor score`` stay quick.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from tailor.about import version_line
from tailor.backends.contract import BackendError
from tailor.cli import choices
from tailor.cli.adapters import add_adapters_verb, run_adapters
from tailor.cli.alignment import add_alignment_verbs, run_eval_preference, run_simulate, run_train_preference
from tailor.cli.demo import add_demo_verb, run_demo
from tailor.cli.facts import add_eval_facts_verb, run_eval_facts
from tailor.cli.memory import add_eval_memory_verb, run_eval_memory
from tailor.cli.selection import (
    add_selection_verbs,
    run_eval_retriever,
    run_train_retriever,
    run_train_selector,
    run_usefulness,
)
from tailor.cli.serve import add_serve_verbs, run_keys, run_personas, run_serve, run_summaries
from tailor.machine import describe as describe_cpu


class UsageError(Exception):
    """A command-line mistake: printed as one line, exit status 2."""


_TASK_HELP = "the task: {} (LaMP names in any spelling, as LaMP_4 or lamp4)"


def build_parser() -> argparse.ArgumentParser:
    from tailor.tasks import TASKS

    parser = argparse.ArgumentParser(prog="tailor", description="Personalize LLMs per user, and measure it.")
    parser.add_argument("--version", action="store_true", help="show the version (and git commit) and exit")
    parser.add_argument("--verbose", action="store_true",
                        help="with --version: also the machine (the CPU and the instruction sets that decide how fast "
                        "each engine runs)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    add_demo_verb(verbs)

    listing = verbs.add_parser("methods", help="list the personalization methods: what each does and needs, and "
                               "whether tailor serve serves it")
    listing.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    ev = verbs.add_parser("eval", help="evaluate personalization methods on LaMP-format data")
    ev.add_argument("--task", required=True, help=_TASK_HELP.format(", ".join(TASKS.names())))
    ev.add_argument("--data", required=True, help="folder holding {split}_questions.json (and _outputs.json)")
    ev.add_argument("--split", default="dev")
    ev.add_argument("--method", default="none,bm25", type=choices.method_list, metavar="METHOD[,METHOD...]",
                    help="comma-separated methods, each parts joined with '+' and an optional :lamp or :dialogue "
                    "layout (default none,bm25; `tailor methods` describes each; dense:PATH, hybrid:PATH: ranked "
                    f"with a retriever tailor train-retriever wrote). {choices.method_help()}")
    ev.add_argument("--backend", default="default", help=choices.backend_help())
    ev.add_argument("--k", type=choices.positive, default=None,
                    help="profile items retrieved per input (default: the task's measured default, 1 for LaMP tasks)")
    ev.add_argument("--limit", type=choices.positive, default=None, help="first N examples in file order")
    ev.add_argument("--out", default=None, help="folder for predictions and results.json (resumable)")
    ev.add_argument("--batch-size", type=choices.positive, default=8)
    ev.add_argument("--scoring", choices=("generate", "likelihood", "calibrated"), default=None,
                    help="classification/rating: parse generated text, pick the most likely label, or "
                         "(the default) decide on the contextually calibrated label likelihoods times the "
                         "user's or the population's prior, the model's evidence weighed as fitted on the "
                         "train split (median rating for ratings)")
    ev.add_argument("--input-tokens", type=choices.positive, default=384, help="token budget for the task input")
    ev.add_argument("--context-tokens", type=choices.positive, default=384, help="token budget for retrieved items")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--embedder", default="minilm",
                    help=f"embedder of the methods that rank by meaning: {choices.embedder_help()} (default minilm)")
    ev.add_argument("--adapters", default=None, metavar="DIR",
                    help=f"adapters made by tailor train-adapter, for the methods that need them "
                    f"({choices.methods_needing('adapters')})")
    ev.add_argument("--users", default=None, metavar="ID,ID", help="evaluate only these users' examples")
    ev.add_argument("--selector", default=None, metavar="PATH", help="the auto method's selector (tailor "
                    "train-selector; default: one trained on the data's train split on first use, cached)")
    ev.add_argument("--raw-answers", action="store_true",
                    help="generation tasks: score the first generated line as it is, without removing preambles, "
                    "labels, quotes, markdown or explanations (to measure what answer extraction adds)")
    choices.add_executor_options(
        ev, where="where the examples are answered: here (local, default), or in shards of users, one Ray task each, "
        "on a local Ray, $RAY_ADDRESS or the cluster at ADDRESS, each shard saved as it finishes (same predictions as "
        "local)", unit="a shard", threads="the backend's threads (default: its own)")
    ev.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    score = verbs.add_parser("score", help="score a predictions file against golds (official LaMP rules)")
    score.add_argument("--task", required=True)
    score.add_argument("--golds", required=True)
    score.add_argument("--preds", required=True)
    score.add_argument("--json", action="store_true")

    report = verbs.add_parser("report", help="Markdown tables and plots from `tailor eval --out` folders")
    report.add_argument("runs", nargs="+", help="folders written by tailor eval --out")
    report.add_argument("--figures", default=None, help="folder for PNG plots (by method, by profile size)")
    report.add_argument("--versus", default=None, type=_method_list, metavar="METHOD,METHOD",
                        help="also the paired difference of every method against these methods of the run "
                             "(e.g. bm25 for lora+bm25, user-mean for ratings), from the saved predictions; with "
                             "--summary, each run's baseline: the first of these it holds, else none")
    report.add_argument("--summary", action="store_true",
                        help="print one table across the runs instead (a row per method, a column per task: the "
                             "main metric and its paired difference against the baseline with its 95%% interval)")

    _add_train_adapter(verbs)
    add_adapters_verb(verbs)

    data = verbs.add_parser("data", help="packaged real data sets")
    data_verbs = data.add_subparsers(dest="data_verb", metavar="ACTION")
    build = data_verbs.add_parser("build", help="build a packaged data set (or commits, from a git history) "
                                  "into LaMP-format files")
    build.add_argument("name", help="data set name (see: tailor data list)")
    build.add_argument("--out", required=True)
    build.add_argument("--repo", default=None, metavar="PATH", help="commits: the git repository to read")
    build.add_argument("--log", default=None, metavar="FILE",
                       help="commits: a saved `git log` (gzipped or not; format in tailor.data.commits)")
    build.add_argument("--keep-bots", action="store_true", help="commits: keep bot authors (left out by default)")
    build.add_argument("--min-commits", type=choices.positive, default=None,
                       help="commits: authors with fewer usable commits are left out (default 8)")
    build.add_argument("--interactions", default=None, metavar="FILE",
                       help="movielens-next: your own user,item,timestamp[,rating] CSV instead of MovieLens 100k "
                       "(with --items; layout in tailor.data.interactions)")
    build.add_argument("--items", default=None, metavar="FILE", help="movielens-next: the item,title CSV of "
                       "--interactions' items")
    data_verbs.add_parser("list", help="list the packaged data sets")
    add_serve_verbs(verbs)
    add_eval_memory_verb(verbs)
    add_eval_facts_verb(verbs)
    add_alignment_verbs(verbs)
    add_selection_verbs(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(version_line())
        if args.verbose:
            from tailor.machine import machine

            info = machine()
            print(f"cpu: {describe_cpu()}\nsystem: {info['system']}, Python {info['python']}")
        return 0
    if args.verb is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    try:
        handler = {"demo": run_demo, "eval": _eval, "score": _score, "data": _data, "report": _report,
                   "serve": run_serve, "keys": run_keys, "personas": run_personas, "summaries": run_summaries,
                   "train-adapter": _train_adapter, "adapters": run_adapters, "eval-memory": run_eval_memory,
                   "eval-facts": run_eval_facts, "methods": _methods, "simulate": run_simulate,
                   "train-preference": run_train_preference, "eval-preference": run_eval_preference,
                   "usefulness": run_usefulness, "train-selector": run_train_selector,
                   "train-retriever": run_train_retriever, "eval-retriever": run_eval_retriever}[args.verb]
        return handler(args)
    except UsageError as error:
        print(f"tailor {args.verb}: {error}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, ImportError, BackendError) as error:
        print(f"tailor {args.verb}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tailor {args.verb}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def _quiet_libraries() -> None:
    """Keep library chatter (weight-loading bars, generation warnings) off the terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except ImportError:
        pass


def _eval(args: argparse.Namespace) -> int:
    from tailor.evaluation.report import format_table
    from tailor.evaluation.runner import EvalConfig, evaluate
    from tailor.evaluation.shards import ShardsFailedError

    config = EvalConfig(task=args.task, data=args.data, split=args.split, methods=tuple(args.method),
                        backend=args.backend,
                        k=args.k, limit=args.limit, out=args.out, batch_size=args.batch_size, seed=args.seed,
                        scoring=args.scoring, input_tokens=args.input_tokens, context_tokens=args.context_tokens,
                        embedder=args.embedder, adapters=args.adapters, users=_user_list(args.users),
                        answers="raw" if args.raw_answers else "extract", selector=args.selector,
                        executor=args.executor, threads=args.threads, retries=args.retries)
    _quiet_libraries()
    try:
        report = evaluate(config)
    except ShardsFailedError as error:
        print(f"tailor eval: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(report.to_json())
    else:
        print(format_table(report))
        if args.out:
            print(f"\npredictions and results.json in {args.out}")
    return 0


def _methods(args: argparse.Namespace) -> int:
    from tailor.methods import METHODS

    rows: list[dict[str, Any]] = []
    for role, methods in METHODS.by_role().items():
        for method in methods:
            rows.append({"name": method.name, "role": role, "help": method.help,
                         "needs": sorted(method.all_needs()), "parameters": list(method.parameters),
                         "served": method.serve_refusal is None, "not_served_because": method.serve_refusal})
    if args.json:
        _print_json({"methods": rows})
        return 0
    width = max(len(row["name"]) for row in rows)
    for role in ("retrieval", "notes", "modifier", "whole", "recommender"):
        print({"retrieval": "Retrieval (at most one per method):", "notes": "Notes about the user (joined with '+'):",
               "modifier": "Modifiers (joined with '+'):", "whole": "Used alone:",
               "recommender": "Recommenders (ranking tasks; alone, or first: their top 20 reranked by the rest, "
                              "as als+bm25):"}[role])
        for row in (r for r in rows if r["role"] == role):
            needs = f"  [needs {', '.join(row['needs'])}]" if row["needs"] else ""
            served = "" if row["served"] else "  (not served)"
            print(f"  {row['name']:<{width}}  {row['help']}{needs}{served}")
    print("\nCompose them as PART+PART[:lamp|:dialogue], e.g. summary+persona+hybrid:dialogue, lora+bm25, bm25+prior.")
    return 0


def _method_list(text: str) -> list[str]:
    methods = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    if not methods:
        raise argparse.ArgumentTypeError("needs at least one method (METHOD,METHOD,...)")
    return methods


def _user_list(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    users = tuple(dict.fromkeys(u.strip() for u in text.split(",") if u.strip()))
    if not users:
        raise UsageError("--users needs at least one user id (ID,ID,...)")
    return users


def _add_train_adapter(verbs: Any) -> None:
    train = verbs.add_parser("train-adapter", help="train per-user (persona, global) LoRA adapters or the "
                             "user-embedding projector on a split's histories")
    train.add_argument("--task", required=True)
    train.add_argument("--data", required=True, help="folder holding {split}_questions.json")
    train.add_argument("--split", default="train", help="whose histories to train on (default train)")
    train.add_argument("--out", required=True, help="the adapter store: a folder (created) or a database URL "
                       "(postgresql://..., which tailor serve --store then serves); rerun to resume")
    train.add_argument("--users", default=None, metavar="ID,ID",
                       help="user/persona adapters (or the user-embedding projector's training users) for only "
                       "these users (default: all in the split); the global adapter always uses every user")
    train.add_argument("--scope", choices=("user", "persona", "global"), default="user",
                       help="user (default; trains the global adapter first), persona, or global")
    train.add_argument("--kind", choices=("lora", "user-embedding"), default="lora",
                       help="lora adapters (default), or the user-embedding soft-prompt projector (--scope global)")
    train.add_argument("--method", default="none", type=choices.method, metavar="RETRIEVAL[:LAYOUT]",
                       help="the prompt the adapters are trained on, exactly as tailor eval builds it: none (served "
                       "as lora; default) or a retrieval method, e.g. bm25[:lamp|:dialogue] (served as lora+bm25, "
                       f"with the same --k); retrievals: {choices.names_of_role('retrieval')}")
    train.add_argument("--k", type=choices.positive, default=None, help="retrieved items per prompt, as tailor eval --k "
                       "(default: the task's, as tailor eval)")
    train.add_argument("--input-tokens", type=choices.positive, default=384,
                       help="prompt budget for the input, as tailor eval (default 384)")
    train.add_argument("--context-tokens", type=choices.positive, default=384,
                       help="prompt budget for retrieved items, as tailor eval (default 384)")
    train.add_argument("--personas", default=None, metavar="FILE",
                       help="JSON {persona_id: [user_ids]} for --scope persona (default: the store's personas)")
    train.add_argument("--min-history", type=choices.positive, default=8,
                       help="users with fewer usable history items get no adapter of their own (default 8)")
    train.add_argument("--no-stack", action="store_true",
                       help="train user/persona adapters on the bare model, not on top of the global adapter")
    train.add_argument("--model", default=None, help="a model directory (default: the default model)")
    choices.add_executor_options(
        train, where="where the LoRA adapters train: here (local, default), or one Ray task per adapter on a local "
        "Ray, $RAY_ADDRESS or the cluster at ADDRESS, each stored as it finishes", unit="an adapter",
        threads="torch threads (default: torch's choice)")
    train.add_argument("--rank", type=choices.positive, default=8)
    train.add_argument("--epochs", type=choices.positive, default=2, help="epochs of user/persona adapters (default 2)")
    train.add_argument("--top-layers", type=int, default=6, help="LoRA on the last N decoder layers (0: all)")
    train.add_argument("--max-output-tokens", type=choices.positive, default=None,
                       help="LoRA: each training target cut to this many tokens (default: the task's generation "
                       "limit, at least 32), so that an adapter learns to write as long as the task's answers")
    train.add_argument("--max-items", type=choices.positive, default=None,
                       help="most recent history items per user (default: 100 for user and persona adapters, all "
                       "for the global adapter, which this bounds too when given)")
    train.add_argument("--embedder", default="minilm", help="user-embedding: minilm, hashing or llm (default minilm)")
    train.add_argument("--steps", type=choices.positive, default=100, help="user-embedding: projector training steps")
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _train_adapter(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tailor.adapters.soft_prompt import SoftPromptConfig
    from tailor.adapters.train import LoRATrainConfig
    from tailor.tasks import get_task
    from tailor.training.jobs import GLOBAL_DEFAULTS, TrainAdapterConfig, TrainingFailedError, train_adapters

    # A target cut shorter than the task's answers teaches the adapter to stop early.
    output_tokens = args.max_output_tokens or max(LoRATrainConfig.max_output_tokens, get_task(args.task).max_new_tokens)
    lora = LoRATrainConfig(rank=args.rank, epochs=args.epochs, top_layers=args.top_layers,
                           max_items=args.max_items or LoRATrainConfig.max_items, max_output_tokens=output_tokens)
    global_lora = replace(GLOBAL_DEFAULTS, rank=args.rank, top_layers=args.top_layers,
                          max_items=args.max_items or GLOBAL_DEFAULTS.max_items, max_output_tokens=output_tokens)
    config = TrainAdapterConfig(task=args.task, data=args.data, out=args.out, split=args.split,
                                users=_user_list(args.users), scope=args.scope, kind=args.kind,
                                personas_file=args.personas, min_history=args.min_history, stack=not args.no_stack,
                                model=args.model, threads=args.threads, method=args.method, k=args.k,
                                input_tokens=args.input_tokens, context_tokens=args.context_tokens,
                                lora=lora, global_lora=global_lora,
                                soft_prompt=SoftPromptConfig(embedder=args.embedder, steps=args.steps,
                                                             max_items=args.max_items or SoftPromptConfig.max_items),
                                executor=args.executor, retries=args.retries)
    _quiet_libraries()
    try:
        report = train_adapters(config)
    except TrainingFailedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    failed = report.failed
    if args.json:
        _print_json(report.to_json())
        return 1 if failed else 0
    for row in report.rows:
        loss = (f"  loss {row.first_loss:.3f} -> {row.last_loss:.3f} (first -> last steps)"
                if row.first_loss is not None else "")
        cost = f"  {row.seconds:.1f} s" if row.status == "trained" else ""
        size = f"  {row.bytes / 1e6:.2f} MB" if row.bytes else ""
        why = f": {row.error}" if row.error else ""
        print(f"{row.key}: {row.status} ({row.items} items){cost}{loss}{size}{why}")
    print(f"\nadapters in {report.store}")
    if failed:
        print(f"failed after {args.retries} retries ({len(failed)}; rerun to retry only these): "
              + ", ".join(row.key for row in failed), file=sys.stderr)
        return 1
    return 0


def _score(args: argparse.Namespace) -> int:
    from tailor.evaluation.scoring import score_files

    result = score_files(args.task, args.golds, args.preds)
    if args.json:
        _print_json(result)
    else:
        metrics = "  ".join(f"{name} {value:.4f}" for name, value in result["metrics"].items())
        print(f"{result['task']}  n={result['n']}  {metrics}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from tailor.evaluation.plots import cold_table, load_run, markdown_table, plot_run, summary_table, versus_table

    if args.summary:
        if args.figures:
            raise UsageError("--figures draws one run's plots; leave it out with --summary")
        print(summary_table([load_run(folder) for folder in args.runs], args.versus or ()))
        return 0
    for folder in args.runs:
        run = load_run(folder)
        config = run.results["config"]
        print(f"### {run.task} (split {config['split']}, n={run.results['n']}, model {run.results.get('model')})\n")
        print(markdown_table(run))
        cold = cold_table(run)
        if cold:
            print(f"\n{cold}")
        if args.versus:
            print()
            print(versus_table(run, args.versus))
        if args.figures:
            for path in plot_run(run, args.figures):
                print(f"\n![{path.stem}]({path})")
        print()
    return 0


def _data(args: argparse.Namespace) -> int:
    from tailor.data.packaged import BuildOptionError
    from tailor.tasks import build_dataset, data_sets

    if args.data_verb == "list" or args.data_verb is None:
        for task in data_sets():  # the registered tasks that build their own data set
            summary = next(iter((getattr(task.builder, "__doc__", None) or "").strip().splitlines()), "")
            print(f"{task.name}\t{summary}")
        return 0
    # The options given go to the data set's builder, which refuses any it does not take.
    given = {"repo": args.repo, "log": args.log, "keep_bots": args.keep_bots or None, "min_commits": args.min_commits,
             "interactions": args.interactions, "items": args.items}
    try:
        report = build_dataset(args.name, args.out, **{name: value for name, value in given.items() if value is not None})
    except BuildOptionError as error:
        raise UsageError(str(error)) from error
    splits = ", ".join(f"{split}: {n}" for split, n in report.splits.items())
    print(f"built {report.name} ({report.task}) in {report.out}: {report.users} users; {splits}; from {report.source}")
    for note in report.notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
