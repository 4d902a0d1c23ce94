"""The model a batch job writes with: loaded here for ``--executor local``, or once per Ray
worker process for ``--executor ray`` (the slot of its tasks, :mod:`tailor.training.executors`),
with as many threads as the task was given CPUs."""

from __future__ import annotations

from tailor.backends import load_backend, resolve_spec
from tailor.backends.ray import with_thread_count
from tailor.types import Backend

__all__ = ["BACKEND_SLOT", "local_backend", "worker_backend"]

BACKEND_SLOT = "backend"
"""The slot kind of a task that runs on a backend: a worker keeps one backend at a time."""


def local_backend(spec: str, threads: int | None = None) -> Backend:
    """The backend ``spec`` names, in this process, on ``threads`` threads where it takes a
    thread count (``None``: its own default)."""
    options = with_thread_count(resolve_spec(spec)[2], {}, threads) if threads is not None else {}
    return load_backend(spec, **options)


def worker_backend(spec: str) -> Backend:
    """The backend ``spec`` names, in a Ray worker, with the task's CPUs as its threads."""
    from tailor.training.executors import quiet_worker_output, worker_threads

    quiet_worker_output()
    return local_backend(spec, worker_threads())

