"""The ray backend: replicas of a backend on Ray actors, each batch split across them.

One local Ray (2 CPUs, no dashboard) serves the whole module; the replicas run the echo
backend, so what is measured is the splitting, the ordering and the failures, not a model.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tailor.backends import load_backend
from tailor.backends.contract import BackendError, approximate_token_count
from tailor.backends.echo import EchoBackend
from tailor.backends.ray import RayBackend, split_evenly
from tailor.registry import MissingExtraError
from tailor.types import GenerationRequest


def ask(text: str, **options: Any) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},), **options)


def mixed_batch(n: int) -> list[GenerationRequest]:
    """Free-text requests with candidate-scoring ones among them, each answer different."""
    batch = []
    for i in range(n):
        if i % 3 == 2:
            batch.append(ask(f"request {i}: sports sports news, or weather?", candidates=("news", "sports", "weather")))
        else:
            batch.append(ask(f"request {i} says hello to replica number {i}", max_new_tokens=4 + i % 5, stop=("!",)))
    return batch


def gone(pid: int, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # pragma: no cover (another module left one running)
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="warning")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def backend(ray_cluster: Any) -> Iterator[RayBackend]:
    # A fixed share leaves room in the 2-CPU cluster for the other tests' replicas.
    built = load_backend("ray:2:echo", cpus_per_replica=0.5)
    assert isinstance(built, RayBackend)
    yield built
    built.close()


# -- splitting and ordering -----------------------------------------------------------------------


def test_split_evenly_gives_contiguous_chunks_larger_first() -> None:
    assert split_evenly(7, 2) == [(0, 4), (4, 7)]
    assert split_evenly(6, 3) == [(0, 2), (2, 4), (4, 6)]
    assert split_evenly(1, 4) == [(0, 1)]
    assert split_evenly(0, 2) == []
    with pytest.raises(ValueError, match="at least 1"):
        split_evenly(3, 0)


def test_results_equal_the_inner_backends_in_request_order(backend: RayBackend) -> None:
    batch = mixed_batch(11)
    results = backend.generate(batch)
    assert results == EchoBackend().generate(batch)
    scored = [r for r, q in zip(results, batch) if q.candidates is not None]
    assert scored and all(r.text == "sports" and r.scores is not None for r in scored)


def test_each_replica_process_answers_its_contiguous_share(backend: RayBackend) -> None:
    before = backend.replica_info()
    assert len({info.pid for info in before}) == 2
    assert os.getpid() not in {info.pid for info in before}
    assert all(info.cpus == 0.5 for info in before)
    backend.generate(mixed_batch(7))
    after = backend.replica_info()
    assert [a.pid for a in after] == [b.pid for b in before]
    assert [a.answered - b.answered for a, b in zip(after, before)] == [4, 3]


def test_a_batch_smaller_than_the_replica_count_uses_the_first_replicas(backend: RayBackend) -> None:
    before = backend.replica_info()
    [request] = mixed_batch(1)
    assert backend.generate([request]) == EchoBackend().generate([request])
    after = backend.replica_info()
    assert [a.answered - b.answered for a, b in zip(after, before)] == [1, 0]


def test_an_empty_batch_asks_no_replica(backend: RayBackend) -> None:
    before = backend.replica_info()
    assert backend.generate([]) == []
    assert [info.answered for info in backend.replica_info()] == [info.answered for info in before]


def test_name_model_id_and_token_counts_follow_the_inner_backend(backend: RayBackend) -> None:
    assert backend.name == "ray:2:echo"
    assert backend.model_id == "echo"
    text = "a few words to count, asked of the first replica"
    assert backend.count_tokens(text) == approximate_token_count(text)


# -- specs and failures -------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "message"), [
    ("ray", "needs a replica count and an inner backend"),
    ("ray:0:echo", "replica count must be a whole number of at least 1, got '0'"),
    ("ray:x:echo", "replica count must be a whole number of at least 1, got 'x'"),
    ("ray:-2:echo", "replica count must be a whole number"),
    ("ray:2", "needs an inner backend after the replica count"),
    ("ray:2:", "needs an inner backend after the replica count"),
    ("ray:2:ray:2:echo", "cannot be another ray backend"),
    ("ray:2:nosuch", "unknown backend 'nosuch'"),
    ("ray:2:transformers", "needs a model directory"),
])
def test_a_bad_spec_is_a_clear_value_error_before_ray_starts(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_backend(spec)


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail, as when it is not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'tailor-llm\[ray\]'"):
        load_backend("ray:2:echo")


def test_an_inner_backend_that_fails_to_build_names_the_spec(ray_cluster: Any) -> None:
    with pytest.raises(BackendError, match=r"ray:2:transformers:/no/such/model.*failed to build its backend") as error:
        load_backend("ray:2:transformers:/no/such/model", cpus_per_replica=0.25)
    assert "does not exist" in str(error.value)


def test_a_replica_that_dies_is_named_in_the_error(ray_cluster: Any) -> None:
    with RayBackend("echo", 2, cpus_per_replica=0.25) as doomed:
        victim = doomed.replica_info()[1].pid
        os.kill(victim, signal.SIGKILL)
        assert gone(victim)
        with pytest.raises(BackendError, match=r"Ray replica 1 of ray:2:echo \(inner backend 'echo'\)"):
            doomed.generate(mixed_batch(4))


def test_close_kills_the_replicas_and_leaves_a_ray_it_did_not_start(ray_cluster: Any) -> None:
    closing = load_backend("ray:2:echo", cpus_per_replica=0.25)
    assert isinstance(closing, RayBackend)
    pids = [info.pid for info in closing.replica_info()]
    closing.close()
    closing.close()
    assert all(gone(pid) for pid in pids)
    assert ray_cluster.is_initialized()
    with pytest.raises(BackendError, match="closed"):
        closing.generate(mixed_batch(1))


def test_importing_tailor_and_its_backends_does_not_import_ray() -> None:
    code = ("import sys, tailor, tailor.backends, tailor.backends.ray; "
            "from tailor.backends import BACKENDS; BACKENDS.names(); print('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# -- a Ray of its own, or one it is pointed at (fresh processes) ----------------------------------

_OWN_RAY = """
import ray
from tailor.backends import load_backend
backend = load_backend("ray:2:echo")
print(int(ray.cluster_resources()["CPU"]), [info.cpus for info in backend.replica_info()])
backend.close()
print(ray.is_initialized())
"""

_GIVEN_RAY = """
import os, ray
from tailor.backends import load_backend
backend = load_backend("ray:1:echo", cpus_per_replica=0.25)
print(ray.get_runtime_context().gcs_address == os.environ["RAY_ADDRESS"])
backend.close()
print(ray.is_initialized())
"""


def test_without_a_ray_it_starts_one_sized_to_the_replicas_and_shuts_it_down() -> None:
    pytest.importorskip("ray")
    environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    result = subprocess.run([sys.executable, "-c", _OWN_RAY], check=False, capture_output=True, text=True, env=environment,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    sizes, initialized = result.stdout.strip().splitlines()[-2:]
    cpus = max(1, len(os.sched_getaffinity(0)) // 2)
    assert sizes == f"{2 * cpus} [{float(cpus)}, {float(cpus)}]"
    assert initialized == "False"


def test_ray_address_connects_to_that_cluster_and_close_only_disconnects(ray_cluster: Any) -> None:
    address = ray_cluster.get_runtime_context().gcs_address
    result = subprocess.run([sys.executable, "-c", _GIVEN_RAY], check=False, capture_output=True, text=True,
                            env={**os.environ, "RAY_ADDRESS": address}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-2:] == ["True", "False"]
    assert ray_cluster.is_initialized()  # the cluster it joined is still up


# -- the real default model ---------------------------------------------------------------------


@pytest.mark.model
def test_replicas_of_the_default_model_answer_as_it_does(ray_cluster: Any) -> None:
    from tailor.backends import load_backend

    requests = [ask("Name a fruit that is yellow.", max_new_tokens=12),
                ask("Write a headline about a volcano eruption in Iceland.", max_new_tokens=16, stop=("\n",))]
    with RayBackend("default", 2, cpus_per_replica=0.5) as replicated:
        texts = [r.text for r in replicated.generate(requests)]
        counted = replicated.count_tokens("How many tokens is this sentence?")
        model_id = replicated.model_id
    local = load_backend("default")
    assert texts == [r.text for r in local.generate(requests)]
    assert counted == local.count_tokens("How many tokens is this sentence?")
    assert model_id == local.model_id
