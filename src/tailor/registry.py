"""Small registries of plug-ins, filled with lazy ``"module:attribute"`` strings.

Listing a registry's names imports nothing; an entry's module is imported only when the
entry is loaded. Third parties add entries through the Python entry-point group named
by the registry (for example ``tailor.backends``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
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
                 extras: Mapping[str, str] | None = None, helps: Mapping[str, str] | None = None,
                 canonical: Callable[[str], str] | None = None) -> None:
        self.kind = kind
        # Turns a name as typed into the registered one ("lamp_4" -> "LaMP-4"); names it does
        # not know it returns unchanged.
        self._canonical = canonical or (lambda name: name)
        self._builtins = dict(entries)
        self._entries = dict(entries)
        self._group = group
        self._extras = dict(extras or {})
        self._helps = dict(helps or {})
        self._plugins_loaded = False

    def _load_plugins(self) -> None:
        if self._plugins_loaded or self._group is None:
            return
        self._plugins_loaded = True
        for entry in metadata.entry_points(group=self._group):
            self._entries.setdefault(entry.name, entry.value)

    def reload_plugins(self) -> None:
        """Forget the entries read from entry points, to read them again on next use (after
        a package was installed into the running process, as tests do)."""
        self._entries = dict(self._builtins)
        self._plugins_loaded = False

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return (self._canonical(name) if isinstance(name, str) else name) in self._entries

    def help(self, name: str) -> str:
        """The help line of ``name``: the one registered with it, else the loaded object's
        ``help`` attribute or the first line of its docstring."""
        name = self._canonical(name)
        if name in self._helps:
            return self._helps[name]
        loaded = self.load(name)
        text = getattr(loaded, "help", None)
        if not isinstance(text, str):
            text = (getattr(loaded, "__doc__", None) or "").strip()
        return text.split("\n")[0]

    def load(self, name: str) -> Any:
        """The object registered under ``name`` (or the name the registry's ``canonical`` makes of it)."""
        self._load_plugins()
        typed, name = name, self._canonical(name)
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {typed!r}; valid names: {', '.join(self.names())}")
        module_name, _, attribute = self._entries[name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            extra = self._extras.get(name)
            hint = f"; install it with: {install_hint(extra)}" if extra else ""
            raise MissingExtraError(f"{self.kind} {name!r} needs a package that is missing ({error}){hint}") from error
        return getattr(module, attribute)
