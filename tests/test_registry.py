"""Plug-in registries: lazy targets, helpful errors, third-party entries."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tailor.registry import MissingExtraError, Registry, UnknownNameError, require


def write_module(directory: Path, name: str, body: str = "class Thing:\n    pass\n") -> None:
    (directory / f"{name}.py").write_text(body)


def test_load_resolves_a_module_attribute_target() -> None:
    registry = Registry("widget", {"dumps": "json:dumps"})
    assert registry.load("dumps") is json.dumps
    assert "dumps" in registry
    assert "loads" not in registry


def test_unknown_name_lists_the_valid_names() -> None:
    registry = Registry("widget", {"alpha": "json:dumps", "beta": "json:loads"})
    with pytest.raises(UnknownNameError, match="unknown widget 'gamma'") as error:
        registry.load("gamma")
    assert "alpha, beta" in str(error.value)
    assert isinstance(error.value, ValueError)


def test_a_target_in_a_missing_module_names_the_extra_to_install() -> None:
    registry = Registry("widget", {"ghost": "tailor_test_no_such_module:Thing"}, extras={"ghost": "hf"})
    with pytest.raises(MissingExtraError, match=r"pip install 'tailor-llm\[hf\]'") as error:
        registry.load("ghost")
    assert "ghost" in str(error.value)
    assert isinstance(error.value, ImportError)


def test_a_missing_module_without_a_known_extra_still_says_what_is_missing() -> None:
    registry = Registry("widget", {"ghost": "tailor_test_no_such_module:Thing"})
    with pytest.raises(MissingExtraError, match="tailor_test_no_such_module"):
        registry.load("ghost")


def test_names_import_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = "tailor_test_lazy_target"
    write_module(tmp_path, module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    registry = Registry("widget", {"lazy": f"{module}:Thing", "other": "json:dumps"})
    assert registry.names() == ["lazy", "other"]
    assert "lazy" in registry
    assert module not in sys.modules
    thing = registry.load("lazy")
    assert module in sys.modules
    assert thing is sys.modules[module].Thing
    monkeypatch.delitem(sys.modules, module)


def test_entry_points_add_third_party_names_without_replacing_built_ins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, "tailor_test_plugin", "class Plugin:\n    pass\n")
    dist_info = tmp_path / "tailor_test_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: tailor-test-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[tailor.test_widgets]\nplugin = tailor_test_plugin:Plugin\nbuiltin = tailor_test_plugin:Plugin\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("widget", {"builtin": "json:dumps"}, group="tailor.test_widgets")
    assert registry.names() == ["builtin", "plugin"]
    assert registry.load("builtin") is json.dumps
    assert registry.load("plugin").__name__ == "Plugin"
    monkeypatch.delitem(sys.modules, "tailor_test_plugin")


def test_require_imports_or_names_the_extra() -> None:
    assert require("json", "hf") is json
    with pytest.raises(MissingExtraError, match=r"pip install 'tailor-llm\[dense\]'"):
        require("tailor_test_no_such_module", "dense")


def test_a_registry_can_take_names_in_other_spellings() -> None:
    registry = Registry("widget", {"Alpha-1": "json:dumps"}, canonical=lambda name: name.strip().title())
    assert registry.load(" alpha-1 ") is json.dumps
    assert "ALPHA-1" in registry and 4 not in registry
    with pytest.raises(UnknownNameError, match="unknown widget 'beta'; valid names: Alpha-1"):
        registry.load("beta")
