"""How fast the command line answers ``--help``: ``tailor --help`` and every subcommand's.

    python benchmarks/cli_help.py            # best of 5 runs per command
    python benchmarks/cli_help.py --runs 9

Each command runs in a fresh interpreter (``python -m tailor.cli.main ... --help``), as a
user's shell starts it; the table gives the best and the median wall-clock time, how many
modules tailor imported, and whether a heavy package (numpy, torch, transformers, bm25s,
fastapi, psycopg, ray) was imported. The target is under 0.3 s for every line. The CPU is
named above the table (the time depends on it).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

HEAVY = ("numpy", "torch", "transformers", "bm25s", "fastapi", "psycopg", "ray", "openvino", "sentence_transformers")
PROBE = ("import runpy, sys, json\n"
         "sys.argv = ['tailor'] + sys.argv[1:]\n"
         "try:\n"
         "    runpy.run_module('tailor.cli.main', run_name='__main__')\n"
         "except SystemExit:\n"
         "    pass\n"
         "mods = sorted(sys.modules)\n"
         "sys.stderr.write('\\n' + json.dumps([m for m in mods if m.startswith('tailor')] + ['--'] + "
         f"[m for m in mods if m.split('.')[0] in {HEAVY!r}]))\n")


def subcommands() -> list[str]:
    from tailor.cli.main import build_parser

    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices) if actions else []


def measure(argv: list[str], runs: int) -> tuple[float, float, int, list[str]]:
    times = []
    tailor_modules: list[str] = []
    heavy: list[str] = []
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PROBE, *argv, "--help"], capture_output=True, text=True,
                              check=False)
        times.append(time.perf_counter() - began)
        listed = json.loads(done.stderr.strip().splitlines()[-1])
        split = listed.index("--")
        tailor_modules, heavy = listed[:split], listed[split + 1:]
    return min(times), statistics.median(times), len(tailor_modules), sorted({m.split(".")[0] for m in heavy})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from tailor.machine import describe

    print(f"CPU: {describe()}; Python {platform.python_version()}; best and median of {args.runs} runs\n")
    print("| command | best s | median s | tailor modules | heavy packages imported |")
    print("|---|---|---|---|---|")
    for argv in [[], *([verb] for verb in subcommands())]:
        best, median, count, heavy = measure(argv, args.runs)
        name = " ".join(["tailor", *argv, "--help"])
        print(f"| `{name}` | {best:.3f} | {median:.3f} | {count} | {', '.join(heavy) or 'none'} |")


if __name__ == "__main__":
    main()
