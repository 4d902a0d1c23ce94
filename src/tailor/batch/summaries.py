"""``tailor summaries build``: the profile summaries a server would write, written ahead of
its requests for every user of a serving store (or one tenant's, or some users) whose
summary is missing or stale.

A user is due by the server's rule (:func:`~tailor.chat.summaries.summary_due`: no current
summary, and records to summarize), and is summarized as the server summarizes them
(:func:`~tailor.chat.summaries.served_summarizer`: the same prompt, model key and storage),
so a server started afterwards finds every summary current and queues nobody. A user
whose summary is current is skipped, so a rerun writes only what changed since.

One user is one unit of work, stored as it finishes. ``executor``: ``local`` summarizes
in this process, one user after another; ``ray[:ADDRESS]`` makes each user one Ray task
(:mod:`tailor.training.executors`), whose worker loads the backend once and keeps it for
its later users. On a store every node reaches (a ``postgresql://`` URL) each worker reads
its user's profile and writes the summary into the store itself; on a SQLite file the
driver reads each profile, hands it to the task, and stores the summary the task returns.
A user whose task still fails after ``retries`` (locally: whose summary raised) is
reported by id with the error, and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from tailor.backends import load_backend_on
from tailor.batch.models import BACKEND_SLOT, worker_backend
from tailor.chat.summaries import served_summarizer, summary_due
from tailor.prompting.summary import WrittenSummary
from tailor.store import InMemoryProfileStore, SQLProfileStore, open_serving_store
from tailor.store.contract import UnknownUserError
from tailor.store.tenants import TENANT_SEPARATOR, check_tenant, store_user_id, tenant_of
from tailor.training.executors import (
    ExecutorSpec,
    RayExecutor,
    parse_executor,
    ray_backend_refusal,
    shared_store_url,
    worker_store,
)
from tailor.types import Backend, Profile

__all__ = ["BuildSummariesConfig", "SummariesReport", "SummaryRow", "SummaryTask", "build_summaries"]

SummaryStatus = Literal["written", "up to date", "no records", "failed"]


@dataclass(frozen=True)
class BuildSummariesConfig:
    """Everything one ``tailor summaries build`` run needs (see the module docstring)."""

    store: str
    """The serving store: a SQLite file (a path or ``sqlite:///path``) or a ``postgresql://`` URL."""
    tenant: str | None = None
    """Only this tenant's users (``None``: every user of the store)."""
    users: tuple[str, ...] | None = None
    """Only these users (their ids as the API names them, within ``tenant``)."""
    backend: str = "default"
    """The model that writes the summaries: the server's (``tailor serve --backend``)."""
    executor: str | ExecutorSpec = "local"
    threads: int | None = None
    """The backend's threads here; with ``ray``, each task's CPUs and threads (``None``: the
    cluster's CPUs divided among the tasks)."""
    retries: int = 2
    """``ray``: attempts after the first for a user whose task raised or whose worker died."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "executor", parse_executor(self.executor))
        if self.tenant is not None:
            check_tenant(self.tenant)
        if self.users is not None and not self.users:
            raise ValueError("users: name at least one user, or None for every user")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be a whole number of at least 0, got {self.retries!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"threads must be a whole number of at least 1, got {self.threads!r}")
        refusal = ray_backend_refusal(self.backend) if str(self.executor) != "local" else None
        if refusal:
            raise ValueError(refusal)


@dataclass
class SummaryRow:
    """One user of the run: their summary written, current already, none to write (a user
    without records), or failed and why."""

    user_id: str
    """As the API names them (without their tenant)."""
    tenant: str | None
    status: SummaryStatus
    summary: str | None = None
    error: str | None = None


@dataclass
class SummariesReport:
    store: str
    tenant: str | None
    backend: str
    rows: list[SummaryRow]

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "tenant": self.tenant, "backend": self.backend,
                "users": [{k: v for k, v in row.__dict__.items() if v is not None or k == "tenant"}
                          for row in self.rows]}

    @property
    def failed(self) -> list[SummaryRow]:
        return [row for row in self.rows if row.status == "failed"]


@dataclass(frozen=True)
class SummaryTask:
    """One user's summary for a Ray worker (a :class:`~tailor.training.executors.WorkerTask`).

    With ``store`` (a database URL) the worker summarizes the user in that store as the
    server does, and returns the summary's text; without it, ``profile`` is the user's
    profile as the driver read it (at ``profile_version``), and the worker returns the
    :class:`~tailor.prompting.summary.WrittenSummary` for the driver to store."""

    key: str
    """The user's id in the store."""
    backend: str
    store: str | None = None
    profile: Profile | None = None
    profile_version: int | None = None

    @property
    def slot(self) -> tuple[str, str]:
        return (BACKEND_SLOT, self.backend)

    def load(self) -> Backend:
        return worker_backend(self.backend)

    def run(self, backend: Backend, shared: None) -> str | WrittenSummary:
        if self.store is not None:
            return summarize(worker_store(self.store), backend, self.key)
        if self.profile is None or self.profile_version is None:
            raise ValueError(f"summary task for {self.key!r}: without a store it needs the profile and its version")
        return served_summarizer(InMemoryProfileStore(), backend).write(self.profile, self.profile_version)


def summarize(store: SQLProfileStore, backend: Backend, user_id: str) -> str:
    """The user's summary written and stored in ``store`` exactly as the server's summary
    worker does it (a current one read back instead)."""
    return served_summarizer(store, backend).summaries([user_id])[user_id]


ProgressFactory = Callable[[int, str], Any]


def _default_progress(total: int, description: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="user", leave=False, dynamic_ncols=True)


def _api_id(store_id: str) -> str:
    return store_id.partition(TENANT_SEPARATOR)[2] if tenant_of(store_id) is not None else store_id


class _Run:
    def __init__(self, config: BuildSummariesConfig, store: SQLProfileStore, backend: Backend | None,
                 progress: ProgressFactory | None) -> None:
        self.config, self.store, self.progress = config, store, progress
        self._backend = backend
        self.done: dict[str, SummaryRow] = {}
        """Each user's row, by their store id."""

    def users(self) -> list[str]:
        """The store ids of the users the run covers, in the store's order."""
        tenant = self.config.tenant
        if self.config.users is not None:
            wanted = [store_user_id(tenant, user) for user in dict.fromkeys(self.config.users)]
            missing = [_api_id(u) for u in wanted if not self.store.has_user(u)]
            if missing:
                where = f"tenant {tenant!r}" if tenant is not None else "the store"
                raise ValueError(f"users not in {where}: {', '.join(missing)}")
            return wanted
        return [u for u in self.store.list_users() if tenant is None or tenant_of(u) == tenant]

    def row(self, store_id: str, status: SummaryStatus, summary: str | None = None,
            error: str | None = None) -> SummaryRow:
        row = SummaryRow(_api_id(store_id), tenant_of(store_id), status, summary, error)
        self.done[store_id] = row
        return row

    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = load_backend_on(self.config.backend, self.config.threads)
        return self._backend

    def run(self, executor: RayExecutor | None) -> list[SummaryRow]:
        users = self.users()
        todo = []
        for user_id in users:
            summary, due = summary_due(self.store, user_id)
            if due:
                todo.append(user_id)
            elif summary is None and not self.store.count_records(user_id):
                self.row(user_id, "no records")
            else:
                self.row(user_id, "up to date", summary)
        if todo:
            where = "here" if executor is None else f"on {executor}"
            bar = self.progress(len(todo), f"summaries {where}") if self.progress else None
            for row in self._local(todo) if executor is None else self._on_ray(todo, executor):
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"{row.user_id}: {row.status}")
            if bar is not None:
                bar.close()
        return [self.done[user_id] for user_id in users if user_id in self.done]

    def _local(self, todo: list[str]) -> Iterator[SummaryRow]:
        backend = self.backend()
        for user_id in todo:
            try:
                summary = summarize(self.store, backend, user_id)
            except UnknownUserError:
                continue  # deleted meanwhile: nothing of theirs to summarize
            except Exception as error:  # noqa: BLE001 - one user's failure is reported, the others go on
                yield self.row(user_id, "failed", error=f"{type(error).__name__}: {error}".splitlines()[0])
                continue
            yield self.row(user_id, "written", summary)

    def _on_ray(self, todo: list[str], executor: RayExecutor) -> Iterator[SummaryRow]:
        shared = shared_store_url(self.config.store, self.store)
        tasks = []
        for user_id in todo:
            if shared is not None:
                tasks.append(SummaryTask(user_id, self.config.backend, store=shared))
                continue
            version = self.store.profile_version(user_id)
            tasks.append(SummaryTask(user_id, self.config.backend, profile=self.store.get_profile(user_id),
                                     profile_version=version))
        for outcome in executor.run(tasks):
            user_id = outcome.task.key
            if outcome.result is None:
                yield self.row(user_id, "failed", error=outcome.error)
            elif isinstance(outcome.result, WrittenSummary):  # the driver keeps it
                try:
                    outcome.result.store_in(self.store)
                except UnknownUserError:
                    continue
                yield self.row(user_id, "written", outcome.result.text)
            else:  # the worker kept it
                yield self.row(user_id, "written", outcome.result)


