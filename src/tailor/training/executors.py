"""Where work that splits into independent tasks runs: here, or one Ray task per piece.

``tailor train-adapter`` and ``tailor train-preference`` make each adapter (a user's, a
persona's, the global one) one task; ``tailor eval`` makes each shard of users' examples one
(:mod:`tailor.evaluation.shards`); ``tailor summaries build`` each user's summary and ``tailor
personas build`` each persona's description (:mod:`tailor.batch`). ``--executor local`` (the
default) does the work in this process; ``--executor ray[:ADDRESS]`` runs each task on a
local Ray or the cluster at ``ADDRESS`` (or ``$RAY_ADDRESS``). The driver (this process)
still plans every task, and each result is kept as its task finishes (an adapter or a
summary in the store, a shard's predictions in the run's checkpoint), so a driver that dies
loses no finished task and a rerun skips them.

Who keeps a result: the driver, as each task returns; or, for a task that carries the URL
of a database every node reaches (``postgresql://``: :func:`shared_store_url`), the worker
itself, in that store, before it returns (a trained adapter, a summary); the driver then
only reports it. A worker process opens each such store once (:func:`worker_store`) and
keeps it open for its later tasks.

A task is a :class:`WorkerTask`: its key, the :attr:`~WorkerTask.slot` of what it runs on
(a trainer for a model, an evaluation's backend), how to load that and how to run the task
with it. The executor never looks inside one. :class:`TrainerTask` is the side of the
contract common to the tasks that train one adapter (:class:`AdapterTask`: a LoRA adapter
on history pairs; :class:`tailor.training.preference.PreferenceTask`: a DPO, SimPO or KTO
adapter on feedback).

Resources: each task reserves ``cpus_per_task`` CPUs (``--threads``; by default the
cluster's CPUs divided among the tasks, at least 1 and at most a node's) and runs with
that many threads, so Ray never places more threads on a node than it has cores.
A worker process loads what a task runs on once, on its first task of that slot, and
reuses it for every later task of the same slot it runs (:func:`run_in_worker`: one loaded
thing per slot kind, e.g. one trainer per trainer kind and model directory; Ray keeps its
worker processes between tasks). A
fresh trainer and a reused one start an adapter from the same seed-made initialization,
so the weights equal the local executor's up to float rounding.

Failures: a task that raises, or whose worker process dies, is retried up to ``retries``
times (Ray's ``max_retries`` with ``retry_exceptions``); one that still fails comes back as
a :class:`TaskOutcome` with its ``error``, and the others go on.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from tailor.adapters.data import TrainingPair
from tailor.adapters.store import AdapterInfo, AdapterKey, AdapterStore
from tailor.adapters.train import LoRATrainConfig, TrainResult
from tailor.backends.contract import available_threads
from tailor.backends.ray import ray_error_reason
from tailor.registry import require

if TYPE_CHECKING:
    from tailor.adapters.train import LoRATrainer
    from tailor.store import SQLProfileStore

__all__ = ["AdapterRecord", "AdapterTask", "ExecutorSpec", "RayExecutor", "StackedOn", "TaskOutcome", "TrainerTask",
           "TrainingTask", "WorkerTask", "parse_executor", "quiet_worker_output", "ray_backend_refusal",
           "run_in_worker", "shared_store_url", "worker_facts",
           "worker_store", "worker_threads"]

ExecutorKind = Literal["local", "ray"]
EXECUTOR_KINDS: tuple[ExecutorKind, ...] = ("local", "ray")


@dataclass(frozen=True)
class ExecutorSpec:
    """``local``, ``ray`` (a local Ray, or ``$RAY_ADDRESS``) or ``ray:ADDRESS``."""

    kind: ExecutorKind = "local"
    address: str | None = None

    def __str__(self) -> str:
        return f"ray:{self.address}" if self.address else self.kind


def parse_executor(text: str | ExecutorSpec) -> ExecutorSpec:
    """The executor named by ``local``, ``ray`` or ``ray:ADDRESS`` (``ray:auto``, ``ray:ray://head:10001``)."""
    if isinstance(text, ExecutorSpec):
        return text
    kind, colon, address = str(text).strip().partition(":")
    if kind == "local" and not colon:
        return ExecutorSpec("local")
    if kind == "ray" and not (colon and not address.strip()):
        return ExecutorSpec("ray", address.strip() or None)
    raise ValueError(f"executor must be local, ray or ray:ADDRESS (e.g. ray:auto, ray:ray://head:10001), got {text!r}")


@dataclass(frozen=True)
class StackedOn:
    """The adapter a task trains on top of (the global one): put in Ray's object store once."""

    weights: bytes
    config: dict[str, Any]
    digest: str


ResultT = TypeVar("ResultT")
ResultT_co = TypeVar("ResultT_co", covariant=True)


class WorkerTask(Protocol[ResultT_co]):
    """One task for a Ray worker: what it needs, and nothing of the driver's stores.

    :attr:`slot` names what the task runs on, as ``(kind, identity)`` (a trainer kind and a
    model directory; an evaluation's settings): a worker process builds it with :meth:`load`
    on its first task of that slot and reuses it for every later one. :meth:`run` does the
    task with it and the run's ``shared`` object (put in Ray's object store once for all the
    run's tasks; ``None`` when there is none) and returns what the driver keeps. :attr:`key`
    names the task (``before_task`` hooks get it).
    """

    @property
    def key(self) -> Any: ...

    @property
    def slot(self) -> tuple[str, str]: ...

    def load(self) -> Any: ...

    def run(self, loaded: Any, shared: Any) -> ResultT_co: ...


def quiet_worker_output() -> None:
    """No progress bars, tokenizer warnings or library chatter from a Ray worker (set before
    its libraries load): the worker's output is forwarded to the driver, whose stdout may
    be ``--json``."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def ray_backend_refusal(spec: str) -> str | None:
    """Why ``spec`` cannot be each Ray task's backend (``ray:N:INNER`` runs replicas of its
    own), or ``None``."""
    if spec.split(":", 1)[0] == "ray":
        return (f"backend {spec} runs replicas on Ray itself; with --executor ray each task loads its own backend: "
                "name the inner backend alone")
    return None


def shared_store_url(location: str, store: Any) -> str | None:
    """``location`` when it is a URL of a database that Ray workers on every node can open
    and write to themselves (PostgreSQL: any store but SQLite); ``None`` for a SQLite file
    or folder, which lies on the driver's disk, so the driver keeps the results."""
    from tailor.store import SQLiteProfileStore

    if "://" not in location or isinstance(store, SQLiteProfileStore):
        return None
    return location


