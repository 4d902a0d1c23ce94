"""``tailor simulate``, ``tailor train-preference`` and ``tailor eval-preference``: preference
data from simulated users, preference adapters trained on users' feedback, and how much they
please the users they were trained for."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tailor.cli import choices

_LOSSES = ("dpo", "simpo", "kto")
_SCOPES = ("user", "persona", "global", "pole", "soup")


def add_alignment_verbs(verbs: Any) -> None:
    """Add ``simulate``, ``train-preference`` and ``eval-preference`` to the ``tailor`` command's verbs."""
    simulate = verbs.add_parser("simulate", help="simulated users and the preference pairs their rewards make")
    actions = simulate.add_subparsers(dest="simulate_verb", metavar="ACTION")
    users = actions.add_parser("users", help="a seeded population covering every combination of preference poles")
    users.add_argument("--n", type=choices.positive, default=16, help="how many users (default 16: each of the 16 "
                       "combinations of 4 two-pole dimensions once)")
    users.add_argument("--seed", type=int, default=0)
    users.add_argument("--concentration", type=float, default=4.0,
                       help="Dirichlet concentration of the users' weights over dimensions (default 4; lower: "
                       "users care about fewer dimensions)")
    users.add_argument("--out", required=True, help="folder for users.json")
    users.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    pairs = actions.add_parser("pairs", help="sample replies to packaged prompts and rank them by each user's reward")
    pairs.add_argument("--users", required=True, metavar="DIR", help="folder holding users.json")
    pairs.add_argument("--out", default=None, help="folder for the prompts and pairs (default: --users)")
    pairs.add_argument("--prompts", type=choices.positive, default=24, help="training prompts (default 24)")
    pairs.add_argument("--eval-prompts", type=choices.count, default=8,
                       help="held-out prompts, with their pairs (default 8)")
    pairs.add_argument("--samples", type=choices.positive, default=6,
                       help="replies sampled per prompt (default 6: one per style hint)")
    pairs.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default 0.8)")
    pairs.add_argument("--max-tokens", type=choices.positive, default=64, help="tokens per reply (default 64)")
    pairs.add_argument("--no-hints", action="store_true",
                       help="sample every reply from the prompt as it is (by default sample i is asked with style "
                       "hint i: one reply each leaning to an end of the dimensions)")
    pairs.add_argument("--pairs-per-prompt", type=choices.positive, default=1,
                       help="pairs per user (and pole) and prompt: the best reply over the worst, the second best "
                       "over the second worst, ... (default 1)")
    pairs.add_argument("--no-shortened", action="store_true",
                       help="rank the sampled replies alone (by default each reply's first sentence is one more "
                       "candidate: the reply had the model stopped there, so short replies are ranked too)")
    pairs.add_argument("--seed", type=int, default=0)
    pairs.add_argument("--backend", default="default-fp32",
                       help="the model that writes the replies (default default-fp32: transformers samples; "
                       f"{choices.backend_help()})")
    pairs.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    train = verbs.add_parser("train-preference", help="train preference LoRA adapters (DPO, SimPO, KTO) on users' "
                             "feedback into the store tailor serve reads")
    train.add_argument("--store", required=True, help=f"the serving store (SQLite file or URL). {choices.store_help()}")
    train.add_argument("--loss", choices=_LOSSES, default="dpo",
                       help="dpo (pairs), simpo (pairs, no reference model) or kto (ratings; pairs count as one "
                       "liked and one disliked reply)")
    train.add_argument("--scope", choices=_SCOPES, default="user",
                       help="user (one adapter per user with enough feedback), persona, global, pole (one per "
                       "preference pole, from --pairs pole_pairs.jsonl), soup (each user's soup weights: "
                       "--simulated-users, or those under which their pairs are likeliest)")
    train.add_argument("--pairs", default=None, metavar="FILE",
                       help="import preference pairs first: JSONL {user, messages, chosen, rejected}, or a PRISM "
                       "folder (conversations.jsonl, survey.jsonl)")
    train.add_argument("--format", dest="pairs_format", choices=("auto", "jsonl", "prism"), default="auto")
    train.add_argument("--since", default=None, metavar="TIME",
                       help="retrain only what feedback given at or after TIME (ISO-8601) changes")
    train.add_argument("--users", default=None, metavar="ID,ID", help="only these users")
    train.add_argument("--min-pairs", type=choices.positive, default=8,
                       help="least feedback for an adapter of one's own (default 8)")
    train.add_argument("--max-pairs", type=choices.positive, default=None,
                       help="at most N examples per adapter (a pooled one takes them in turn from each user); "
                       "soup scope: fit each user's weights to their first N pairs (default: all)")
    train.add_argument("--personas", default=None, metavar="FILE", help="persona scope: {persona_id: [user_ids]}")
    train.add_argument("--simulated-users", default=None, metavar="DIR",
                       help="soup scope: weights from these users' stated poles (users.json)")
    train.add_argument("--epochs", type=choices.positive, default=None, help="default 5")
    train.add_argument("--learning-rate", type=float, default=None, help="default 3e-3")
    train.add_argument("--batch-size", type=choices.positive, default=None, help="default 2")
    train.add_argument("--beta", type=float, default=None)
    train.add_argument("--sft-weight", type=float, default=None,
                       help="dpo: weight of a log-likelihood term on the chosen replies (RPO; default 1; 0: DPO alone)")
    train.add_argument("--rank", type=choices.positive, default=None)
    train.add_argument("--model", default=None, help="a model directory (default: the default model)")
    choices.add_executor_options(
        train, where="where the adapters train: here (local, default), or one Ray task per adapter on a local Ray, "
        "$RAY_ADDRESS or the cluster at ADDRESS, each stored as it finishes (--scope soup trains nothing and always "
        "runs here)", unit="an adapter", threads="torch threads (default: torch's choice)")
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    evaluate = verbs.add_parser("eval-preference", help="win rates of preference methods against the base model "
                                "under each simulated user's reward")
    evaluate.add_argument("--data", required=True, help="folder written by tailor simulate users and pairs")
    evaluate.add_argument("--adapters", default=None, metavar="STORE", help="the store tailor train-preference wrote")
    evaluate.add_argument("--method", type=choices.method_list, default="none,preference",
                          metavar="METHOD[,METHOD...]", help="methods to compare with none (default none,preference; "
                          "also soup, preference-global)")
    evaluate.add_argument("--split", default="dev")
    evaluate.add_argument("--backend", default="default-fp32", help=choices.backend_help())
    evaluate.add_argument("--users", default=None, metavar="ID,ID")
    evaluate.add_argument("--limit", type=choices.positive, default=None, help="first N prompts of every user")
    evaluate.add_argument("--batch-size", type=choices.positive, default=8)
    evaluate.add_argument("--judge", default=None, metavar="BACKEND",
                          help="also judge each reply against the base model's with this backend, both orders "
                          "(openai:URL for a strong judge)")
    evaluate.add_argument("--judge-mode", choices=("likelihood", "generate"), default="likelihood")
    evaluate.add_argument("--judge-limit", type=choices.positive, default=None, help="judge the first N examples")
    evaluate.add_argument("--no-accuracy", action="store_true", help="skip preference accuracy on held-out pairs")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--out", default=None, help="folder for results.json and every reply")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _users(text: str | None) -> tuple[str, ...] | None:
    return tuple(u.strip() for u in text.split(",") if u.strip()) if text else None


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def run_simulate(args: argparse.Namespace) -> int:
    if args.simulate_verb == "users":
        from tailor.alignment.users import population, write_users

        made = population(args.n, seed=args.seed, concentration=args.concentration)
        path = write_users(made, args.out, seed=args.seed)
        if args.json:
            _print_json({"users": [u.to_dict() for u in made], "path": str(path)})
        else:
            for user in made:
                weights = " ".join(f"{k}={v:.2f}" for k, v in user.weights.items())
                print(f"{user.user_id}\t{user.profile}\t{weights}")
            print(f"{len(made)} users in {path}", file=sys.stderr)
        return 0
    if args.simulate_verb == "pairs":
        return _simulate_pairs(args)
    print("tailor simulate: choose an action: users, pairs", file=sys.stderr)
    return 2