def build_summaries(config: BuildSummariesConfig, *, store: SQLProfileStore | None = None,
                    backend: Backend | None = None, executor: RayExecutor | None = None,
                    progress: ProgressFactory | None = _default_progress) -> SummariesReport:
    """Write the summaries ``config`` asks for; see the module docstring. Rows come in the
    store's order of users.

    ``store``: an open store to use instead of opening ``config.store`` (local only: Ray's
    workers open ``config.store`` themselves). ``backend``: a backend object for the local
    executor instead of loading ``config.backend``. ``executor``: a
    :class:`~tailor.training.executors.RayExecutor` to run on (its options beyond
    ``config``'s: a hook run before each task); ``None``: the one ``config.executor`` names.
    """
    spec = parse_executor(config.executor)
    on_ray = executor is not None or spec.kind == "ray"
    if on_ray and backend is not None:
        raise ValueError("a backend object stays in this process; with executor ray each worker loads "
                         "config.backend itself: pass none")
    owned_store = store is None
    opened = open_serving_store(config.store) if store is None else store
    owned_executor = executor is None and on_ray
    if owned_executor:
        executor = RayExecutor(spec.address, retries=config.retries, cpus_per_task=config.threads)
    try:
        rows = _Run(config, opened, backend, progress).run(executor)
        return SummariesReport(config.store, config.tenant, config.backend, rows)
    finally:
        if owned_executor and executor is not None:
            executor.close()
        if owned_store:
            opened.close()
