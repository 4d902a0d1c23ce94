"""``tailor eval --executor ray[:ADDRESS]``: each method's examples answered in shards of
users, one Ray task per shard (:mod:`tailor.training.executors`).

For each method, the driver (the ``tailor`` process) splits the examples not yet in the
method's checkpoint into shards, each holding whole users (all of a user's examples go to
one shard), about :data:`SHARDS_PER_SLOT` shards for each task the cluster runs at once
and at most :data:`SHARD_EXAMPLES` examples each. A shard (:class:`EvalShard`) carries
what its examples need: the examples, every example of its users in the run's population
(the profiles the driver's store holds for them), the method, the run's settings, and the
population's label prior and the fitted evidence weight of a calibrated method. A worker
process loads the backend once per run's settings (:class:`EvalWorker`, cached by the
settings' fingerprint) and reuses it for every later shard; for each shard it builds a
profile store of the shard's users, the method's personalizer on it, and runs
:func:`~tailor.evaluation.runner.answer_examples`, the local executor's loop. The driver
appends each shard's rows to the method's checkpoint as the shard returns, then scores
the method exactly as a local run does.

A method that reads across users' profiles (its ``store`` need: personas, the rating
models, the recommenders; not ``summary``, which writes only its own user's note) gets the
store the local run builds instead of the shard's: the run's whole population (sent to
Ray's object store once), with the records of the users the local run embeds embedded,
built once per worker and run and kept for its later shards; so it learns what it learns
locally (clusters, fitted models) from everyone, and answers only its shard's examples.

What a worker cannot have is refused before anything runs: a backend or store object handed to
:func:`~tailor.evaluation.runner.evaluate` (a worker loads ``config.backend`` itself), and
the ``ray:N:INNER`` backend (replicas of its own). Files a method reads (``--adapters``,
``--selector``, a trained retriever's folder) must be at the same path on every node.
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailor.evaluation.checkpoint import Checkpoint
from tailor.methods import BuildContext, MethodSpec
from tailor.personalizers.calibration import ContextualCalibrator, EvidenceFit
from tailor.personalizers.labels import LabelDistribution
from tailor.prompting.builder import PromptBudget
from tailor.store import InMemoryProfileStore, ingest_examples
from tailor.training.executors import RayExecutor, quiet_worker_output, ray_backend_refusal, worker_threads
from tailor.types import TaskExample

if TYPE_CHECKING:
    from tailor.embeddings import Embedder
    from tailor.evaluation.runner import EvalConfig, ProgressFactory

__all__ = ["SHARDS_PER_SLOT", "SHARD_EXAMPLES", "EvalShard", "EvalWorker", "ShardKey", "ShardedRun",
           "ShardsFailedError", "ray_refusal", "shard_by_user"]

SHARDS_PER_SLOT = 3
"""Shards per task the cluster runs at once: every task slot gets work, and a slow shard
does not leave the others idle for long."""
SHARD_EXAMPLES = 256
"""At most this many examples in a shard, so a large split is saved (and retried) in pieces."""


class ShardsFailedError(RuntimeError):
    """Shards of a method that failed on every attempt; the other shards' rows are saved."""


def reads_across_users(method: MethodSpec) -> bool:
    """Whether ``method`` reads other users' profiles from the store (personas, the rating
    models, the recommenders). A ``summary`` needs the store only to keep its own user's note."""
    return any("store" in part.all_needs() and getattr(part, "served_from", None) != "summaries"
               for part in method.parts)


def ray_refusal(config: EvalConfig, methods: Sequence[MethodSpec], *, backend: Any, store: Any) -> str | None:
    """Why this run cannot be sharded across Ray workers, or ``None`` when it can."""
    if backend is not None:
        return ("a backend object handed to evaluate() stays in this process; with executor ray each worker "
                "loads config.backend itself: pass none")
    if store is not None:
        return ("a profile store handed to evaluate() stays in this process; with executor ray each shard's "
                "profiles come from the data set's examples: pass none")
    return ray_backend_refusal(config.backend)


@dataclass(frozen=True)
class ShardShared:
    """What every shard of a method shares, put into Ray's object store once: the train
    split (for a method that learns from it), and for a method that reads across users the
    run's whole population and the users whose records the local run embeds."""

    train: tuple[TaskExample, ...] | None = None
    population: tuple[TaskExample, ...] | None = None
    embedded: tuple[str, ...] = ()
    answering: tuple[TaskExample, ...] = ()
    """The examples the method answers in this run, all shards together: what the local
    run prepares the method for (its personas, built for every user it answers)."""


@dataclass(frozen=True)
class ShardKey:
    """A shard of one method: its place among the method's shards and its users."""

    method: str
    index: int
    users: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.method} shard {self.index} (users {', '.join(self.users)})"


