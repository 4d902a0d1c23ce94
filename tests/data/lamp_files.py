"""LaMP files for tests: a JSON writer and a valid LaMP-4 question to vary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def question(qid: str = "q1", **overrides: Any) -> dict[str, Any]:
    """A valid LaMP-4 question, with ``overrides`` replacing or adding keys."""
    base: dict[str, Any] = {
        "id": qid,
        "input": "Generate a headline for the following article: rain again",
        "profile": [{"id": f"{qid}-0", "title": "Sunny", "text": "It was sunny.", "date": "2020-01-01"}],
    }
    base.update(overrides)
    return base
