"""``tailor personas build --executor ray``: each persona's description one Ray task.

The driver clusters the tenant's users and pools each cluster's items as the local command
does (:func:`~tailor.personas.tenants.build_personas_for_tenant`); :class:`RayDescriber`,
its :class:`~tailor.personas.builder.GroupDescriber`, sends each persona's pooled items to
a Ray task (:class:`PersonaTask`), whose worker loads the backend once and asks it the
same request the local command asks (:func:`~tailor.personas.builder.persona_request`).
The driver stores the personas when every description is back, in one transaction, as
the local command does; a persona whose task still fails after its retries fails the
build (:class:`PersonasFailedError`, naming it), and the tenant's earlier personas stay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tailor.batch.models import BACKEND_SLOT, worker_backend
from tailor.personas.builder import model_id, persona_request
from tailor.prompting.summary import clean_description
from tailor.store.tenants import TENANT_SEPARATOR
from tailor.tasks.spec import TaskSpec
from tailor.training.executors import RayExecutor
from tailor.types import Backend, HistoryRecord

__all__ = ["PersonaTask", "PersonasFailedError", "RayDescriber"]


class PersonasFailedError(RuntimeError):
    """Personas whose description failed on every attempt; nothing was stored."""


@dataclass(frozen=True)
class PersonaTask:
    """One persona's description for a Ray worker (a
    :class:`~tailor.training.executors.WorkerTask`): its pooled items, the task whose
    layout shows them, the backend to ask. Returns the description and the model's id."""

    key: str
    """The persona's id."""
    backend: str
    task: TaskSpec
    items: tuple[HistoryRecord, ...]

    @property
    def slot(self) -> tuple[str, str]:
        return (BACKEND_SLOT, self.backend)

    def load(self) -> Backend:
        return worker_backend(self.backend)

    def run(self, backend: Backend, shared: None) -> tuple[str, str]:
        [result] = backend.generate([persona_request(self.task, self.items, backend.count_tokens)])
        return clean_description(result.text), model_id(backend)


ProgressFactory = Callable[[int, str], Any]


class RayDescriber:
    """A :class:`~tailor.personas.builder.GroupDescriber` that writes each group's
    description in a Ray task of ``executor``, with the backend ``backend`` names."""

    def __init__(self, executor: RayExecutor, backend: str, *, progress: ProgressFactory | None = None) -> None:
        self.executor = executor
        self.backend = backend
        self.progress = progress

    def describe(self, task: TaskSpec, groups: Mapping[str, Sequence[HistoryRecord]]) -> tuple[dict[str, str], str]:
        tasks = [PersonaTask(persona_id, self.backend, task, tuple(items)) for persona_id, items in groups.items()]
        bar = self.progress(len(tasks), f"personas on {self.executor}") if self.progress else None
        written: dict[str, tuple[str, str]] = {}
        failed = []
        for outcome in self.executor.run(tasks):
            name = outcome.task.key.rpartition(TENANT_SEPARATOR)[2]
            if outcome.result is None:
                failed.append(f"{name}: {outcome.error}")
            else:
                written[outcome.task.key] = outcome.result
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{name}: {'failed' if outcome.result is None else 'described'}")
        if bar is not None:
            bar.close()
        if failed:
            raise PersonasFailedError(f"{len(failed)} persona description(s) failed after {self.executor.retries} "
                                      f"retries; no persona was stored (rerun the same command): " + "; ".join(failed))
        models = {model for _, model in written.values()}
        return {persona_id: written[persona_id][0] for persona_id in groups}, ", ".join(sorted(models))