@dataclass(frozen=True)
class AdapterRecord:
    """What is kept beside an adapter's weights that the driver knows before it is trained:
    its stored config, the base model's identity, its metadata so far (the data digest, the
    prompt...) and its contributors (a pooled adapter's users)."""

    config: dict[str, Any]
    base_model: dict[str, str]
    metadata: dict[str, Any]
    contributors: tuple[str, ...] = ()


class TrainerTask(Generic[ResultT]):
    """The :class:`WorkerTask` side of a task that trains one adapter (a :class:`TrainingTask`).

    Its slot is its ``trainer_kind`` and ``model_dir``: a worker loads the trainer once
    (:meth:`load_trainer`, with the training libraries' progress bars off) and trains each
    adapter with it (:meth:`train`, on top of the run's :class:`StackedOn` when there is one)
    with as many torch threads as Ray gave the task CPUs.
    """

    trainer_kind: ClassVar[str]
    model_dir: str

    @property
    def slot(self) -> tuple[str, str]:
        return (self.trainer_kind, self.model_dir)

    def load(self) -> Any:
        transformers = require("transformers", "hf")
        transformers.utils.logging.disable_progress_bar()  # no weight-loading bar from each worker
        transformers.utils.logging.set_verbosity_error()
        # No progress bars from the training libraries either (TRL's, datasets').
        quiet_worker_output()
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        return self.load_trainer()

    store: str | None = None
    """A database URL the worker stores the adapter in itself (``None``: the driver stores it)."""

    def run(self, loaded: Any, shared: StackedOn | None) -> ResultT:
        require("torch", "hf").set_num_threads(worker_threads())
        result = self.train(loaded, shared)
        if self.store is None:
            return result
        self.save(AdapterStore(worker_store(self.store)), result, worker_facts())
        # The weights are in the store now: only what the driver reports goes back.
        return replace(result, weights=b"")  # type: ignore[type-var]

    def load_trainer(self) -> Any:
        raise NotImplementedError

    def train(self, trainer: Any, below: StackedOn | None) -> ResultT:
        raise NotImplementedError

    def save(self, adapters: AdapterStore, result: ResultT, worker: dict[str, Any] | None = None) -> AdapterInfo:
        """Store the trained adapter with its config and metadata (``worker``: where it
        trained, for a Ray task): the driver does, or with a :attr:`store` the worker."""
        raise NotImplementedError


class TrainingTask(WorkerTask[ResultT_co], Protocol[ResultT_co]):
    """One adapter to train in a worker (a :class:`TrainerTask`): its key, the trainer it
    trains with (``trainer_kind``, ``model_dir``, :meth:`load_trainer`), and :meth:`train`,
    which trains the adapter (on top of ``below``, where the run stacks its adapters on one)
    and returns what the driver stores."""

    trainer_kind: ClassVar[str]

    @property
    def key(self) -> AdapterKey: ...

    @property
    def model_dir(self) -> str: ...

    def load_trainer(self) -> Any: ...

    def train(self, trainer: Any, below: StackedOn | None) -> ResultT_co: ...


