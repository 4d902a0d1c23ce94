"""The model a batch job writes with: loaded here for ``--executor local``, or once per Ray
worker process for ``--executor ray`` (the slot of its tasks, :mod:`tailor.training.executors`),
with as many threads as the task was given CPUs."""

from __future__ import annotations

from tailor.backends import load_backend_on
from tailor.types import Backend

__all__ = ["BACKEND_SLOT", "worker_backend"]

BACKEND_SLOT = "backend"
"""The slot kind of a task that runs on a backend: a worker keeps one backend at a time."""


def worker_backend(spec: str) -> Backend:
    """The backend ``spec`` names, in a Ray worker, with the task's CPUs as its threads."""
    from tailor.training.executors import quiet_worker_output, worker_threads

    quiet_worker_output()
    return load_backend_on(spec, worker_threads())

