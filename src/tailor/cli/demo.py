"""``tailor demo``: the main job in one command. It builds a packaged real task, evaluates
the non-personalized baseline against personalization on the default model, says whether
personalization helped (the paired difference and its interval), and shows two examples
side by side: what the personalized prompt retrieved and what each method answered."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tailor.cli import choices

# The packaged generation tasks `tailor demo` can run, with what one of their users is.
# How much of each text the examples show, in characters.
_INPUT_CHARS, _ITEM_CHARS, _ANSWER_CHARS = 220, 160, 160


def add_demo_verb(verbs: Any) -> None:
    """Add ``demo`` to the ``tailor`` command's verbs."""
    demo = verbs.add_parser("demo", help="build a packaged real task and evaluate none vs bm25 on the default model")
    demo.add_argument("--task", default="tweets",
                      help="a packaged task that builds from installed packages alone (`tailor data list`; "
                           "default tweets: finish a tweet per account, where retrieval measurably helps the "
                           "default model; news-headlines is where it does not)")
    demo.add_argument("--n", type=choices.positive, default=200, help="examples to evaluate (default 200)")
    demo.add_argument("--methods", default="none,bm25", type=choices.method_list, metavar="METHOD[,METHOD...]",
                      help="methods to compare, as tailor eval --method (default none,bm25)")
    demo.add_argument("--backend", default="default", help="the model (default: the default model on its default "
                      "engine); as tailor eval --backend")
    demo.add_argument("--out", default=None, help="output folder (default $TAILOR_HOME/runs/demo)")
    demo.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def converts_model(backend: str) -> bool:
    """Whether ``backend`` runs the packaged default model, which its first use converts
    (GGUF to safetensors, and an engine export): ``default``, ``default-fp32``,
    ``default-onnx`` and their precisions, alone or as the inner backend of ``ray:N:``."""
    name, _, rest = backend.partition(":")
    if name == "ray":
        return converts_model(rest.partition(":")[2])
    return name.startswith("default")


def run_demo(args: argparse.Namespace) -> int:
    from tailor.backends.model_files import tailor_home
    from tailor.cli.main import _quiet_libraries as quiet_libraries
    from tailor.evaluation.plots import load_run
    from tailor.evaluation.report import format_table
    from tailor.evaluation.runner import EvalConfig, evaluate
    from tailor.evaluation.side_by_side import RULE, side_by_side
    from tailor.tasks import build_dataset, get_task

    out = Path(args.out) if args.out else tailor_home() / "runs" / "demo"
    began = time.perf_counter()
    report_line = print if not args.json else (lambda *a, **k: print(*a, **k, file=sys.stderr))
    task = get_task(args.task)
    if task.builder is None:
        raise ValueError(f"tailor demo runs a packaged task (one that tailor data build makes); {task.name} is not "
                         "one: see tailor data list")
    data_dir = out / "data" / task.name
    if not task.has_split(data_dir, "dev"):
        built = build_dataset(task.name, data_dir)
        report_line(f"built {task.name} from {built.source}: {built.users} {task.users_are}, "
                    f"{built.splits['dev']} dev questions")
    run_dir = out / f"eval-{task.name}-n{args.n}"
    # k and the prompt layout are the task's measured defaults (docs/results.md).
    config = EvalConfig(task=task.name, data=str(data_dir), split="dev",
                        methods=tuple(args.methods),
                        backend=args.backend, limit=args.n, out=str(run_dir))
    quiet_libraries()
    conversion = (" (the first run converts the packaged model once, about a minute)"
                  if converts_model(args.backend) else "")
    report_line(f"evaluating {', '.join(str(m) for m in config.methods)} on the first {args.n} dev questions "
                f"with the {args.backend} backend{conversion}")
    report = evaluate(config)
    compared = [r.method for r in report.results]
    personalized = next((m for m in compared if m != "none"), "")
    examples = side_by_side(load_run(run_dir), personalized) if personalized and "none" in compared else []
    if args.json:
        sys.stdout.write(json.dumps(report.to_json() | {"examples": [e.to_json() for e in examples]},
                                    ensure_ascii=False) + "\n")
        return 0
    print(format_table(report))
    for line in demo_verdicts(report):
        print(line)
    if examples:
        metric = next(iter(report.results[0].metrics), "score")
        print(f"\nWhat {personalized} changed, on two questions chosen by a rule ("
              + RULE.format(method=personalized, metric=metric, baseline="none") + "):")
        for number, example in enumerate(examples, 1):
            print()
            print("\n".join(format_example(number, example, personalized)))
    print(f"\n{time.perf_counter() - began:.0f} s in all; predictions and results.json in {run_dir}")
    return 0


def _short(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word to at most ``limit`` characters."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    return line[:limit].rsplit(" ", 1)[0].rstrip(" ,.;:") + " ..."


def format_example(number: int, example: Any, method: str) -> list[str]:
    """One example of :func:`tailor.evaluation.side_by_side.side_by_side` as aligned lines:
    the input, the first item ``method`` retrieved, the gold, and every method's answer
    with its score."""
    width = max(len("retrieved"), *(len(m) for m in example.answers))

    def label(name: str) -> str:
        return f"  {name.ljust(width)}  "

    lines = [f"[{number}] {example.why} (user {example.user_id}, question {example.example_id})",
             label("input") + _short(example.input, _INPUT_CHARS)]
    if example.retrieved:
        rank = f"by {method}, 1st of {len(example.retrieved)}: " if len(example.retrieved) > 1 else f"by {method}: "
        lines.append(label("retrieved") + rank + _short(example.retrieved[0].text(), _ITEM_CHARS))
    else:
        lines.append(label("retrieved") + f"nothing ({method} retrieved no item)")
    lines.append(label("gold") + _short(example.gold, _ANSWER_CHARS))
    for name, answer in example.answers.items():
        lines.append(label(name) + f"{_short(answer, _ANSWER_CHARS) or '(empty)'}   [{example.scores[name]:.4f}]")
    return lines


def demo_verdicts(report: Any) -> list[str]:
    """One line per method against ``none``: the paired difference in the task's first
    metric, its 95% interval, the relative change, and whether the interval excludes 0."""
    from tailor.metrics import lower_is_better

    baseline = next((r for r in report.results if r.method == "none"), None)
    lines = []
    for result in report.results:
        if baseline is None or result is baseline or not result.versus_none:
            continue
        metric = next(iter(result.versus_none))
        paired = result.versus_none[metric]
        delta, low, high = paired["delta"], paired["low"], paired["high"]
        lower_better = lower_is_better(metric)
        if low > 0 or high < 0:
            helps = (delta < 0) == lower_better
            verdict = "personalization helps" if helps else "personalization hurts"
        else:
            verdict = "no measurable difference (the interval contains 0)"
        base = baseline.metrics.get(metric, 0.0)
        relative = f" ({delta / base:+.0%})" if base else ""
        lines.append(f"{result.method} vs none: {metric} {delta:+.4f} [{low:+.4f}, {high:+.4f}]{relative}, "
                     f"n={result.n}: {verdict}")
    return lines
