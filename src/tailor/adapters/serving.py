"""Serving with per-user adapters: the model runs each request with the LoRA adapter of its
user, their persona's, or the global one (see :mod:`tailor.adapters.runtime`); a user's
adapters are in their export and deleted with them (:class:`AdapterHook`).

Adapters are trained by ``tailor train-adapter`` for one task and kept in the profile
store's file, so serving the store that holds them is all it takes; deleting a user
deletes their adapters by cascade. ``adapter_task="auto"`` serves the one task the store
holds LoRA adapters for (none: the base model; several: the task must be named).
``adapter_task="chat"`` serves preference adapters (``tailor train-preference``) and soups
(:mod:`tailor.adapters.soups`) from the first one trained on, without a restart: each
request looks its user's adapter up in the store, and a new or replaced adapter (a new
digest) is loaded on its user's next request. Adapters kept elsewhere (files, an object store) need an :class:`AdapterHook` passed to
``create_app``, since no cascade reaches them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from tailor.adapters.soups import PREFERENCE_PROMPT, PREFERENCE_TASK
from tailor.adapters.store import AdapterStore
from tailor.store import SQLProfileStore
from tailor.types import Backend

logger = logging.getLogger(__name__)

AdapterLabel = Callable[["str | None"], "str | None"]


class AdapterSetupError(ValueError):
    """The adapters asked for cannot be served (none stored for the task, or a backend
    that cannot apply them)."""


def serve_adapters(backend: Backend, store: SQLProfileStore,
                   adapter_task: str | None) -> tuple[Backend, AdapterLabel | None]:
    """The backend to answer chats with, and a function naming each user's adapter
    (``"user"``, ``"persona:ID"``, ``"global"``, or ``None`` for the base model; the user
    ``None``, a request served as is, gets the global adapter)."""
    if adapter_task is None:
        return backend, None
    adapters = AdapterStore(store)
    explicit = adapter_task != "auto"
    task = served_task(adapters, adapter_task)
    if task is None:
        return backend, None
    with_adapters = getattr(backend, "with_adapters", None)
    if with_adapters is None:
        message = (f"the {backend.name} backend cannot apply LoRA adapters (local models can: default or "
                   "transformers:PATH; so can openai:URL, an engine serving tailor adapters export's folders)")
        if explicit:
            raise AdapterSetupError(message)
        logger.warning("%s; serving the base model for every user", message)
        return backend, None
    adapted: Backend = with_adapters(adapters, task, **resolver_options(task))
    resolver = adapted.resolver  # type: ignore[attr-defined]
    logger.info("serving %s adapters for task %s", len(adapters.list(task=task, kind="lora")), task)

    def label(user_id: str | None) -> str | None:
        resolution = resolver.resolve(user_id)
        return None if resolution.choice is None else str(resolution.label)

    return adapted, label


def served_task(adapters: AdapterStore, adapter_task: str) -> str | None:
    """The task whose LoRA adapters serve, for ``--adapter-task``'s value: ``auto`` takes the one
    task the store holds adapters for (``None`` when it holds none); a named task must have
    adapters, except ``chat``, whose preference adapters may come while serving."""
    tasks = sorted({info.key.task for info in adapters.list(kind="lora")})
    if adapter_task == "auto":
        if len(tasks) > 1:
            raise AdapterSetupError(f"the store holds LoRA adapters for several tasks ({', '.join(tasks)}); "
                                    "choose one with --adapter-task TASK, or --adapter-task none")
        return tasks[0] if tasks else None
    if adapter_task != PREFERENCE_TASK and adapter_task not in tasks:
        held = ", ".join(tasks) or "none"
        raise AdapterSetupError(f"the store holds no LoRA adapters for task {adapter_task!r} (tasks with adapters: "
                                f"{held}); train them with tailor train-adapter --out on this store's folder")
    return adapter_task


def resolver_options(task: str) -> dict[str, Any]:
    """The :class:`~tailor.adapters.runtime.AdapterResolver` arguments that serve ``task``:
    the chat task's adapters are preference adapters, so a user gets their own, else their
    soup of pole adapters, else their persona's, else the global one (:mod:`tailor.adapters.soups`)."""
    if task == PREFERENCE_TASK:
        return {"prompt": PREFERENCE_PROMPT, "levels": ("user", "soup", "persona", "global")}
    return {}


@runtime_checkable
class AdapterHook(Protocol):
    """Per-user adapter storage, as the server sees it (ids are the store's user ids)."""

    def metadata(self, user_id: str) -> Mapping[str, Any] | None:
        """JSON-ready metadata of the user's adapters, or ``None`` when they have none."""
        ...

    def delete(self, user_id: str) -> int:
        """Delete the user's adapters; return how many there were."""
        ...


def default_adapters(store: SQLProfileStore) -> AdapterHook:
    """tailor's adapter store in ``store``'s file (:meth:`AdapterStore.hook`)."""
    hook: AdapterHook = AdapterStore(store).hook()
    return hook


__all__ = ["AdapterHook", "AdapterSetupError", "default_adapters", "resolver_options", "serve_adapters", "served_task"]
