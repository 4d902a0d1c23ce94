"""Serving with per-user adapters: the model runs each request with the LoRA adapter of its
user, their persona's, or the global one (see :mod:`tailor.adapters.runtime`).

Adapters are trained by ``tailor train-adapter`` for one task and kept in the profile
store's file, so serving the store that holds them is all it takes; deleting a user
deletes their adapters by cascade. ``adapter_task="auto"`` serves the one task the store
holds LoRA adapters for (none: the base model; several: the task must be named).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tailor.backends.base import Backend
from tailor.profiles import SQLProfileStore

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
    from tailor.adapters.store import AdapterStore

    adapters = AdapterStore(store)
    tasks = sorted({info.key.task for info in adapters.list(kind="lora")})
    explicit = adapter_task != "auto"
    if not explicit:
        if not tasks:
            return backend, None
        if len(tasks) > 1:
            raise AdapterSetupError(f"the store holds LoRA adapters for several tasks ({', '.join(tasks)}); "
                                    "choose one with --adapter-task TASK, or --adapter-task none")
        task = tasks[0]
    elif adapter_task not in tasks:
        held = ", ".join(tasks) or "none"
        raise AdapterSetupError(f"the store holds no LoRA adapters for task {adapter_task!r} (tasks with adapters: "
                                f"{held}); train them with tailor train-adapter --out on this store's folder")
    else:
        task = adapter_task
    with_adapters = getattr(backend, "with_adapters", None)
    if with_adapters is None:
        message = (f"the {backend.name} backend cannot apply LoRA adapters (only local models can: default or "
                   "transformers:PATH)")
        if explicit:
            raise AdapterSetupError(message)
        logger.warning("%s; serving the base model for every user", message)
        return backend, None
    adapted: Backend = with_adapters(adapters, task)
    resolver = adapted.resolver  # type: ignore[attr-defined]
    logger.info("serving %s adapters for task %s", len(adapters.list(task=task, kind="lora")), task)

    def label(user_id: str | None) -> str | None:
        resolution = resolver.resolve(user_id)
        return None if resolution.choice is None else str(resolution.label)

    return adapted, label


__all__ = ["AdapterSetupError", "serve_adapters"]
