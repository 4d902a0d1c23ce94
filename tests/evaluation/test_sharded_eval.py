"""``tailor eval --executor ray``: each method's examples in shards of users, one Ray task
each, with the local executor's predictions and metrics.

One local Ray (2 CPUs, no dashboard) serves the module, as in
tests/training/test_ray_executor.py; failures are injected by a hook that runs in the worker
before each shard (``RayExecutor(before_task=...)``), keeping its marks in files, since each
attempt may run in another process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from tests.evaluation.test_label_methods import write_rating_task
from tests.ray_fixtures import local_ray

from tailor.backends.echo import EchoBackend
from tailor.cli.main import main
from tailor.evaluation.checkpoint import safe_name
from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.evaluation.shards import ShardKey, ShardsFailedError, shard_by_user
from tailor.store import InMemoryProfileStore
from tailor.training.executors import ExecutorSpec, RayExecutor
from tailor.types import Profile, TaskExample

TOPICS = ["volcano eruption", "football final", "stock market", "election results", "rocket launch", "flood warning"]
USERS = 5
QUESTIONS = 3


def write_headlines(folder: Path) -> Path:
    """A LaMP-4 split of several questions per user, users interleaved in file order. Each
    user's history has one headline per topic; question ``j`` shows all of it but topic
    ``j``'s, so the store holds the union and each question reads its own part of it."""
    questions, golds = [], []
    for j in range(QUESTIONS):
        for u in range(USERS):
            profile = [{"id": f"u{u}-{t}", "title": f"{topic} story by writer{u}", "text": f"all about the {topic}",
                        "date": f"2020-01-{t + 1:02d}"} for t, topic in enumerate(TOPICS) if t != j]
            topic = TOPICS[(u + 2 * j + 1) % len(TOPICS)]
            questions.append({"id": f"q{u}-{j}", "user_id": f"user{u}", "profile": profile,
                              "input": f"Generate a headline for the following article: news on the {topic} now"})
            golds.append({"id": f"q{u}-{j}", "output": f"{topic} story by writer{u}"})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dev_questions.json").write_text(json.dumps(questions), encoding="utf-8")
    (folder / "dev_outputs.json").write_text(json.dumps({"task": "LaMP_4", "golds": golds}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    # The hooks below are defined here, in a module the workers cannot import: sent by value.
    yield from local_ray(__name__)


@dataclass(frozen=True)
class ShardFaults:
    """Runs in the worker before each shard: records the attempt and the shard's users, then
    fails as told (``always``: every attempt of a shard holding these users; ``raise_once``:
    its first)."""

    folder: str
    always: tuple[str, ...] = ()
    raise_once: tuple[str, ...] = ()

    def __call__(self, key: ShardKey) -> None:
        stem = f"{safe_name(key.method)}.{key.index}"
        attempt = len(list(Path(self.folder).glob(f"{stem}.*"))) + 1
        Path(self.folder, f"{stem}.{attempt}").write_text(json.dumps(key.users), encoding="utf-8")
        if set(key.users) & set(self.always):
            raise RuntimeError(f"injected failure for {', '.join(key.users)}")
        if attempt == 1 and set(key.users) & set(self.raise_once):
            raise RuntimeError(f"injected first-attempt failure for {', '.join(key.users)}")

    def shards(self) -> list[list[str]]:
        """The users of each attempt, in no particular order."""
        return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(Path(self.folder).iterdir())]


def predictions(out: Path, method: str) -> dict[str, dict[str, Any]]:
    """A run's checkpoint rows by id, without their timings."""
    rows = [json.loads(line) for line in (out / "predictions" / f"{safe_name(method)}.jsonl").read_text().splitlines()]
    return {row["id"]: {k: v for k, v in row.items() if k != "seconds"} for row in rows}


def scores(out: Path) -> list[dict[str, Any]]:
    """results.json's scores of each method (no timings, no settings)."""
    results = json.loads((out / "results.json").read_text())["results"]
    return [{k: r[k] for k in ("method", "metrics", "ci95", "versus_none", "granularity", "engine")} for r in results]


# -- without Ray -------------------------------------------------------------------------------------


def test_bad_executor_settings_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_headlines(tmp_path / "data")
    assert EvalConfig(task="LaMP-4", data=str(data), executor="ray:auto").executor == ExecutorSpec("ray", "auto")
    for bad in ("dask", "ray:", "local:x"):
        with pytest.raises(ValueError, match="local, ray or ray:ADDRESS"):
            EvalConfig(task="LaMP-4", data=str(data), executor=bad)
    with pytest.raises(ValueError, match="retries"):
        EvalConfig(task="LaMP-4", data=str(data), retries=-1)
    with pytest.raises(ValueError, match="threads"):
        EvalConfig(task="LaMP-4", data=str(data), threads=0)
    code = main(["eval", "--task", "LaMP-4", "--data", str(data), "--backend", "echo", "--executor", "spark"])
    assert code == 1 and "local, ray or ray:ADDRESS" in capsys.readouterr().err


def test_what_a_worker_cannot_have_is_refused_before_anything_runs(tmp_path: Path) -> None:
    data = write_headlines(tmp_path / "data")
    ray = EvalConfig(task="LaMP-4", data=str(data), backend="echo", executor="ray")
    with pytest.raises(ValueError, match="each worker loads config.backend itself"):
        evaluate(ray, backend=EchoBackend())
    with pytest.raises(ValueError, match="profiles come from the data set"):
        evaluate(ray, store=InMemoryProfileStore())
    with pytest.raises(ValueError, match="name the inner backend alone"):
        evaluate(EvalConfig(task="LaMP-4", data=str(data), backend="ray:2:echo", executor="ray"))


def test_shards_hold_whole_users_and_share_the_examples_out() -> None:
    examples = [TaskExample(f"q{i}", user, "input", Profile(user, ()))
                for i, user in enumerate(["a", "b", "a", "c", "d", "b", "e", "e", "f"])]
    shards = shard_by_user(examples, 3)
    assert [[e.id for e in shard] for shard in shards] == [["q0", "q1", "q2", "q5"], ["q3", "q4"], ["q6", "q7", "q8"]]
    assert [e.id for e in shard_by_user(examples, 1)[0]] == [e.id for e in examples]
    assert len(shard_by_user(examples, 100)) == 6  # one user each at most
    with pytest.raises(ValueError, match="shards"):
        shard_by_user(examples, 0)


# -- on a local Ray ------------------------------------------------------------------------------------


def test_ray_gives_the_local_predictions_and_metrics(ray_cluster: Any, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = write_headlines(tmp_path / "data")
    common = ["eval", "--task", "LaMP-4", "--data", str(data), "--backend", "echo", "--method", "none,bm25,dense",
              "--embedder", "hashing", "--json"]
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*common, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    ray = json.loads(capsys.readouterr().out)
    assert [r["metrics"] for r in ray["results"]] == [r["metrics"] for r in local["results"]]
    assert scores(tmp_path / "ray") == scores(tmp_path / "local")
    for method in ("none", "bm25", "dense"):
        ours, theirs = predictions(tmp_path / "local", method), predictions(tmp_path / "ray", method)
        assert len(theirs) == USERS * QUESTIONS and theirs == ours
        assert (tmp_path / "ray" / f"{safe_name(method)}_outputs.json").read_text() == \
            (tmp_path / "local" / f"{safe_name(method)}_outputs.json").read_text()
    # The prompt, and so the echoed reply, shows what bm25 retrieved: each question's own
    # records, read from the union its shard's store holds.
    rows = predictions(tmp_path / "ray", "bm25")
    assert all(row["profile_size"] == len(TOPICS) - 1 for row in rows.values())
    assert len({row["raw"] for row in rows.values()}) == len(rows)
    titles = {f"u{u}-{t}": f"{topic} story by writer{u}" for u in range(USERS) for t, topic in enumerate(TOPICS)}
    assert all(titles[row["retrieved"][0]] in row["raw"] for row in rows.values())
    saved = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert saved["config"]["executor"] == "ray"


def test_methods_that_read_across_users_give_the_local_answers(ray_cluster: Any, tmp_path: Path) -> None:
    # persona: users clustered and each group described from everyone's records; the rating
    # models: fitted on every user's ratings. Each shard's worker builds the whole store.
    data = write_headlines(tmp_path / "headlines")
    settings = {"task": "LaMP-4", "data": str(data), "methods": ("persona+bm25",), "backend": "echo",
                "embedder": "hashing", "n_resamples": 100}
    local = evaluate(EvalConfig(**settings, out=str(tmp_path / "local")), progress=None)
    ray = evaluate(EvalConfig(**settings, out=str(tmp_path / "ray"), executor="ray"), progress=None)
    assert [r.metrics for r in ray.results] == [r.metrics for r in local.results]
    ours, theirs = predictions(tmp_path / "local", "persona+bm25"), predictions(tmp_path / "ray", "persona+bm25")
    assert len(theirs) == USERS * QUESTIONS and theirs == ours
    assert len({row["raw"] for row in theirs.values()}) > 1
    ratings = write_rating_task(tmp_path / "ratings")
    methods = ("item-bias",)
    local = evaluate(EvalConfig(task="LaMP-3", data=str(ratings), methods=methods, backend="echo",
                                out=str(tmp_path / "local-ratings"), n_resamples=100), progress=None)
    ray = evaluate(EvalConfig(task="LaMP-3", data=str(ratings), methods=methods, backend="echo",
                              out=str(tmp_path / "ray-ratings"), n_resamples=100, executor="ray"), progress=None)
    assert [r.metrics for r in ray.results] == [r.metrics for r in local.results]
    assert predictions(tmp_path / "ray-ratings", "item-bias") == predictions(tmp_path / "local-ratings", "item-bias")


def test_calibrated_label_methods_give_the_local_answers(ray_cluster: Any, tmp_path: Path) -> None:
    data = write_rating_task(tmp_path / "data")
    methods = ("none", "bm25+prior", "profile-prior")
    local = evaluate(EvalConfig(task="LaMP-3", data=str(data), methods=methods, backend="echo",
                                out=str(tmp_path / "local"), n_resamples=100), progress=None)
    ray = evaluate(EvalConfig(task="LaMP-3", data=str(data), methods=methods, backend="echo",
                              out=str(tmp_path / "ray"), n_resamples=100, executor="ray"), progress=None)
    assert [r.metrics for r in ray.results] == [r.metrics for r in local.results]
    for method in methods:
        assert predictions(tmp_path / "ray", method) == predictions(tmp_path / "local", method)
    assert any("scores" in row for row in predictions(tmp_path / "ray", "bm25+prior").values())


def test_a_rerun_answers_only_the_examples_missing_from_the_checkpoint(ray_cluster: Any, tmp_path: Path) -> None:
    data = write_headlines(tmp_path / "data")
    config = EvalConfig(task="LaMP-4", data=str(data), backend="echo", methods=("bm25",), n_resamples=100)
    evaluate(replace(config, out=str(tmp_path / "local")), progress=None)
    out = tmp_path / "ray"
    # As if a run had been killed after saving user0's and user1's examples, mid-line.
    evaluate(replace(config, out=str(out), users=("user0", "user1")), progress=None)
    checkpoint = out / "predictions" / "bm25.jsonl"
    kept = checkpoint.read_text()
    checkpoint.write_text(kept + '{"id": "q2-0", "outp')
    (out / "results.json").unlink()
    marks = ShardFaults(str(tmp_path / "marks"))
    Path(marks.folder).mkdir()
    evaluate(replace(config, out=str(out), executor="ray"), progress=None,
             executor=RayExecutor(before_task=marks))
    assert sorted(user for shard in marks.shards() for user in shard) == ["user2", "user3", "user4"]
    lines = checkpoint.read_text().splitlines()
    assert "\n".join(lines[:2 * QUESTIONS]) + "\n" == kept  # the saved rows stay, each once
    assert len(lines) == USERS * QUESTIONS
    assert predictions(out, "bm25") == predictions(tmp_path / "local", "bm25")
    assert scores(out) == scores(tmp_path / "local")


def test_failed_shards_are_retried_then_named_after_the_others_are_saved(ray_cluster: Any, tmp_path: Path) -> None:
    data = write_headlines(tmp_path / "data")
    out = tmp_path / "out"
    config = EvalConfig(task="LaMP-4", data=str(data), backend="echo", methods=("bm25",), out=str(out),
                        n_resamples=100, executor="ray")
    faults = ShardFaults(str(tmp_path / "marks"), always=("user3",), raise_once=("user1",))
    Path(faults.folder).mkdir()
    with pytest.raises(ShardsFailedError, match=r"user3.*injected failure for user3") as failure:
        evaluate(config, progress=None, executor=RayExecutor(retries=1, before_task=faults))
    assert "user1" not in str(failure.value)
    attempts = faults.shards()
    assert sum(1 for users in attempts if "user3" in users) == 2  # the first attempt and one retry
    assert sum(1 for users in attempts if "user1" in users) == 2  # failed once, then answered
    saved = predictions(out, "bm25")
    assert {row_id.partition("-")[0] for row_id in saved} == {"q0", "q1", "q2", "q4"}
    # A rerun answers only user3's examples.
    marks = ShardFaults(str(tmp_path / "rerun"))
    Path(marks.folder).mkdir()
    report = evaluate(config, progress=None, executor=RayExecutor(before_task=marks))
    assert marks.shards() == [["user3"]] and report.n == USERS * QUESTIONS
    assert len(predictions(out, "bm25")) == USERS * QUESTIONS
