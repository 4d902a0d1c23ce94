"""Where per-user adapters plug into the server: their metadata in a user's export, and
their deletion with the user.

tailor's own adapter store (:mod:`tailor.adapters.store`) keeps adapters in the profile
store's file, where deleting the user removes them by cascade anyway; it is used by
default. Adapters kept elsewhere (files, an object store) need an :class:`AdapterHook`
passed to ``create_app``, since no cascade reaches them. Which adapter answers a user is
decided in :mod:`tailor.server.adapters`, from ``GenerationRequest.user_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from tailor.profiles import SQLProfileStore


@runtime_checkable
class AdapterHook(Protocol):
    """Per-user adapter storage, as the server sees it (ids are the store's user ids)."""

    def metadata(self, user_id: str) -> Mapping[str, Any] | None:
        """JSON-ready metadata of the user's adapters, or ``None`` when they have none."""
        ...

    def delete(self, user_id: str) -> int:
        """Delete the user's adapters; return how many there were."""
        ...


class NoAdapters:
    """The hook when no adapter store is configured: nothing to export or delete."""

    def metadata(self, user_id: str) -> Mapping[str, Any] | None:
        return None

    def delete(self, user_id: str) -> int:
        return 0


def default_adapters(store: SQLProfileStore) -> AdapterHook:
    """tailor's adapter store in ``store``'s file, or :class:`NoAdapters` without it."""
    try:
        from tailor.adapters.store import AdapterStore
    except ImportError:
        return NoAdapters()
    hook: AdapterHook = AdapterStore(store).hook()
    return hook


__all__ = ["AdapterHook", "NoAdapters", "default_adapters"]
