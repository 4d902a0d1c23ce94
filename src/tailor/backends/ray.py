"""Data-parallel generation on Ray: replicas of a backend, each batch split across them.

``load_backend("ray:2:default")`` starts two Ray actors, each holding its own copy of the
backend ``default`` (any spec works as the inner one: ``echo``, ``transformers:PATH``,
``openai:URL``, ``llamacpp[:PATH]``), and answers every :meth:`RayBackend.generate` batch by
giving each replica one contiguous chunk of it; the results come back in request order.

Where it runs: with ``RAY_ADDRESS`` set (Ray's own convention) or ``address=`` given, it
connects to that cluster; in a process where Ray is already initialized, it uses that;
otherwise it starts a local Ray sized to the replicas. Each replica reserves its share of
the CPUs (``cpus_per_replica``; by default the free CPUs divided among the replicas, a
whole number when there is at least one each) and, when its backend takes a thread count
(``threads`` for ``default``/``transformers``, ``n_threads`` for ``llamacpp``) and none was
given, runs that many threads. Other keyword options go to every replica's backend.

``count_tokens`` runs in this process when it is cheap to do exactly: for ``default`` and
``transformers:PATH`` (when PATH exists here) it loads only the tokenizer. For any other
inner backend it asks the first replica, one actor call per text, so the count is the
inner backend's own.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailor.backends.contract import BackendError, available_threads, tokenizer_count
from tailor.registry import require
from tailor.types import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from typing import Self

__all__ = ["RayBackend", "RayConfig", "Replica", "ReplicaInfo", "ray_error_reason", "split_evenly", "with_thread_count"]

# Inner backends whose tokenizer the driver can load alone, without the model.
_TOKENIZER_BACKENDS = ("default", "default-fp32", "transformers")
# The keyword each kind of inner backend takes its thread count by.
_THREAD_OPTIONS = ("threads", "n_threads")


@dataclass(frozen=True)
class RayConfig:
    """The keyword arguments of :class:`RayBackend` that are its own (the rest go to the replicas)."""

    inner: str
    replicas: int
    cpus_per_replica: float | None = None
    address: str | None = None
    startup_timeout: float = 600.0


@dataclass(frozen=True)
class ReplicaInfo:
    """Where one replica runs and how much it has done."""

    index: int
    pid: int
    hostname: str
    cpus: float
    """The CPUs Ray reserved for it."""
    answered: int
    """Requests it has answered so far."""


def split_evenly(total: int, parts: int) -> list[tuple[int, int]]:
    """``[start, stop)`` bounds of up to ``parts`` contiguous chunks of ``total`` items.

    Chunk sizes differ by at most one, the larger ones first; no chunk is empty, so fewer
    than ``parts`` come back when ``total < parts``.
    """
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    size, extra = divmod(total, parts)
    bounds = []
    start = 0
    for index in range(parts):
        stop = start + size + (1 if index < extra else 0)
        if stop > start:
            bounds.append((start, stop))
        start = stop
    return bounds


class Replica:
    """One copy of the inner backend, living in a Ray actor process."""

    def __init__(self, spec: str, options: Mapping[str, Any]) -> None:
        from tailor.backends import load_backend

        self.backend = load_backend(spec, **options)
        self.answered = 0

    def describe(self) -> dict[str, Any]:
        import ray

        resources = ray.get_runtime_context().get_assigned_resources()
        return {"pid": os.getpid(), "hostname": socket.gethostname(), "cpus": float(resources.get("CPU", 0.0)),
                "answered": self.answered, "name": str(self.backend.name),
                "model_id": str(getattr(self.backend, "model_id", self.backend.name))}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = self.backend.generate(requests)
        self.answered += len(requests)
        return results

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)


class RayBackend:
    """``replicas`` copies of the backend ``inner`` on Ray actors; each batch is split among them.

    :meth:`generate` gives replica ``i`` the ``i``-th of ``replicas`` contiguous, nearly
    equal chunks of the batch (a batch smaller than ``replicas`` uses only the first
    ``len(batch)``), waits for all, and returns the results in request order. A replica
    that fails (its backend raised, its process died) surfaces as
    :class:`~tailor.backends.contract.BackendError` naming the replica and the inner spec; so
    does an inner backend that cannot be built. :meth:`close` kills the replicas, and shuts
    Ray down only if this backend started it.

    ``name`` is ``ray:N:<inner name>``; ``model_id`` is the inner backend's, since the
    replicas run the same model (the spec that built it is kept in ``config``).
    """

    def __init__(self, inner: str, replicas: int = 2, *, cpus_per_replica: float | None = None,
                 address: str | None = None, startup_timeout: float = 600.0, **options: Any) -> None:
        from tailor.backends import resolve_spec

        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise ValueError(f"replicas must be a whole number of at least 1, got {replicas!r}")
        if cpus_per_replica is not None and not cpus_per_replica > 0:
            raise ValueError(f"cpus_per_replica must be positive, got {cpus_per_replica!r}")
        if not startup_timeout > 0:
            raise ValueError(f"startup_timeout must be positive, got {startup_timeout!r}")
        inner_name, inner_argument, factory = resolve_spec(inner)
        if inner_name == "ray":
            raise ValueError("the inner backend of a ray backend cannot be another ray backend")
        self.ray = require("ray", "ray")
        self.config = RayConfig(inner, replicas, cpus_per_replica, address, startup_timeout)
        self.spec = f"ray:{replicas}:{inner}"
        self.options = dict(options)
        self._lock = threading.Lock()
        self._actors: list[Any] = []
        self._closed = False
        self._counter = self._local_counter(inner_name, inner_argument)
        self._started_ray = self._connect(replicas, cpus_per_replica, address)
        try:
            self.cpus_per_replica = cpus_per_replica or self._share_of_free_cpus(replicas)
            replica_options = self._with_threads(factory, self.cpus_per_replica)
            remote = self.ray.remote(Replica).options(num_cpus=self.cpus_per_replica, scheduling_strategy="SPREAD")
            self._actors = [remote.remote(inner, replica_options) for _ in range(replicas)]
            described = self._await_replicas(startup_timeout)
        except BaseException:
            self.close()
            raise
        self.name = f"ray:{replicas}:{described[0]['name']}"
        self.model_id = described[0]["model_id"]

    # -- the backend contract ------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        if not requests:
            return []
        actors = self._live_actors()
        chunks = split_evenly(len(requests), len(actors))
        refs = [actors[index].generate.remote(list(requests[start:stop])) for index, (start, stop) in enumerate(chunks)]
        results: list[GenerationResult] = []
        for index, (ref, (start, stop)) in enumerate(zip(refs, chunks)):
            answered = self._get(ref, index, "failed while generating")
            if len(answered) != stop - start:
                raise BackendError(f"{self._replica(index)} answered {len(answered)} of its {stop - start} requests")
            results.extend(answered)
        return results

    def count_tokens(self, text: str) -> int:
        if self._counter is not None:
            return self._counter(text)
        return int(self._get(self._live_actors()[0].count_tokens.remote(text), 0, "failed to count tokens"))

    # -- inspection and shutdown ---------------------------------------------------------------

    def replica_info(self) -> list[ReplicaInfo]:
        """Each replica's process, host, reserved CPUs and requests answered, in replica order."""
        refs = [actor.describe.remote() for actor in self._live_actors()]
        described = [self._get(ref, index, "failed to describe itself") for index, ref in enumerate(refs)]
        return [ReplicaInfo(index=index, pid=int(d["pid"]), hostname=str(d["hostname"]), cpus=float(d["cpus"]),
                            answered=int(d["answered"])) for index, d in enumerate(described)]

    def close(self) -> None:
        """Kill the replicas; shut Ray down if this backend started it. Safe to call twice."""
        with self._lock:
            actors, self._actors = self._actors, []
            self._closed = True
        for actor in actors:
            # An actor already dead, or a Ray already shut down, leaves nothing to kill.
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)
        if self._started_ray and self.ray.is_initialized():
            self.ray.shutdown()
        self._started_ray = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------------------

    def _replica(self, index: int) -> str:
        return f"Ray replica {index} of {self.spec} (inner backend {self.config.inner!r})"

    def _live_actors(self) -> list[Any]:
        with self._lock:
            if self._closed:
                raise BackendError(f"the backend {self.spec} is closed")
            return list(self._actors)

    def _get(self, ref: Any, index: int, doing: str) -> Any:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as error:
            raise BackendError(f"{self._replica(index)} {doing}: {ray_error_reason(error)}") from error

    def _connect(self, replicas: int, cpus_per_replica: float | None, address: str | None) -> bool:
        """Join or start Ray; whether this backend started (and so owns) the connection."""
        ray = self.ray
        if ray.is_initialized():
            return False
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
            return True
        # "local": a new Ray for this process, never one that some earlier `ray start` left running.
        share = cpus_per_replica or max(1, available_threads() // replicas)
        ray.init(address="local", num_cpus=math.ceil(share * replicas), include_dashboard=False,
                 logging_level=logging.WARNING)
        return True

    def _share_of_free_cpus(self, replicas: int) -> float:
        """The free CPUs divided among the replicas: whole when at least one each, never more than a node has."""
        free = float(self.ray.available_resources().get("CPU", 0.0))
        if free <= 0:
            raise BackendError(f"{self.spec}: the Ray cluster has no free CPU for the replicas; "
                               "pass cpus_per_replica to reserve less, or free some")
        largest = max((float(node.get("Resources", {}).get("CPU", 0.0)) for node in self.ray.nodes()
                       if node.get("Alive")), default=free)
        share = free / replicas
        if share >= 1:
            return float(max(1, min(math.floor(share), math.floor(largest))))
        return math.floor(share * 10_000) / 10_000 or 0.0001  # Ray counts resources in 1/10,000ths

    def _with_threads(self, factory: Any, cpus: float) -> dict[str, Any]:
        """The options for each replica: each backend's thread count defaults to its CPU share."""
        return with_thread_count(factory, self.options, max(1, math.floor(cpus)))

    def _await_replicas(self, timeout: float) -> list[dict[str, Any]]:
        """Each replica's description once all have built their backend; the first failure raises."""
        refs = [actor.describe.remote() for actor in self._actors]
        pending = list(refs)
        deadline = time.monotonic() + timeout
        while pending:
            ready, pending = self.ray.wait(pending, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                index = refs.index(pending[0])
                raise BackendError(
                    f"{self._replica(index)} did not start within {timeout:g} s: the cluster may lack "
                    f"{self.cpus_per_replica:g} free CPU for each of its {len(refs)} replicas; "
                    "pass cpus_per_replica, use fewer replicas, or raise startup_timeout"
                )
            for ref in ready:
                self._get(ref, refs.index(ref), "failed to build its backend")
        return [self._get(ref, index, "failed to build its backend") for index, ref in enumerate(refs)]

    def _local_counter(self, name: str, argument: str) -> Callable[[str], int] | None:
        """An exact token counter in this process (the tokenizer alone), or None to ask a replica."""
        if name not in _TOKENIZER_BACKENDS:
            return None
        try:
            transformers = require("transformers", "hf")
        except ImportError:
            return None
        try:
            if name in ("default", "default-fp32"):
                from tailor.backends.model_files import default_model_dir

                # Converting the GGUF file once here also spares the replicas racing to do it.
                path = default_model_dir(self.options.get("cache_dir"))
            else:
                path = Path(argument)
                if not path.is_dir():  # the model may live only on the cluster's nodes
                    return None
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except Exception as error:
            raise BackendError(f"{self.spec}: the tokenizer of {self.config.inner!r} could not be loaded: {error}") \
                from error

        return functools.partial(tokenizer_count, tokenizer)


def with_thread_count(factory: Any, options: Mapping[str, Any], threads: int) -> dict[str, Any]:
    """``options`` for the backend ``factory`` makes, its thread count (``threads`` for
    ``default``/``transformers``, ``n_threads`` for ``llamacpp``) set to ``threads`` where the
    factory takes one and ``options`` leave it unset."""
    options = dict(options)
    try:
        accepted = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a factory without a signature: pass the options as given
        return options
    for key in _THREAD_OPTIONS:
        if key in accepted and options.get(key) is None:
            options[key] = threads
    return options


def ray_error_reason(error: BaseException) -> str:
    """The root of a Ray error in one line: the inner exception when Ray kept it, else Ray's last line."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}".splitlines()[0]
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
