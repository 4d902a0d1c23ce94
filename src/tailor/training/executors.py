"""Where ``tailor train-adapter`` and ``tailor train-preference`` train their adapters: here,
or one Ray task per adapter.

``--executor local`` (the default) trains every adapter in this process, one after the
other, on one model. ``--executor ray[:ADDRESS]`` makes each adapter (a user's, a
persona's, the global one) one Ray task, on a local Ray or the cluster at ``ADDRESS`` (or
``$RAY_ADDRESS``). The driver (this process) still builds every training example, decides
which adapters are up to date, and writes each adapter to the store as its task returns,
so a driver that dies loses no finished adapter and a rerun skips them.

A task is a :class:`TrainingTask`: the adapter's key, the model directory, and how to
load a trainer and train one adapter with it (:class:`AdapterTask`: a LoRA adapter on
history pairs; :class:`tailor.training.preference.PreferenceTask`: a DPO, SimPO or KTO
adapter on feedback). The executor never looks inside one.

Resources: each task reserves ``cpus_per_task`` CPUs (``--threads``; by default the
cluster's CPUs divided among the tasks, at least 1 and at most a node's) and trains with
that many torch threads, so Ray never places more threads on a node than it has cores.
A worker process loads the model once, on its first task, and reuses it for every later
task of the same kind it runs (:func:`train_in_worker`: one trainer per trainer kind and
model directory; Ray keeps its worker processes between tasks). A
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from tailor.adapters.data import TrainingPair
from tailor.adapters.store import AdapterKey
from tailor.adapters.train import LoRATrainConfig, TrainResult
from tailor.backends.contract import available_threads
from tailor.backends.ray import ray_error_reason
from tailor.registry import require

if TYPE_CHECKING:
    from tailor.adapters.train import LoRATrainer

__all__ = ["AdapterTask", "ExecutorSpec", "RayExecutor", "StackedOn", "TaskOutcome", "TrainingTask",
           "parse_executor", "train_in_worker"]

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


class TrainingTask(Protocol[ResultT_co]):
    """One adapter to train in a worker: what it needs, and nothing of the driver's store.

    ``trainer_kind`` and ``model_dir`` name the trainer it trains with: a worker process
    builds one with :meth:`load_trainer` on its first task of that kind and model, and
    reuses it for every later one. :meth:`train` trains the adapter (on top of ``below``,
    where the run stacks its adapters on one) and returns what the driver stores.
    """

    trainer_kind: ClassVar[str]

    @property
    def key(self) -> AdapterKey: ...

    @property
    def model_dir(self) -> str: ...

    def load_trainer(self) -> Any: ...

    def train(self, trainer: Any, below: StackedOn | None) -> ResultT_co: ...


@dataclass(frozen=True)
class AdapterTask:
    """One LoRA adapter to train on history pairs (``tailor train-adapter``)."""

    key: AdapterKey
    task: str
    """The task's name (each worker looks it up in ``TASKS``)."""
    pairs: tuple[TrainingPair, ...]
    config: LoRATrainConfig
    model_dir: str
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


@dataclass(frozen=True)
class TaskOutcome(Generic[ResultT]):
    """A finished task: its result, or why it failed after its retries; and where it ran."""

    task: TrainingTask[ResultT]
    result: ResultT | None
    error: str | None = None
    worker: dict[str, Any] | None = None
    """``{"host", "pid", "threads", "model_loads"}``: ``model_loads`` counts the models that
    worker process has loaded so far (1 when it reused its model for every task)."""


# -- in the worker process ---------------------------------------------------------------------

# One trainer per (trainer kind, model directory) per worker process, kept between tasks:
# the model is loaded by a worker's first task of that kind and reused by every later one.
_TRAINERS: dict[tuple[str, str], Any] = {}
_LOADS = 0


def _trainer(task: TrainingTask[Any]) -> Any:
    global _LOADS
    slot = (task.trainer_kind, task.model_dir)
    if slot not in _TRAINERS:
        transformers = require("transformers", "hf")
        transformers.utils.logging.disable_progress_bar()  # no weight-loading bar from each worker
        transformers.utils.logging.set_verbosity_error()
        # No progress bars from the training libraries either (TRL's, datasets'): the worker's
        # output is forwarded to the driver, whose stdout may be --json.
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        _TRAINERS[slot] = task.load_trainer()
        _LOADS += 1
    return _TRAINERS[slot]


def train_in_worker(task: TrainingTask[ResultT], below: StackedOn | None,
                    before_task: Callable[[AdapterKey], None] | None = None) -> tuple[ResultT, dict[str, Any]]:
    """Train one adapter in a Ray worker, with as many torch threads as Ray gave it CPUs."""
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    threads = max(1, math.floor(cpus))
    if before_task is not None:
        before_task(task.key)
    trainer = _trainer(task)
    require("torch", "hf").set_num_threads(threads)
    result = task.train(trainer, below)
    return result, {"host": socket.gethostname(), "pid": os.getpid(), "threads": threads, "model_loads": _LOADS}


# -- in the driver -------------------------------------------------------------------------------


class RayExecutor:
    """Runs :class:`TrainingTask`s as Ray tasks and yields each outcome as it finishes.

    ``address``: the cluster to join (``None``: ``$RAY_ADDRESS``, else a local Ray of this
    machine's CPUs; a process that already called ``ray.init`` keeps its Ray). ``retries``:
    attempts after the first, for a task that raises or whose worker dies.
    ``cpus_per_task``: the CPUs (and torch threads) of each task; ``None``: the cluster's
    CPUs divided among the tasks of a run. ``before_task`` runs in the worker with the
    adapter's key before it trains (tests inject failures with it). :meth:`close` shuts
    Ray down if this executor started it.
    """

    def __init__(self, address: str | None = None, *, retries: int = 2, cpus_per_task: int | None = None,
                 before_task: Callable[[AdapterKey], None] | None = None) -> None:
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

    def run(self, tasks: Sequence[TrainingTask[ResultT]],
            below: StackedOn | None = None) -> Iterator[TaskOutcome[ResultT]]:
        """Each task's outcome, in the order they finish (every task, failed ones included)."""
        if not tasks:
            return
        self._connect()
        ray = self.ray
        cpus = self._cpus_per_task(len(tasks))
        remote = ray.remote(train_in_worker).options(num_cpus=cpus, max_retries=self.retries, retry_exceptions=True)
        below_ref = ray.put(below) if below is not None else None
        # A bounded window of submitted tasks: the driver need not hand a million to Ray at once.
        window = max(4, 2 * self._slots(cpus))
        waiting = list(reversed(tasks))
        pending: dict[Any, TrainingTask[ResultT]] = {}
        while waiting or pending:
            while waiting and len(pending) < window:
                task = waiting.pop()
                pending[remote.remote(task, below_ref, self.before_task)] = task
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                task = pending.pop(ref)
                try:
                    result, worker = ray.get(ref)
                except ray.exceptions.RayError as error:
                    yield TaskOutcome(task, None, error=ray_error_reason(error))
                else:
                    yield TaskOutcome(task, result, worker=worker)

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
            raise ValueError("the Ray cluster has no node with a whole CPU to train on")
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

