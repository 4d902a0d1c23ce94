"""Installing a plug-in package into the running test process: a module and a dist-info
with entry points, on ``sys.path``, and the registries told to read entry points again."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tailor.registry import Registry


@contextmanager
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, code: str,
                     entry_points: Mapping[str, Mapping[str, str]], registries: list[Registry]) -> Iterator[None]:
    """``module`` (with ``code``) installed as a package whose entry points are
    ``{group: {name: "module:attribute"}}``; ``registries`` see it inside the block and
    forget it after."""
    folder = tmp_path / f"plugin-{module}"
    folder.mkdir()
    (folder / f"{module}.py").write_text(code)
    dist_info = folder / f"{module}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in entries.items())
        for group, entries in entry_points.items()))
    monkeypatch.syspath_prepend(str(folder))
    for registry in registries:
        registry.reload_plugins()
    try:
        yield
    finally:
        monkeypatch.undo()
        sys.modules.pop(module, None)
        for registry in registries:
            registry.reload_plugins()
