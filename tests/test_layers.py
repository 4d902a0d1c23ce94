"""Layers point one way (docs/architecture.md): a module imports only from its own layer or
lower ones, lazy imports inside functions included, and no two parts import each other."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "tailor"

LAYERS: dict[str, int] = {
    # 0: types, the registry, small shared helpers
    "tailor": 0, "about": 0, "types": 0, "registry": 0, "background": 0, "logs": 0, "machine": 0,
    # 1: stores, data, metrics, preference data (simulated users and their rewards, pairs, readers, the judge)
    "store": 1, "data": 1, "metrics": 1, "alignment": 1,
    # 2: task declarations (their data readers and builders, their metrics)
    "tasks": 2,
    # 3: retrieval, prompting, embeddings
    "retrieval": 3, "prompting": 3, "embeddings": 3,
    # 4: models: backends, adapters, classic recommenders
    "backends": 4, "adapters": 4, "recommenders": 4,
    # 5: personalizers, personas, memory
    "personalizers": 5, "personas": 5, "memory": 5,
    # 6: methods: the registered objects that compose personalizers
    "methods": 6,
    # 7: a served user's chat: the method's personalizer plus the chat additions, users kept in step
    "chat": 7,
    # 8: entry points: evaluation, training jobs, batch work over a store's users, the server, the
    # command line, shipped fakes
    "evaluation": 8, "training": 8, "batch": 8, "server": 8, "cli": 8, "testing": 8,
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


def test_imports_point_down() -> None:
    upward = {(own, target) for own, target in _imports() if LAYERS[target] > LAYERS[own]}
    assert upward == set(), "a lower layer imports a higher one"


def test_no_two_parts_import_each_other() -> None:
    edges = _imports()
    cycles = {tuple(sorted((own, target))) for own, target in edges if (target, own) in edges}
    assert cycles == set(), "these import each other (within one layer): one of them must not"


SQL = re.compile(r"\b(SELECT .* FROM|INSERT INTO|CREATE (TABLE|INDEX|TRIGGER)|DELETE FROM|UPDATE \w+ SET)\b")


def test_sql_lives_in_the_stores() -> None:
    """Every SQL statement is a store method's (``store/``); the server, retrieval and
    memory reach the tables only through those methods."""
    outside = [str(path.relative_to(SOURCE)) for path in SOURCE.rglob("*.py")
               if _part(path) != "store" and SQL.search(path.read_text(encoding="utf-8"))]
    assert outside == []