@dataclass(frozen=True)
class EvalShard:
    """Some users' examples to answer with one method in a Ray worker (a
    :class:`~tailor.training.executors.WorkerTask`); its result is one row per example."""

    key: ShardKey
    config: EvalConfig
    """The run's settings, resolved (``k`` and ``scoring`` set)."""
    session: str
    """The fingerprint of the settings a worker loads the backend for (the slot's identity)."""
    backend: str
    """The backend spec the worker loads (``echo`` for a run of model-free methods alone)."""
    method: MethodSpec
    examples: tuple[TaskExample, ...]
    """The examples to answer, in file order."""
    profiles: tuple[TaskExample, ...]
    """Every example of the shard's users in the run's population: their profiles, in the
    order the driver's store received them."""
    prior: LabelDistribution | None = None
    evidence: EvidenceFit | None = None

    @property
    def slot(self) -> tuple[str, str]:
        return ("eval", self.session)

    def load(self) -> EvalWorker:
        quiet_worker_output()
        return EvalWorker(self.config, self.backend, worker_threads())

    def run(self, loaded: EvalWorker, shared: ShardShared | None) -> list[dict[str, Any]]:
        return loaded.answer(self, shared or ShardShared())


class EvalWorker:
    """What a worker process keeps between the shards of one run: the task, the backend
    (loaded with the task's CPUs as threads), the calibrator, the embedder, the adapters."""

    def __init__(self, config: EvalConfig, backend: str, threads: int) -> None:
        from tailor.backends import load_backend_on
        from tailor.evaluation.runner import task_of

        self.config = config
        self.task = task_of(config)
        self.backend = load_backend_on(backend, threads, batch_size=config.batch_size)
        self.calibrator = ContextualCalibrator(self.backend, self.task) if self.task.uses_candidates else None
        self._embedder: Embedder | None = None
        self._adapters: Any = None
        # For a method that reads across users: the population's store and the method's
        # personalizer on it, by the population's example ids and the method.
        self._whole: dict[tuple[tuple[str, ...], str], tuple[InMemoryProfileStore, Any]] = {}

    def answer(self, shard: EvalShard, shared: ShardShared) -> list[dict[str, Any]]:
        """The shard's rows, in the order of its examples."""
        from tailor.evaluation.runner import answer_examples, bound_backend

        task, config, method = self.task, self.config, shard.method
        if shared.population is not None:
            store, personalizer = self._across_users(shard, shared)
        else:
            store = InMemoryProfileStore()
            ingest_examples(store, shard.profiles)
            personalizer = self._build(method, store, shard.key.users, shared)
        backend, calibrator = bound_backend(personalizer, self.backend, self.calibrator, task)
        rows = answer_examples(task, shard.examples, personalizer, backend, store, config, calibrator=calibrator,
                               prior=shard.prior, evidence=shard.evidence)
        return [rows[e.id] for e in shard.examples]

    def _build(self, method: MethodSpec, store: InMemoryProfileStore, embedded: Sequence[str],
               shared: ShardShared) -> Any:
        """``method``'s personalizer on ``store``, the records of ``embedded`` embedded first when it needs them."""
        from tailor.embeddings import embed_profiles

        config = self.config
        embedder = self._loaded_embedder() if method.needs("embedder") else None
        if embedder is not None:
            embed_profiles(store, embedder, embedded, document=self.task.document, progress=False)
        adapters = self._adapter_store() if config.adapters and method.needs("adapters") else None
        return method.build(BuildContext(self.task, self.backend.count_tokens, k=config.k,
                                         budget=PromptBudget(config.input_tokens, config.context_tokens),
                                         seed=config.seed, embedder=embedder, store=store, backend=self.backend,
                                         adapters=adapters, train=shared.train))

    def _across_users(self, shard: EvalShard, shared: ShardShared) -> tuple[InMemoryProfileStore, Any]:
        """The store the local run builds (every user of the population, the records of
        ``shared.embedded`` embedded) and the method's personalizer on it, built once per
        worker, population and method, as the local run builds it once: building it again
        on the same store would learn from what the first build stored (its personas)."""
        from tailor.evaluation.checkpoint import prepare_ahead

        assert shared.population is not None
        # Each task gets its own copy of what is shared: compared by contents.
        key = (tuple(example.id for example in shared.population + shared.answering), str(shard.method))
        if key not in self._whole:
            store = InMemoryProfileStore()
            ingest_examples(store, shared.population)
            personalizer = self._build(shard.method, store, shared.embedded, shared)
            # Prepared for every user the run answers, as the local run prepares it; each
            # shard's own preparing then finds its users done.
            prepare_ahead(personalizer, self.task, shared.answering, None)
            self._whole[key] = (store, personalizer)
        return self._whole[key]

    def _loaded_embedder(self) -> Embedder:
        if self._embedder is None:
            from tailor.embeddings import load_embedder

            self._embedder = load_embedder(self.config.embedder)
        return self._embedder

    def _adapter_store(self) -> Any:
        if self._adapters is None:
            from tailor.adapters.store import open_adapter_store

            try:
                self._adapters = open_adapter_store(str(self.config.adapters))
            except FileNotFoundError as error:
                raise FileNotFoundError(f"on {socket.gethostname()}: {error} (with --executor ray, --adapters must "
                                        "be at the same path on every node)") from None
        return self._adapters


