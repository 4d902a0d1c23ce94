"""``tailor train-adapter --executor ray`` and ``tailor train-preference --executor ray``: one
Ray task per adapter, on a tiny model.

One local Ray (2 CPUs, no dashboard) serves the whole module, as in
tests/backends/test_ray_backend.py. Failures are injected by a hook that runs in the worker
before each task (``RayExecutor(before_task=...)``), keeping its marks in files, since each
attempt may run in another process.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.adapters.conftest import write_lamp4
from tests.ray_fixtures import local_ray

from tailor.adapters.lora import from_bytes
from tailor.adapters.store import AdapterKey, AdapterStore, open_adapter_store
from tailor.adapters.train import LoRATrainConfig
from tailor.cli.main import main
from tailor.registry import MissingExtraError
from tailor.store import SQLiteProfileStore
from tailor.training.executors import ExecutorSpec, RayExecutor, parse_executor
from tailor.training.jobs import TrainAdapterConfig, TrainingFailedError, train_adapters

pytest.importorskip("torch")
pytest.importorskip("peft")

SMALL = ["--rank", "4", "--top-layers", "2", "--epochs", "1", "--max-items", "8"]
USERS = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    # The hooks below are defined here, in a module the workers cannot import: sent by value.
    yield from local_ray(__name__)


@dataclass(frozen=True)
class Faults:
    """Runs in the worker before each adapter: records the attempt, then fails as told.

    ``crash_once``: these owners' first attempt kills its worker process; ``raise_once``:
    their first attempt raises; ``always``: every attempt raises."""

    folder: str
    crash_once: tuple[str, ...] = ()
    raise_once: tuple[str, ...] = ()
    always: tuple[str, ...] = ()

    def __call__(self, key: AdapterKey) -> None:
        attempt = len(self.attempts(key.owner)) + 1
        Path(self.folder, f"{key.owner}.{attempt}").write_text(str(os.getpid()), encoding="utf-8")
        if key.owner in self.always:
            raise RuntimeError(f"injected failure for {key.owner}")
        if attempt == 1 and key.owner in self.raise_once:
            raise RuntimeError(f"injected first-attempt failure for {key.owner}")
        if attempt == 1 and key.owner in self.crash_once:
            os._exit(1)

    def attempts(self, owner: str) -> list[Path]:
        return sorted(Path(self.folder).glob(f"{owner}.*"))


def config(data: Path, out: Path, model: Path, **options: Any) -> TrainAdapterConfig:
    small = LoRATrainConfig(rank=4, top_layers=2, epochs=1, max_items=8)
    return TrainAdapterConfig(task="LaMP-4", data=str(data), out=str(out), split="dev", model=str(model),
                              lora=small, global_lora=small, **options)


def statuses(rows: list[Any]) -> dict[str, str]:
    return {row.key: row.status for row in rows}


# -- the spec ------------------------------------------------------------------------------------


def test_executor_specs_parse_and_bad_ones_say_what_is_allowed() -> None:
    assert parse_executor("local") == ExecutorSpec("local")
    assert parse_executor("ray") == ExecutorSpec("ray")
    assert parse_executor("ray:ray://head:10001") == ExecutorSpec("ray", "ray://head:10001")
    assert str(parse_executor("ray:auto")) == "ray:auto"
    for bad in ("dask", "ray:", "local:x", ""):
        with pytest.raises(ValueError, match="local, ray or ray:ADDRESS"):
            parse_executor(bad)
    with pytest.raises(ValueError, match="projector"):
        TrainAdapterConfig(task="LaMP-4", data="d", out="o", scope="global", kind="user-embedding", executor="ray")
    with pytest.raises(ValueError, match="retries"):
        TrainAdapterConfig(task="LaMP-4", data="d", out="o", retries=-1)
    from tailor.training.preference import TrainPreferenceConfig

    assert TrainPreferenceConfig(store="s.db", executor="ray:auto").executor == ExecutorSpec("ray", "auto")
    with pytest.raises(ValueError, match="local, ray or ray:ADDRESS"):
        TrainPreferenceConfig(store="s.db", executor="dask")
    with pytest.raises(ValueError, match="retries"):
        TrainPreferenceConfig(store="s.db", retries=-1)


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail, as when it is not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'tailor-llm\[ray\]'"):
        RayExecutor()
    code = main(["train-adapter", "--task", "LaMP-4", "--data", str(tmp_path), "--out", str(tmp_path / "out"),
                 "--executor", "spark"])
    assert code == 1 and "local, ray or ray:ADDRESS" in capsys.readouterr().err


# -- on a local Ray ------------------------------------------------------------------------------


def test_ray_trains_the_same_adapters_as_local(ray_cluster: Any, tmp_path: Path, tiny_model_dir: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = write_lamp4(tmp_path / "data")
    common = ["train-adapter", "--task", "LaMP-4", "--data", str(data), "--split", "dev", "--model",
              str(tiny_model_dir), "--json", *SMALL]
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    local_rows = json.loads(capsys.readouterr().out)["adapters"]
    assert main([*common, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    ray_rows = json.loads(capsys.readouterr().out)["adapters"]
    # The same rows in the same order: the global adapter, then each user.
    assert [(r["key"], r["status"]) for r in ray_rows] == [(r["key"], r["status"]) for r in local_rows]
    assert {r["status"] for r in ray_rows} == {"trained"} and len(ray_rows) == 4
    local, ray = open_adapter_store(tmp_path / "local"), open_adapter_store(tmp_path / "ray")
    workers = []
    for key in [AdapterKey.global_("LaMP-4")] + [AdapterKey("user", u, "LaMP-4") for u in USERS]:
        ours, theirs = local.load(key), ray.load(key)
        assert ours is not None and theirs is not None
        assert theirs.config == ours.config
        if key.scope == "global":  # a user's digest also holds the global weights' digest, which
            # a float sum in another order (another thread count) may change in the last bit
            assert theirs.metadata["data_digest"] == ours.metadata["data_digest"]
        mine, other = from_bytes(ours.weights, ours.config["lora"]), from_bytes(theirs.weights, theirs.config["lora"])
        assert mine.tensors.keys() == other.tensors.keys()
        for name, tensor in mine.tensors.items():
            assert float((tensor - other.tensors[name]).abs().max()) < 1e-5, (key, name)
        workers.append(theirs.metadata["worker"])
    # One task per adapter, each with whole CPUs as torch threads; every worker loaded the model once.
    assert workers[0]["threads"] == 2  # the global adapter alone gets the whole (2-CPU) node
    assert all(w["threads"] == 1 for w in workers[1:])  # three users share 2 CPUs: one each
    assert all(w["model_loads"] == 1 for w in workers)
    assert len({w["pid"] for w in workers}) < len(workers)  # some worker reused its model for another user


def test_a_failed_or_killed_task_is_retried(ray_cluster: Any, tmp_path: Path, tiny_model_dir: Path) -> None:
    data = write_lamp4(tmp_path / "data")
    faults = Faults(str(tmp_path / "marks"), crash_once=("bob",), raise_once=("alice",))
    Path(faults.folder).mkdir()
    report = train_adapters(config(data, tmp_path / "out", tiny_model_dir, stack=False),
                            progress=None, executor=RayExecutor(retries=1, before_task=faults))
    assert statuses(report.rows) == {f"user/{u}/LaMP-4/lora": "trained" for u in USERS}
    assert [len(faults.attempts(u)) for u in USERS] == [2, 2, 1]
    store = open_adapter_store(tmp_path / "out")
    assert all(store.info(AdapterKey("user", u, "LaMP-4")) is not None for u in USERS)


def test_a_user_that_keeps_failing_is_reported_and_the_others_are_stored(
        ray_cluster: Any, tmp_path: Path, tiny_model_dir: Path) -> None:
    data = write_lamp4(tmp_path / "data")
    faults = Faults(str(tmp_path / "marks"), always=("bob",))
    Path(faults.folder).mkdir()
    report = train_adapters(config(data, tmp_path / "out", tiny_model_dir), progress=None,
                            executor=RayExecutor(retries=1, before_task=faults))
    assert statuses(report.rows) == {"global/all/LaMP-4/lora": "trained", "user/alice/LaMP-4/lora": "trained",
                                     "user/bob/LaMP-4/lora": "failed", "user/carol/LaMP-4/lora": "trained"}
    [failed] = report.failed
    assert failed.key == "user/bob/LaMP-4/lora" and "injected failure for bob" in (failed.error or "")
    assert len(faults.attempts("bob")) == 2  # the first attempt and one retry
    store = open_adapter_store(tmp_path / "out")
    assert store.info(AdapterKey("user", "bob", "LaMP-4")) is None
    assert store.info(AdapterKey("user", "carol", "LaMP-4")) is not None
    # A rerun trains only what is missing: bob.
    marks = Faults(str(tmp_path / "rerun"))
    Path(marks.folder).mkdir()
    again = train_adapters(config(data, tmp_path / "out", tiny_model_dir), progress=None,
                           executor=RayExecutor(before_task=marks))
    assert statuses(again.rows)["user/bob/LaMP-4/lora"] == "trained" and not again.failed
    assert sorted(path.name for path in Path(marks.folder).iterdir()) == ["bob.1"]


def test_a_failing_global_adapter_stops_the_run(ray_cluster: Any, tmp_path: Path, tiny_model_dir: Path) -> None:
    data = write_lamp4(tmp_path / "data")
    faults = Faults(str(tmp_path / "marks"), always=("all",))
    Path(faults.folder).mkdir()
    with pytest.raises(TrainingFailedError, match="global adapter"):
        train_adapters(config(data, tmp_path / "out", tiny_model_dir), progress=None,
                       executor=RayExecutor(retries=0, before_task=faults))


def test_a_rerun_resumes_without_retraining_finished_users(ray_cluster: Any, tmp_path: Path,
                                                           tiny_model_dir: Path) -> None:
    data = write_lamp4(tmp_path / "data")
    out = tmp_path / "out"
    # As if a driver had died after storing the global adapter and alice's.
    first = train_adapters(config(data, out, tiny_model_dir, users=("alice",)), progress=None)
    assert set(statuses(first.rows).values()) == {"trained"}
    alice = open_adapter_store(out).info(AdapterKey("user", "alice", "LaMP-4"))
    faults = Faults(str(tmp_path / "marks"))
    Path(faults.folder).mkdir()
    report = train_adapters(config(data, out, tiny_model_dir), progress=None,
                            executor=RayExecutor(before_task=faults))
    assert statuses(report.rows) == {"global/all/LaMP-4/lora": "up to date", "user/alice/LaMP-4/lora": "up to date",
                                     "user/bob/LaMP-4/lora": "trained", "user/carol/LaMP-4/lora": "trained"}
    # Training calls, counted in the workers: bob's and carol's only.
    assert sorted(path.name for path in Path(faults.folder).iterdir()) == ["bob.1", "carol.1"]
    assert open_adapter_store(out).info(AdapterKey("user", "alice", "LaMP-4")) == alice


def test_personas_train_one_task_each(ray_cluster: Any, tmp_path: Path, tiny_model_dir: Path) -> None:
    data = write_lamp4(tmp_path / "data")
    groups = tmp_path / "personas.json"
    groups.write_text(json.dumps({"writers": ["alice", "bob"], "planners": ["carol"]}))
    local = train_adapters(config(data, tmp_path / "local", tiny_model_dir, scope="persona",
                                  personas_file=str(groups), min_history=2), progress=None)
    ray = train_adapters(config(data, tmp_path / "ray", tiny_model_dir, scope="persona", personas_file=str(groups),
                                min_history=2, executor="ray"), progress=None)
    assert statuses(ray.rows) == statuses(local.rows) == {
        "global/all/LaMP-4/lora": "trained", "persona/writers/LaMP-4/lora": "trained",
        "persona/planners/LaMP-4/lora": "trained"}
    for owner in ("writers", "planners"):
        key = AdapterKey("persona", owner, "LaMP-4")
        ours, theirs = open_adapter_store(tmp_path / "local").load(key), open_adapter_store(tmp_path / "ray").load(key)
        assert ours is not None and theirs is not None
        mine, other = from_bytes(ours.weights, ours.config["lora"]), from_bytes(theirs.weights, theirs.config["lora"])
        assert all(float((t - other.tensors[n]).abs().max()) < 1e-5 for n, t in mine.tensors.items())
        assert open_adapter_store(tmp_path / "ray").contributors(key) == open_adapter_store(
            tmp_path / "local").contributors(key)


# -- preference adapters (tailor train-preference) on a local Ray ------------------------------------


def preference_pairs(path: Path) -> Path:
    """Three pairs for each user, different for each, so that their adapters differ."""
    from tailor.alignment.pairs import PreferencePair, write_pairs

    write_pairs([PreferencePair(user, ({"role": "user", "content": f"{user}'s question {i}?"},), f"Short, {user}.",
                                f"A long and winding answer number {i} for {user} that goes on and on.")
                 for user in USERS for i in range(3)], path)
    return path


def preference_config(store: Path, pairs: Path, model: Path) -> Any:
    from tailor.adapters.preference import PreferenceTrainConfig
    from tailor.training.preference import TrainPreferenceConfig

    return TrainPreferenceConfig(store=str(store), pairs=str(pairs), min_pairs=3, model=str(model),
                                 train=PreferenceTrainConfig(epochs=1, batch_size=2, rank=4, top_layers=2))


def test_ray_trains_the_same_preference_adapters_as_local(ray_cluster: Any, tmp_path: Path, tiny_model_dir: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("trl")
    from tailor.adapters.soups import preference_key

    pairs = preference_pairs(tmp_path / "pairs.jsonl")
    common = ["train-preference", "--pairs", str(pairs), "--model", str(tiny_model_dir), "--epochs", "1",
              "--batch-size", "2", "--rank", "4", "--min-pairs", "3", "--json"]
    assert main([*common, "--store", str(tmp_path / "local.db")]) == 0
    local_rows = json.loads(capsys.readouterr().out)["adapters"]
    assert main([*common, "--store", str(tmp_path / "ray.db"), "--executor", "ray"]) == 0
    ray_rows = json.loads(capsys.readouterr().out)["adapters"]
    assert [(r["key"], r["status"]) for r in ray_rows] == [(r["key"], r["status"]) for r in local_rows]
    assert [r["status"] for r in ray_rows] == ["trained"] * len(USERS)
    with SQLiteProfileStore(tmp_path / "local.db") as mine, SQLiteProfileStore(tmp_path / "ray.db") as theirs:
        for user in USERS:
            ours = AdapterStore(mine).load(preference_key("user", user))
            other = AdapterStore(theirs).load(preference_key("user", user))
            assert ours is not None and other is not None
            assert other.config == ours.config
            assert other.metadata["data_digest"] == ours.metadata["data_digest"]
            assert other.metadata["examples"] == ours.metadata["examples"] == 3
            assert other.metadata["seconds"] > 0 and other.size > 0
            assert other.metadata["worker"]["threads"] == 1  # three adapters share 2 CPUs: one each
            a, b = from_bytes(ours.weights, ours.config["lora"]), from_bytes(other.weights, other.config["lora"])
            assert a.tensors.keys() == b.tensors.keys()
            for name, tensor in a.tensors.items():
                assert float((tensor - b.tensors[name]).abs().max()) < 1e-5, (user, name)
    # The same command again: every adapter is up to date, and nothing is submitted.
    assert main([*common, "--store", str(tmp_path / "ray.db"), "--executor", "ray"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["imported"] == 0 and {r["status"] for r in again["adapters"]} == {"up to date"}


def test_a_preference_adapter_that_keeps_failing_is_reported_and_the_others_are_stored(
        ray_cluster: Any, tmp_path: Path, tiny_model_dir: Path) -> None:
    pytest.importorskip("trl")
    from tailor.adapters.soups import preference_key
    from tailor.training.preference import train_preference

    pairs = preference_pairs(tmp_path / "pairs.jsonl")
    config = preference_config(tmp_path / "store.db", pairs, tiny_model_dir)
    faults = Faults(str(tmp_path / "marks"), always=("bob",))
    Path(faults.folder).mkdir()
    report = train_preference(config, executor=RayExecutor(retries=1, before_task=faults))
    bob = "user/bob/chat/lora/preference"
    assert statuses(report.rows) == {"user/alice/chat/lora/preference": "trained", bob: "failed",
                                     "user/carol/chat/lora/preference": "trained"}
    [failed] = report.failed
    assert failed.key == bob and "injected failure for bob" in (failed.error or "")
    assert len(faults.attempts("bob")) == 2  # the first attempt and one retry
    with SQLiteProfileStore(tmp_path / "store.db") as store:
        assert AdapterStore(store).info(preference_key("user", "bob")) is None
        assert AdapterStore(store).info(preference_key("user", "carol")) is not None
    # A rerun (as after a driver killed midway) trains only what is missing: bob.
    marks = Faults(str(tmp_path / "rerun"))
    Path(marks.folder).mkdir()
    again = train_preference(config, executor=RayExecutor(before_task=marks))
    assert statuses(again.rows)[bob] == "trained" and not again.failed
    assert sorted(path.name for path in Path(marks.folder).iterdir()) == ["bob.1"]