def _simulate_pairs(args: argparse.Namespace) -> int:
    from tailor.alignment.pairs import (
        STYLE_HINTS,
        news_prompts,
        pole_pairs,
        rank_pairs,
        sample_replies,
        write_pairs,
        write_prompts,
    )
    from tailor.alignment.users import read_users
    from tailor.backends import load_backend

    users = read_users(args.users)
    out = Path(args.out or args.users)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "users.json").resolve() != (Path(args.users) / "users.json").resolve():
        (out / "users.json").write_text((Path(args.users) / "users.json").read_text(encoding="utf-8"),
                                        encoding="utf-8")
    backend = load_backend(args.backend)
    began = time.perf_counter()
    splits = {"train": news_prompts(args.prompts, seed=args.seed)}
    if args.eval_prompts:
        splits["dev"] = news_prompts(args.eval_prompts, seed=args.seed, offset=args.prompts)
    counts: dict[str, Any] = {}
    for split, prompts in splits.items():
        write_prompts(prompts, out / f"{split}_prompts.jsonl")
        samples = sample_replies(backend, prompts, n=args.samples, temperature=args.temperature, seed=args.seed,
                                 max_new_tokens=args.max_tokens, hints=() if args.no_hints else STYLE_HINTS,
                                 shortened=not args.no_shortened)
        with (out / f"{split}_samples.jsonl").open("w", encoding="utf-8") as handle:
            for sample in samples:
                handle.write(json.dumps({"prompt_id": sample.prompt.id, "replies": list(sample.replies)},
                                        ensure_ascii=False) + "\n")
        pairs = rank_pairs(samples, users, per_prompt=args.pairs_per_prompt)
        counts[f"{split}_pairs"] = write_pairs(pairs, out / f"{split}_pairs.jsonl")
        if split == "train":
            counts["pole_pairs"] = write_pairs(pole_pairs(samples, per_prompt=args.pairs_per_prompt),
                                              out / "pole_pairs.jsonl")
    seconds = round(time.perf_counter() - began, 1)
    if args.json:
        _print_json({"out": str(out), "users": len(users), **counts, "seconds": seconds})
    else:
        print(f"{len(users)} users; " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; {seconds} s; in {out}")
    return 0


def run_train_preference(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tailor.adapters.preference import PreferenceTrainConfig
    from tailor.training.preference import TrainPreferenceConfig, train_preference

    names = ("epochs", "learning_rate", "batch_size", "beta", "sft_weight", "rank")
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    train = replace(PreferenceTrainConfig(loss=args.loss), **overrides)
    config = TrainPreferenceConfig(store=args.store, loss=args.loss, scope=args.scope, pairs=args.pairs,
                                   pairs_format=args.pairs_format, users=_users(args.users), since=args.since,
                                   min_pairs=args.min_pairs, max_examples=args.max_pairs, personas_file=args.personas,
                                   simulated_users=args.simulated_users, model=args.model, threads=args.threads,
                                   train=train, executor=args.executor, retries=args.retries)
    _quiet()
    report = train_preference(config, progress=None if args.json else lambda line: print(line, file=sys.stderr))
    failed = report.failed
    if args.json:
        _print_json(report.to_json())
        return 1 if failed else 0
    for row in report.rows:
        loss = f" loss {row.first_loss} -> {row.last_loss}" if row.first_loss is not None else ""
        extra = f" {row.seconds} s, {row.bytes:,} bytes" if row.status == "trained" else ""
        why = f": {row.error}" if row.error else ""
        print(f"{row.key}\t{row.status}\t{row.examples} examples{loss}{extra}{why}")
    print(f"imported {report.imported} pairs; next run: --since {report.began_at}", file=sys.stderr)
    if failed:
        print(f"failed after {args.retries} retries ({len(failed)}; rerun to retry only these): "
              + ", ".join(row.key for row in failed), file=sys.stderr)
        return 1
    return 0


def run_eval_preference(args: argparse.Namespace) -> int:
    from tailor.evaluation.preference import PreferenceEvalConfig, evaluate_preference, format_preference

    config = PreferenceEvalConfig(data=args.data, adapters=args.adapters, methods=tuple(args.method),
                                  split=args.split, backend=args.backend, users=_users(args.users), limit=args.limit,
                                  batch_size=args.batch_size, seed=args.seed, judge=args.judge,
                                  judge_mode=args.judge_mode, judge_limit=args.judge_limit,
                                  accuracy=not args.no_accuracy, out=args.out)
    _quiet()
    report = evaluate_preference(config)
    if args.json:
        _print_json(report.to_json())
    else:
        print(format_preference(report))
    return 0


def _quiet() -> None:
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # TRL's bar over the reference log-probabilities
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except ImportError:
        pass


def add_preference_worker_options(serve: Any) -> None:
    """``tailor serve``'s options for training preference adapters beside the server."""
    serve.add_argument("--train-preference-every", type=float, default=None, metavar="SECONDS",
                       help="every SECONDS, train preference adapters (tailor train-preference --since the last run) "
                       "for the users with new feedback, into the store; served with --adapter-task chat without "
                       "a restart (default: never)")
    serve.add_argument("--preference-loss", choices=_LOSSES, default="dpo",
                       help="the loss of --train-preference-every (default dpo)")
    serve.add_argument("--preference-min-pairs", type=choices.positive, default=8,
                       help="least feedback for a user's own adapter with --train-preference-every (default 8)")


def start_preference_worker(args: argparse.Namespace) -> Any:
    """The background trainer ``tailor serve --train-preference-every`` asks for, started (or ``None``)."""
    every = getattr(args, "train_preference_every", None)
    if every is None:
        return None
    from tailor.training.preference import PreferenceWorker, TrainPreferenceConfig, utc_time

    worker = PreferenceWorker(TrainPreferenceConfig(store=args.store, loss=args.preference_loss,
                                                    min_pairs=args.preference_min_pairs, since=utc_time()), every)
    worker.start()
    return worker
