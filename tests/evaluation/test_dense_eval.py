"""tailor eval with the dense methods, end to end with the echo backend and the hashing embedder."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from tailor.backends.echo import EchoBackend
from tailor.embeddings import load_embedder
from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.store import SQLiteProfileStore


def _runner_helpers() -> ModuleType:
    # test_runner.py's fixture writer and scripted model, loaded by path (tests is no package).
    spec = importlib.util.spec_from_file_location("_runner_helpers", Path(__file__).with_name("test_runner.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _runner_helpers()
DENSE = ("dense", "hybrid", "recency+dense")


def test_dense_methods_retrieve_the_on_topic_headline(tmp_path: Path) -> None:
    data = helpers.write_headline_task(tmp_path / "data")
    config = EvalConfig(task="LaMP-4", data=str(data), methods=("none", *DENSE), backend="echo",
                        embedder="hashing", n_resamples=100)
    report = evaluate(config, backend=EchoBackend(helpers.copy_first_title), progress=None)
    by_method = {r.method: r for r in report.results}
    assert by_method["none"].metrics["rouge-1"] == pytest.approx(0.0)
    for method in DENSE:
        # Each profile holds one headline per topic; the one sharing the article's topic is the gold.
        assert by_method[method].metrics["rouge-1"] == pytest.approx(1.0), method
        assert by_method[method].granularity == {"user": 4}
        assert by_method[method].versus_none["rouge-1"]["delta"] == pytest.approx(1.0)


def test_record_vectors_are_computed_once_into_the_runs_store(tmp_path: Path) -> None:
    data = helpers.write_headline_task(tmp_path / "data", users=3)
    out = tmp_path / "run"
    config = EvalConfig(task="LaMP-4", data=str(data), methods=DENSE, backend="echo", embedder="hashing",
                        out=str(out), n_resamples=50)
    evaluate(config, backend=EchoBackend(helpers.copy_first_title), progress=None)
    name = load_embedder("hashing").name
    with SQLiteProfileStore(out / "profiles.sqlite") as store:
        for user_id in store.list_users():
            ids, matrix = store.get_embeddings(user_id, name)
            assert len(ids) == store.count_records(user_id) == 6
            assert matrix.shape == (6, load_embedder("hashing").dim)
    predictions = [json.loads(line) for line in (out / "predictions" / "dense.jsonl").read_text().splitlines()]
    assert all(len(row["retrieved"]) == 1 for row in predictions)
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["embedder"] == "hashing"


def test_an_out_folder_refuses_another_embedder_but_accepts_folders_from_before_the_setting(tmp_path: Path) -> None:
    data = helpers.write_headline_task(tmp_path / "data", users=2)
    out = tmp_path / "run"
    config = EvalConfig(task="LaMP-4", data=str(data), methods=("bm25",), backend="echo", embedder="hashing",
                        out=str(out), n_resamples=50)
    evaluate(config, backend=EchoBackend(helpers.copy_first_title), progress=None)
    with pytest.raises(ValueError, match="embedder differ"):
        evaluate(EvalConfig(**{**config.__dict__, "embedder": "minilm"}), backend=EchoBackend(), progress=None)
    # A folder written before the embedder was part of the fingerprint still resumes.
    marker = out / "run.json"
    fingerprint = json.loads(marker.read_text())
    del fingerprint["embedder"]
    marker.write_text(json.dumps(fingerprint))
    resumed = EchoBackend(helpers.copy_first_title)
    evaluate(config, backend=resumed, progress=None)
    assert resumed.requests == []  # every prediction was reused
    assert json.loads(marker.read_text())["embedder"] == "hashing"


def test_an_unknown_embedder_is_refused_before_any_work() -> None:
    with pytest.raises(ValueError, match="unknown embedder 'glove'.*hashing, minilm"):
        EvalConfig(task="LaMP-4", data="x", methods=("dense",), embedder="glove")
