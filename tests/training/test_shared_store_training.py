"""Adapters trained into a PostgreSQL store (``tailor train-adapter --out postgresql://...``):
here, or on Ray, where each worker stores its own adapter; then served from that database.

One local Ray (2 CPUs) serves the module; each store is a PostgreSQL schema of the test's
own on the throwaway server of tests/postgres_fixtures.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.adapters.conftest import write_lamp4
from tests.ray_fixtures import local_ray

from tailor.adapters.lora import from_bytes
from tailor.adapters.store import AdapterKey, open_adapter_store
from tailor.adapters.train import LoRATrainConfig
from tailor.cli.main import main
from tailor.training.executors import AdapterRecord, AdapterTask, RayExecutor, shared_store_url

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("psycopg")

USERS = ("alice", "bob")
SMALL = ["--rank", "4", "--top-layers", "2", "--epochs", "1", "--max-items", "8"]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    yield from local_ray(__name__)


def train(data: Path, out: str, model: Path, capsys: pytest.CaptureFixture[str], *options: str) -> list[dict[str, Any]]:
    code = main(["train-adapter", "--task", "LaMP-4", "--data", str(data), "--split", "dev", "--model", str(model),
                 "--out", out, "--json", *SMALL, *options])
    assert code == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["adapters"]
    return rows


def test_the_store_of_a_url_is_the_database_and_a_folder_stays_sqlite(postgres_url: str, tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'file.db'}"
    stores = {postgres_url: open_adapter_store(postgres_url),
              str(tmp_path / "out"): open_adapter_store(tmp_path / "out", create=True),
              sqlite_url: open_adapter_store(sqlite_url)}
    try:
        assert type(stores[postgres_url].profiles).__name__ == "PostgresProfileStore"
        # Workers store their own results only in a database every node reaches, never a SQLite file.
        assert {location: shared_store_url(location, store.profiles) for location, store in stores.items()} == {
            postgres_url: postgres_url, str(tmp_path / "out"): None, sqlite_url: None}
    finally:
        for store in stores.values():
            store.profiles.close()


def test_local_and_ray_store_the_same_adapters_in_postgresql_and_a_rerun_trains_nothing(
        ray_cluster: Any, tmp_path: Path, tiny_model_dir: Path, postgres_url: str, other_postgres_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    data = write_lamp4(tmp_path / "data", users=USERS)
    local_rows = train(data, postgres_url, tiny_model_dir, capsys)
    ray_rows = train(data, other_postgres_url, tiny_model_dir, capsys, "--executor", "ray")
    assert [(r["key"], r["status"]) for r in ray_rows] == [(r["key"], r["status"]) for r in local_rows]
    assert [r["status"] for r in ray_rows] == ["trained"] * 3  # the global adapter, then each user
    local, ray = open_adapter_store(postgres_url), open_adapter_store(other_postgres_url)
    try:
        for key in [AdapterKey.global_("LaMP-4")] + [AdapterKey("user", u, "LaMP-4") for u in USERS]:
            ours, theirs = local.load(key), ray.load(key)
            assert ours is not None and theirs is not None
            assert theirs.config == ours.config and theirs.base_model == ours.base_model
            # Stored by the worker that trained it: the row names another process than this one.
            assert theirs.metadata["worker"]["pid"] != os.getpid() and "worker" not in ours.metadata
            # The same metadata but for where and how long it ran; the losses and the weights only
            # within float tolerance (other threads sum in another order), and so each user
            # adapter names its own store's global adapter (a digest of its weights' bytes).
            varying = ("worker", "seconds", "timings", "data_digest", "on_top_of")
            mine_meta = {k: v for k, v in ours.metadata.items() if k not in varying}
            their_meta = {k: v for k, v in theirs.metadata.items() if k not in varying}
            assert mine_meta.keys() == their_meta.keys()
            for name, value in mine_meta.items():
                if isinstance(value, float):
                    assert their_meta[name] == pytest.approx(value, abs=1e-3), (key, name)
                else:
                    assert their_meta[name] == value, (key, name)
            if key.scope == "user":
                for store, row in ((local, ours), (ray, theirs)):
                    base = store.info(AdapterKey.global_("LaMP-4"))
                    assert base is not None and row.metadata["on_top_of"] == base.digest
            mine, other = from_bytes(ours.weights, ours.config["lora"]), from_bytes(theirs.weights,
                                                                                    theirs.config["lora"])
            assert mine.tensors.keys() == other.tensors.keys()
            for name, tensor in mine.tensors.items():
                assert float((tensor - other.tensors[name]).abs().max()) < 1e-5, (key, name)
        assert ray.contributors(AdapterKey.global_("LaMP-4")) == list(USERS)
    finally:
        local.profiles.close()
        ray.profiles.close()
    # The same command again: every adapter is up to date, nothing is trained.
    again = train(data, other_postgres_url, tiny_model_dir, capsys, "--executor", "ray")
    assert {r["status"] for r in again} == {"up to date"}


def test_a_worker_stores_its_adapter_where_the_driver_sees_it(ray_cluster: Any, tmp_path: Path,
                                                              tiny_model_dir: Path, postgres_url: str) -> None:
    from tailor.adapters.data import TrainingPair

    driver = open_adapter_store(postgres_url)
    try:
        driver.profiles.set_attributes("alice", {})
        pairs = tuple(TrainingPair(f"r{i}", f"Headline for story {i}:", f"Breaking: story {i}") for i in range(4))
        record = AdapterRecord({"note": "test"}, {"fingerprint": "tiny"}, {"data_digest": "d1"})
        key = AdapterKey("user", "alice", "LaMP-4")
        task = AdapterTask(key, "LaMP-4", pairs, LoRATrainConfig(rank=4, top_layers=2, epochs=1), str(tiny_model_dir),
                           record, store=postgres_url)
        executor = RayExecutor(retries=0)
        [outcome] = list(executor.run([task]))
        assert outcome.error is None and outcome.result is not None and outcome.worker is not None
        assert outcome.result.weights == b""  # kept in the store; only the report came back
        stored = driver.load(key)
        assert stored is not None and stored.size > 0
        assert stored.config == {"note": "test"} and stored.metadata["data_digest"] == "d1"
        assert stored.metadata["worker"]["pid"] == outcome.worker["pid"] != os.getpid()
    finally:
        driver.profiles.close()


def test_a_server_on_the_database_serves_the_adapters_trained_into_it(
        ray_cluster: Any, tmp_path: Path, tiny_model_dir: Path, postgres_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from tailor.backends.hf import TransformersBackend
    from tailor.server import ServeConfig, create_app

    data = write_lamp4(tmp_path / "data", users=USERS)
    train(data, postgres_url, tiny_model_dir, capsys, "--executor", "ray", "--users", "alice")
    config = ServeConfig(store=postgres_url, backend="echo", method="none", memory=False)
    with TestClient(create_app(config, backend=TransformersBackend(str(tiny_model_dir), batch_size=2))) as client:
        for user, adapter in (("alice", "user"), ("bob", "global")):
            response = client.post("/v1/chat/completions", json={
                "messages": [{"role": "user", "content": "A headline about the river."}], "max_tokens": 4,
                "user": user})
            assert response.status_code == 200, response.text
            assert response.headers["x-tailor-adapter"] == adapter


def test_preference_adapters_are_stored_by_their_workers_in_postgresql(
        ray_cluster: Any, tmp_path: Path, tiny_model_dir: Path, postgres_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("trl")
    from tests.training.test_ray_executor import preference_pairs

    from tailor.adapters.soups import preference_key

    pairs = preference_pairs(tmp_path / "pairs.jsonl")
    command = ["train-preference", "--store", postgres_url, "--pairs", str(pairs), "--model", str(tiny_model_dir),
               "--epochs", "1", "--batch-size", "2", "--rank", "4", "--min-pairs", "3", "--json", "--executor", "ray"]
    assert main(command) == 0
    rows = json.loads(capsys.readouterr().out)["adapters"]
    assert {r["status"] for r in rows} == {"trained"} and len(rows) == 3
    store = open_adapter_store(postgres_url)
    try:
        for user in ("alice", "bob", "carol"):
            stored = store.load(preference_key("user", user))
            assert stored is not None and stored.metadata["examples"] == 3
            assert stored.metadata["worker"]["pid"] != os.getpid() and stored.config["lora"]["rank"] == 4
    finally:
        store.profiles.close()
    assert main(command) == 0
    assert {r["status"] for r in json.loads(capsys.readouterr().out)["adapters"]} == {"up to date"}