def shard_by_user(examples: Sequence[TaskExample], shards: int) -> list[list[TaskExample]]:
    """``examples`` in at most ``shards`` shards of whole users, about equal in examples:
    users in the order they first appear, each shard's examples in file order."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    by_user: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        by_user.setdefault(example.user_id, []).append(index)
    target = len(examples) / shards
    groups: list[list[int]] = [[]]
    taken = 0
    for positions in by_user.values():
        if groups[-1] and taken >= target * len(groups):
            groups.append([])
        groups[-1].extend(positions)
        taken += len(positions)
    return [[examples[i] for i in sorted(group)] for group in groups if group]


class ShardedRun:
    """The driver's side of a sharded run: one method's examples at a time, as shards on
    ``executor``, each shard's rows saved as it returns."""

    def __init__(self, executor: RayExecutor, config: EvalConfig, population: Sequence[TaskExample], *,
                 backend: str, train: Sequence[TaskExample] | None, embedded: Sequence[str] = ()) -> None:
        self.executor = executor
        # Files named by the settings are opened by workers, whose working folder is not ours.
        self.config = replace(config, adapters=str(Path(config.adapters).resolve()) if config.adapters else None,
                              selector=str(Path(config.selector).resolve()) if config.selector else None)
        self.backend = backend
        self.train = tuple(train) if train is not None else None
        fingerprint = config.fingerprint() | {"backend": backend, "batch_size": config.batch_size,
                                              "threads": config.threads}
        self.session = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]
        self.population, self.embedded = tuple(population), tuple(embedded)
        self._population: dict[str, list[TaskExample]] = {}
        for example in population:
            self._population.setdefault(example.user_id, []).append(example)

    def answer(self, method: MethodSpec, examples: Sequence[TaskExample], name: str, *,
               checkpoint: Checkpoint | None = None, progress: ProgressFactory | None = None,
               prior: LabelDistribution | None = None,
               evidence: EvidenceFit | None = None) -> dict[str, dict[str, Any]]:
        """One row per example id, as :func:`~tailor.evaluation.runner.answer_examples` gives
        them: the rows already in ``checkpoint`` kept, the others answered in shards and
        appended to it as each returns. Raises :class:`ShardsFailedError` naming the users of
        the shards that failed on every attempt, once every other shard is saved."""
        rows: dict[str, dict[str, Any]] = dict(checkpoint.rows) if checkpoint else {}
        todo = [e for e in examples if e.id not in rows]
        bar = progress(len(examples), name) if progress else None
        if bar is not None:
            bar.update(len(examples) - len(todo))
        failed: list[str] = []
        if todo:
            wanted = max(SHARDS_PER_SLOT * self.executor.concurrency(), math.ceil(len(todo) / SHARD_EXAMPLES))
            shards = []
            for index, group in enumerate(shard_by_user(todo, wanted)):
                users = tuple(dict.fromkeys(e.user_id for e in group))
                profiles = tuple(e for user in users for e in self._population[user])
                shards.append(EvalShard(ShardKey(str(method), index, users), self.config, self.session, self.backend,
                                        method, tuple(group), profiles, prior, evidence))
            across = reads_across_users(method)
            shared = ShardShared(self.train if method.needs("train-split") else None,
                                 self.population if across else None, self.embedded if across else (),
                                 tuple(todo) if across else ())
            for outcome in self.executor.run(shards, shared):
                if outcome.result is None:
                    failed.append(f"{outcome.task.key}: {outcome.error}")
                    continue
                if checkpoint is not None:
                    checkpoint.append(outcome.result)
                rows.update((row["id"], row) for row in outcome.result)
                if bar is not None:
                    bar.update(len(outcome.result))
        if bar is not None:
            bar.close()
        if failed:
            raise ShardsFailedError(
                f"{len(failed)} shard(s) of method {method} failed after {self.executor.retries} retries (the others "
                f"are saved; rerun the same command to answer only these): " + "; ".join(failed))
        return rows
