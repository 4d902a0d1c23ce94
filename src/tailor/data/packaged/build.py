"""What every packaged-data builder shares: finding a package's data file, the build
report, interleaving users, and writing LaMP-format splits atomically."""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# One question and its gold output, as they go into the questions and outputs files.
Question = tuple[dict[str, Any], str]


@dataclass(frozen=True)
class BuildReport:
    name: str
    task: str
    out: str
    splits: dict[str, int]
    users: int
    source: str
    notes: tuple[str, ...] = ()
    """What the builder has to tell about this build beyond its sizes (one line each)."""


class BuildOptionError(ValueError):
    """A data set's build was asked with options it does not take, or without one it needs."""


def package_file(package: str, relative: str, *, install_hint: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; {install_hint}")
    for location in spec.submodule_search_locations:
        path = Path(location) / relative
        if path.exists():
            return path
    raise FileNotFoundError(f"{package} is installed but has no {relative}; {install_hint}")


def words(text: str, limit: int) -> str:
    """The first ``limit`` words of ``text``, single-spaced."""
    return " ".join(text.split()[:limit])


def check_at_least_one(**options: int) -> None:
    """Builders' size options must be positive; say which one was not."""
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer of at least 1, got {value!r}")


def interleave(per_user: Mapping[str, Sequence[T]]) -> list[T]:
    """Round-robin over users in the mapping's order: every user's first item, then every
    user's second, ... so that the first N questions of a split cover as many users as N allows."""
    rounds = max((len(items) for items in per_user.values()), default=0)
    return [items[position] for position in range(rounds) for items in per_user.values() if position < len(items)]


def write_splits(out: str | Path, *, name: str, data_format: str, source: str,
                 splits: Mapping[str, Mapping[str, Sequence[Question]]],
                 details: Mapping[str, Any] | None = None) -> BuildReport:
    """Write ``{split}_questions.json`` and ``{split}_outputs.json`` for every split, users
    interleaved, plus a ``dataset.json`` that describes the build (with ``details`` added)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    official = "LaMP_" + data_format.removeprefix("LaMP-")[0]  # the official files know LaMP_1..LaMP_7
    counts: dict[str, int] = {}
    users: set[str] = set()
    for split, per_user in splits.items():
        pairs = interleave(per_user)
        users.update(user for user, questions in per_user.items() if questions)
        write_json(out / f"{split}_questions.json", [question for question, _ in pairs])
        write_json(out / f"{split}_outputs.json",
                   {"task": official, "golds": [{"id": question["id"], "output": gold} for question, gold in pairs]})
        counts[split] = len(pairs)
    write_json(out / "dataset.json", {"name": name, "task": name, "data_format": data_format, "splits": counts,
                                      "users": len(users), "source": source, **(details or {})})
    return BuildReport(name, name, str(out), counts, len(users), source)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically: a crash leaves the old file or the new one."""
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; data sets are for everyone
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, ensure_ascii=False)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
