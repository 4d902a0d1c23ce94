"""Layers point one way (docs/architecture.md): a module imports only from its own layer or
lower ones, lazy imports inside functions included. The known exceptions are listed, so
that a new one fails here and a fixed one must be struck off."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "tailor"

LAYERS: dict[str, int] = {
    # 0: types, the registry, small shared helpers
    "tailor": 0, "about": 0, "types": 0, "registry": 0, "task_names": 0, "background": 0,
    # 1: stores, data, metrics, task specs
    "profiles": 1, "data": 1, "metrics": 1, "tasks": 1,
    # 2: retrieval, prompting, embeddings
    "retrieval": 2, "prompting": 2, "embeddings": 2,
    # 3: models: backends and adapters
    "backends": 3, "adapters": 3,
    # 4: personalizers, personas, memory
    "personalizers": 4, "personas": 4, "memory": 4,
    # 5: entry points: evaluation, the server, the command line, shipped fakes
    "evaluation": 5, "server": 5, "cli": 5, "testing": 5,
}

# Upward imports that exist today (issue 11, item 5), each with why it is still there.
KNOWN_UPWARD = {
    # Summaries and style notes are written by a model: prompting takes a Backend.
    ("prompting", "backends"),
    # TrainingPrompt.of parses a method; adapters/jobs.py (training jobs) builds personalizers.
    ("adapters", "personalizers"),
}


def _part(path: Path) -> str:
    relative = path.relative_to(SOURCE)
    return relative.parts[0].removesuffix(".py") if len(relative.parts) > 1 or relative.stem != "__init__" else "tailor"


def _imports() -> set[tuple[str, str]]:
    edges = set()
    for path in SOURCE.rglob("*.py"):
        own = _part(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name == "tailor" or name.startswith("tailor."):
                    target = name.split(".")[1] if "." in name else "tailor"
                    if target != own:
                        edges.add((own, target))
    return edges


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {_part(path) for path in SOURCE.rglob("*.py")}
    assert parts <= set(LAYERS), f"give these a layer in LAYERS and docs/architecture.md: {parts - set(LAYERS)}"


def test_imports_point_down_except_the_known_ones() -> None:
    upward = {(own, target) for own, target in _imports() if LAYERS[target] > LAYERS[own]}
    assert upward - KNOWN_UPWARD == set(), "a lower layer imports a higher one"
    assert KNOWN_UPWARD - upward == set(), "fixed: strike these off KNOWN_UPWARD and docs/architecture.md"
