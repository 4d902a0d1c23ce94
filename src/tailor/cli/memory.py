"""``tailor eval-memory``: memory methods measured on LoCoMo-format conversations."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tailor.cli import choices


def _methods(text: str) -> tuple[str, ...]:
    from tailor.memory.episodes import EpisodeMethod

    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("name at least one method")
    for name in names:
        try:
            EpisodeMethod.parse(name)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return names


def add_eval_memory_verb(verbs: Any) -> None:
    """Add ``eval-memory`` to the ``tailor`` command's verbs."""
    verb = verbs.add_parser("eval-memory", help="measure memory methods on LoCoMo-format conversations "
                            "(evidence recall@k, ms per query; --qa: answer F1)")
    verb.add_argument("--data", required=True, help="a LoCoMo file (locomo10.json layout, gzipped or not)")
    verb.add_argument("--method", type=_methods, default=("memory",), metavar="M,...",
                      help="comma-separated: memory (the default method, as served), or bm25 | dense | hybrid "
                      "followed by +speaker, +date, +caption, +context[=N] (default memory)")
    verb.add_argument("--k", type=choices.positive, default=10, help="turns shown to the backend with --qa (default 10)")
    verb.add_argument("--backend", default="default", help="the model answering with --qa (default: default)")
    verb.add_argument("--qa", action="store_true", help="also answer each question from the turns found, "
                      "scored by LoCoMo's token F1")
    verb.add_argument("--embedder", default="minilm", help="embedder of dense and hybrid methods (default minilm)")
    verb.add_argument("--limit", type=choices.positive, default=None, help="first N questions of each conversation")
    verb.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def run_eval_memory(args: argparse.Namespace) -> int:
    from tailor.data.locomo import read_locomo
    from tailor.evaluation.memory import MemoryEvalConfig, evaluate_memory

    conversations = read_locomo(args.data)
    config = MemoryEvalConfig(methods=args.method, k=args.k, backend=args.backend if args.qa else None,
                              embedder=args.embedder, limit_questions=args.limit)

    def progress(name: str) -> None:
        print(f"eval-memory: {name}", file=sys.stderr, flush=True)

    report = evaluate_memory(conversations, config, progress=None if args.json else progress)
    if args.json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
        return 0
    columns = ["recall@1", "recall@5", "recall@10", "adversarial_recall@5", "ms_p50", "ms_p95"]
    if args.qa:
        columns += ["f1", "adversarial_f1"]
    print(f"{report['conversations']} conversations, {report['n']} questions")
    print("| method | " + " | ".join(columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for result in report["results"]:
        print(f"| {result['method']} | " + " | ".join(_cell(result["metrics"].get(c)) for c in columns) + " |")
    return 0


__all__ = ["add_eval_memory_verb", "run_eval_memory"]
