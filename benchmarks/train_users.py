"""Users per hour for per-user adapter training: the local executor against Ray.

    python benchmarks/train_users.py --data DIR [--task news-headlines] [--users 8] [--max-items 50]

Trains the same users' adapters (``tailor train-adapter --scope user --no-stack``, the
default LoRA settings, each user's ``--max-items`` most recent history items) three ways,
each into a fresh adapter store: the local executor with every core's thread (``--threads
CORES``), Ray with one task at a time (``--executor ray --threads CORES``: one worker using
every core) and Ray with one task per core (``--executor ray --threads 1``). The users
are the first ``--users`` of the split with at least ``--max-items`` history items. Prints
a Markdown table: wall seconds (the model load, Ray's start and the driver's work
included), seconds per user, users per hour, and the adapter's stored size.

The estimate in docs/scale.md is computed from these rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tailor.machine import describe as describe_cpu


def users_with_history(data: Path, split: str, count: int, minimum: int) -> list[str]:
    questions = json.loads((data / f"{split}_questions.json").read_text(encoding="utf-8"))
    users: list[str] = []
    for question in questions:
        user = str(question.get("user_id"))
        if user not in users and len(question.get("profile", ())) >= minimum:
            users.append(user)
        if len(users) == count:
            break
    if len(users) < count:
        raise SystemExit(f"only {len(users)} users of {data} have {minimum} history items; lower --max-items")
    return users


def adapter_bytes(store: Path) -> int:
    """The mean stored size of the store's adapters (their weights)."""
    files = [p for p in store.rglob("*") if p.is_file() and p.suffix in (".sqlite", ".db")]
    sizes = []
    for file in files:
        with sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "adapters" in tables:
                sizes += [int(row[0]) for row in connection.execute("SELECT length(weights) FROM adapters")]
    return int(sum(sizes) / len(sizes)) if sizes else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--task", default="news-headlines")
    parser.add_argument("--split", default="train")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--max-items", type=int, default=50)
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    users = users_with_history(args.data, args.split, args.users, args.max_items)
    tailor = str(Path(sys.executable).with_name("tailor"))
    setups = [("local", ["--threads", str(cores)]), ("ray, 1 task at a time", ["--executor", "ray", "--threads", str(cores)]),
              (f"ray, {cores} tasks at once", ["--executor", "ray", "--threads", "1"])]
    rows = []
    work = Path(tempfile.mkdtemp(prefix="train-users-"))
    try:
        for label, options in setups:
            out = work / label.replace(" ", "-").replace(",", "")
            command = [tailor, "train-adapter", "--task", args.task, "--data", str(args.data), "--split", args.split,
                       "--scope", "user", "--no-stack", "--users", ",".join(users), "--max-items",
                       str(args.max_items), "--out", str(out), *options]
            began = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - began
            if done.returncode != 0:
                raise SystemExit(f"{label} failed ({done.returncode}): {done.stderr[-2000:]}")
            rows.append((label, seconds, adapter_bytes(out)))
            print(f"  {label}: {seconds:.0f} s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{describe_cpu()}, Python {platform.python_version()}; {len(users)} users of {args.task} "
          f"({args.split}), {args.max_items} history items each, default LoRA settings\n")
    print("| executor | wall | s per user | users per hour | adapter size |\n| --- | --- | --- | --- | --- |")
    for label, seconds, size in rows:
        print(f"| {label} | {seconds:.0f} s | {seconds / len(users):.1f} | {3600 * len(users) / seconds:,.0f} | "
              f"{size / 1024:,.0f} KiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
