"""Small registries of plug-ins, filled with lazy ``"module:attribute"`` strings.

Listing a registry's names imports nothing; an entry's module is imported only when the
entry is loaded. Third parties add entries through the Python entry-point group named
by the registry (for example ``tailor.backends``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from tailor.about import install_hint


class UnknownNameError(ValueError):
    """An unknown plug-in name; the message lists the valid ones."""


class MissingExtraError(ImportError):
    """A plug-in needs a package that is not installed; the message names the extra to install."""


def require(module: str, extra: str) -> Any:
    """Import ``module`` or fail with the ``pip install 'tailor-llm[extra]'`` hint."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{module} is not installed; install it with: {install_hint(extra)} ({error})"
        ) from error


class Registry:
    """Names mapped to ``"module:attribute"`` targets, resolved on first use."""

    def __init__(self, kind: str, entries: Mapping[str, str], *, group: str | None = None,
                 extras: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self._entries = dict(entries)
        self._group = group
        self._extras = dict(extras or {})
        self._plugins_loaded = False

    def _load_plugins(self) -> None:
        if self._plugins_loaded or self._group is None:
            return
        self._plugins_loaded = True
        for entry in metadata.entry_points(group=self._group):
            self._entries.setdefault(entry.name, entry.value)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def load(self, name: str) -> Any:
        """The object registered under ``name``."""
        self._load_plugins()
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}")
        module_name, _, attribute = self._entries[name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            extra = self._extras.get(name)
            hint = f"; install it with: {install_hint(extra)}" if extra else ""
            raise MissingExtraError(f"{self.kind} {name!r} needs a package that is missing ({error}){hint}") from error
        return getattr(module, attribute)