@dataclass(frozen=True)
class AdapterTask(TrainerTask[TrainResult]):
    """One LoRA adapter to train on history pairs (``tailor train-adapter``)."""

    key: AdapterKey
    task: str
    """The task's name (each worker looks it up in ``TASKS``)."""
    pairs: tuple[TrainingPair, ...]
    config: LoRATrainConfig
    model_dir: str
    record: AdapterRecord
    store: str | None = None
    """A database URL the worker stores the adapter in itself (``None``: the driver stores it)."""
    trainer_kind: ClassVar[str] = "lora"

    def load_trainer(self) -> LoRATrainer:
        from tailor.adapters.train import LoRATrainer

        return LoRATrainer(self.model_dir)

    def train(self, trainer: LoRATrainer, below: StackedOn | None) -> TrainResult:
        from tailor.adapters.lora import from_bytes
        from tailor.tasks import get_task

        stacked = from_bytes(below.weights, below.config["lora"]) if below is not None else None
        return trainer.train(get_task(self.task), self.pairs, self.config, on_top_of=stacked,
                             on_top_of_digest=below.digest if below is not None else None)

    def save(self, adapters: AdapterStore, result: TrainResult, worker: dict[str, Any] | None = None) -> AdapterInfo:
        metadata = {**self.record.metadata, "items": result.items, "steps": result.steps,
                    "seconds": round(result.seconds, 2), "first_epoch_loss": round(result.first_epoch_loss, 4),
                    "last_epoch_loss": round(result.last_epoch_loss, 4),
                    **({"first_steps_loss": round(result.first_steps_loss, 4),
                        "last_steps_loss": round(result.last_steps_loss, 4)}
                       if result.first_steps_loss is not None and result.last_steps_loss is not None else {}),
                    "timings": {k: round(v, 2) for k, v in result.timings.items()},
                    **({"worker": worker} if worker is not None else {})}
        return adapters.save(self.key, result.weights, config=self.record.config, base_model=self.record.base_model,
                             metadata=metadata, contributors=self.record.contributors)


@dataclass(frozen=True)
class TaskOutcome(Generic[ResultT]):
    """A finished task: its result, or why it failed after its retries; and where it ran."""

    task: WorkerTask[ResultT]
    result: ResultT | None
    error: str | None = None
    worker: dict[str, Any] | None = None
    """``{"host", "pid", "threads", "model_loads"}``: ``model_loads`` counts what that worker
    process has loaded so far (1 when it reused its model for every task)."""


# -- in the worker process ---------------------------------------------------------------------

# What each worker process has loaded, by slot, kept between tasks: loaded by a worker's first
# task of a slot and reused by every later one. One slot per kind: a task of another identity
# (another model, another evaluation's settings) replaces what that kind held.
_LOADED: dict[tuple[str, str], Any] = {}
_LOADS = 0


def _loaded(task: WorkerTask[Any]) -> Any:
    global _LOADS
    slot = task.slot
    if slot not in _LOADED:
        for stale in [held for held in _LOADED if held[0] == slot[0]]:
            del _LOADED[stale]
        _LOADED[slot] = task.load()
        _LOADS += 1
    return _LOADED[slot]


def worker_threads() -> int:
    """The whole CPUs Ray gave the running task (at least 1): the threads it may run."""
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    return max(1, math.floor(cpus))


# The stores this worker process keeps results in, by URL, opened once.
_STORES: dict[str, SQLProfileStore] = {}


def worker_store(url: str) -> SQLProfileStore:
    """The store at ``url`` (a database URL), opened once per worker process and kept open
    for its later tasks: where a task keeps its result itself."""
    if url not in _STORES:
        from tailor.store import open_serving_store

        _STORES[url] = open_serving_store(url)
    return _STORES[url]


