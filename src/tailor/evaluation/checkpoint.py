"""Per-method prediction checkpoints, so that a killed evaluation resumes where it stopped.

Each method appends one JSON line per example to ``predictions/<method>.jsonl`` and
flushes to disk after every batch. On restart the file is read back; a last line cut
short by the kill is dropped (and its example predicted again).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def safe_name(method: str) -> str:
    """A method spec as a file name (``bm25:dialogue`` -> ``bm25-dialogue``)."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in method)


class Checkpoint:
    """An append-only JSON-lines file of predictions, one object per example with an ``id``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        with self.path.open("rb") as handle:
            data = handle.read()
        lines = data.split(b"\n")
        complete = lines[:-1] if not data.endswith(b"\n") else lines
        for line in complete:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by a kill: it and anything after it are predicted again
            self.rows[str(row["id"])] = row
        # Rewrite without the torn tail so appends start on a clean line.
        valid = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in self.rows.values())
        if valid != data:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(valid)
            os.replace(tmp, self.path)

    def __contains__(self, example_id: str) -> bool:
        return example_id in self.rows

    def append(self, rows: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        for row in rows:
            self.rows[str(row["id"])] = row


def prepare_ahead(method: Any, task: Any, todo: Sequence[Any], progress: Callable[[int, str], Any] | None) -> float:
    """Run ``method.prepare`` (the LLM work a method does once, up front, in batches: summaries,
    personas, preference profiles) on the examples still to answer, with a progress bar per
    user; the seconds it took per example (0 when there is nothing to prepare)."""
    prepare = getattr(method, "prepare", None)
    if not todo or prepare is None:
        return 0.0
    began = time.perf_counter()
    users = len(dict.fromkeys(e.user_id for e in todo))
    bar = progress(users, f"{method.name}: preparing") if progress else None
    prepare(task, todo, bar)
    if bar is not None:
        bar.close()
    return (time.perf_counter() - began) / len(todo)