def worker_facts() -> dict[str, Any]:
    """Where the running task runs: ``{"host", "pid", "threads", "model_loads"}``."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "threads": worker_threads(), "model_loads": _LOADS}


def run_in_worker(task: WorkerTask[ResultT], shared: Any,
                  before_task: Callable[[Any], None] | None = None) -> tuple[ResultT, dict[str, Any]]:
    """Run one task in a Ray worker, on what the worker loaded for its slot."""
    if before_task is not None:
        before_task(task.key)
    result = task.run(_loaded(task), shared)
    return result, worker_facts()


# -- in the driver -------------------------------------------------------------------------------


class RayExecutor:
    """Runs :class:`WorkerTask`s as Ray tasks and yields each outcome as it finishes.

    ``address``: the cluster to join (``None``: ``$RAY_ADDRESS``, else a local Ray of this
    machine's CPUs; a process that already called ``ray.init`` keeps its Ray). ``retries``:
    attempts after the first, for a task that raises or whose worker dies.
    ``cpus_per_task``: the CPUs (and threads) of each task; ``None``: the cluster's CPUs
    divided among the tasks of a run. ``before_task`` runs in the worker with the task's
    key before the task (tests inject failures with it). :meth:`close` shuts Ray down if
    this executor started it.
    """

    def __init__(self, address: str | None = None, *, retries: int = 2, cpus_per_task: int | None = None,
                 before_task: Callable[[Any], None] | None = None) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a whole number of at least 0, got {retries!r}")
        if cpus_per_task is not None and (isinstance(cpus_per_task, bool) or not isinstance(cpus_per_task, int)
                                          or cpus_per_task < 1):
            raise ValueError(f"cpus_per_task must be a whole number of at least 1, got {cpus_per_task!r}")
        self.ray = require("ray", "ray")
        self.address = address
        self.retries = retries
        self.cpus_per_task = cpus_per_task
        self.before_task = before_task
        self._started_ray = False
        self._connected = False

    def __str__(self) -> str:
        return f"ray:{self.address}" if self.address else "ray"

    def run(self, tasks: Sequence[WorkerTask[ResultT]], shared: Any = None) -> Iterator[TaskOutcome[ResultT]]:
        """Each task's outcome, in the order they finish (every task, failed ones included).

        ``shared``: what every task of the run gets besides itself (the adapter they stack
        on), put in Ray's object store once. Tasks still running when the caller stops
        reading (an error, an interrupt) are cancelled."""
        if not tasks:
            return
        self._connect()
        ray = self.ray
        cpus = self._cpus_per_task(len(tasks))
        remote = ray.remote(run_in_worker).options(num_cpus=cpus, max_retries=self.retries, retry_exceptions=True)
        shared_ref = ray.put(shared) if shared is not None else None
        # A bounded window of submitted tasks: the driver need not hand a million to Ray at once.
        window = max(4, 2 * self._slots(cpus))
        waiting = list(reversed(tasks))
        pending: dict[Any, WorkerTask[ResultT]] = {}
        try:
            while waiting or pending:
                while waiting and len(pending) < window:
                    task = waiting.pop()
                    pending[remote.remote(task, shared_ref, self.before_task)] = task
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    task = pending.pop(ref)
                    try:
                        result, worker = ray.get(ref)
                    except ray.exceptions.RayError as error:
                        yield TaskOutcome(task, None, error=ray_error_reason(error))
                    else:
                        yield TaskOutcome(task, result, worker=worker)
        finally:
            if pending and ray.is_initialized():
                for ref in pending:
                    ray.cancel(ref)

    def concurrency(self) -> int:
        """How many tasks the cluster runs at once, each of ``cpus_per_task`` CPUs (1 when
        unset); connects to Ray first."""
        self._connect()
        return self._slots(self.cpus_per_task or 1)

    def close(self) -> None:
        """Shut Ray down if this executor started it. Safe to call twice."""
        if self._started_ray and self.ray.is_initialized():
            self.ray.shutdown()
        self._started_ray = self._connected = False

    # -- helpers -------------------------------------------------------------------------------

    def _connect(self) -> None:
        if self._connected:
            return
        ray = self.ray
        if not ray.is_initialized():
            address = self.address or os.environ.get("RAY_ADDRESS") or None
            if address:
                ray.init(address=address, logging_level=logging.WARNING)
            else:
                # "local": a new Ray for this process, never one that an earlier `ray start` left running.
                ray.init(address="local", num_cpus=available_threads(), include_dashboard=False,
                         logging_level=logging.WARNING)
            self._started_ray = True
        self._connected = True

    def _node_cpus(self) -> list[float]:
        return [float(node.get("Resources", {}).get("CPU", 0.0)) for node in self.ray.nodes() if node.get("Alive")]

    def _cpus_per_task(self, tasks: int) -> int:
        """Each task's CPUs: as asked, or the cluster's CPUs shared among the tasks (1 to a node's)."""
        largest = math.floor(max(self._node_cpus(), default=0.0))
        if largest < 1:
            raise ValueError("the Ray cluster has no node with a whole CPU to run a task on")
        if self.cpus_per_task is not None:
            if self.cpus_per_task > largest:
                raise ValueError(f"{self.cpus_per_task} CPUs per task (--threads) is more than the largest Ray "
                                 f"node has ({largest}); ask for at most {largest}")
            return self.cpus_per_task
        total = float(self.ray.cluster_resources().get("CPU", 0.0))
        return max(1, min(math.floor(total / tasks), largest))

    def _slots(self, cpus: int) -> int:
        """How many tasks of ``cpus`` CPUs the cluster runs at once."""
        return max(1, sum(math.floor(node / cpus) for node in self._node_cpus()))

