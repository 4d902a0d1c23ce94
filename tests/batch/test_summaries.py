"""``tailor summaries build``: the summaries the server would write, for a store's users,
here or one Ray task per user, with the echo backend (whose summary of a user quotes
their items, so every user's differs).

One local Ray (2 CPUs) serves the module; failures are injected by a hook that runs in the
worker before each task, keeping its marks in files (each attempt may run in another
process), as in tests/training/test_ray_executor.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.ray_fixtures import local_ray

from tailor.backends.echo import EchoBackend
from tailor.batch.summaries import BuildSummariesConfig, SummaryTask, build_summaries
from tailor.chat.summaries import SummaryWorker, summary_due
from tailor.cli.main import main
from tailor.prompting.summary import SUMMARY_KIND
from tailor.store import SQLiteProfileStore, SQLProfileStore, open_serving_store
from tailor.training.executors import RayExecutor
from tailor.types import GenerationRequest, GenerationResult, HistoryRecord, Profile

USERS = ("ana", "ben", "cal")
TENANT_USER = "acme\x1fdee"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    # The hooks below are defined here, in a module the workers cannot import: sent by value.
    yield from local_ray(__name__)


def fill(store: SQLProfileStore) -> None:
    """Three users with records, one of tenant acme, and one without any."""
    store.add_profiles([Profile(user, tuple(HistoryRecord(f"{user}-{i}", {"text": f"{user} writes about topic {i}"},
                                                          f"2024-01-0{i + 1}") for i in range(3)))
                        for user in (*USERS, TENANT_USER)])
    store.set_attributes("quiet", {})


def sqlite_store(path: Path) -> str:
    with SQLiteProfileStore(path) as store:
        fill(store)
    return str(path)


def postgres_store(url: str) -> str:
    with open_serving_store(url) as store:
        fill(store)
    return url


def stored(target: str) -> dict[str, Any]:
    """Every user's stored summaries: (key, value, profile version), and whether the server would queue them."""
    with open_serving_store(target) as store:
        return {user: ([(a.key, dict(a.value), a.profile_version) for a in store.list_artifacts(user)
                        if a.kind == SUMMARY_KIND], summary_due(store, user)[1])
                for user in store.list_users()}


def statuses(report: Any) -> dict[str, str]:
    return {f"{row.tenant}/{row.user_id}" if row.tenant else row.user_id: row.status for row in report.rows}


@dataclass(frozen=True)
class Faults:
    """Runs in the worker before each user's task: records the attempt; ``always``: raises every time."""

    folder: str
    always: tuple[str, ...] = ()

    def __call__(self, user_id: str) -> None:
        attempt = len(self.attempts(user_id)) + 1
        Path(self.folder, f"{user_id}.{attempt}").write_text(str(os.getpid()), encoding="utf-8")
        if user_id in self.always:
            raise RuntimeError(f"injected failure for {user_id}")

    def attempts(self, user_id: str) -> list[Path]:
        return sorted(Path(self.folder).glob(f"{user_id}.*"))

    def calls(self) -> list[str]:
        return sorted(path.name for path in Path(self.folder).iterdir())


def faults(tmp_path: Path, name: str, **options: Any) -> Faults:
    marks = Faults(str(tmp_path / name), **options)
    Path(marks.folder).mkdir()
    return marks


EXPECTED = {"ana": "written", "ben": "written", "cal": "written", "acme/dee": "written", "quiet": "no records"}


def test_local_writes_what_the_server_would_and_a_rerun_writes_nothing(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    target = sqlite_store(tmp_path / "store.db")
    assert main(["summaries", "build", "--store", target, "--backend", "echo", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["users"]
    assert {(r["tenant"], r["user_id"]): r["status"] for r in rows} == {
        (None, "ana"): "written", (None, "ben"): "written", (None, "cal"): "written", ("acme", "dee"): "written",
        (None, "quiet"): "no records"}
    ana = next(r for r in rows if r["user_id"] == "ana")
    assert "ana writes about topic 2" in ana["summary"]  # the echo backend quotes the user's items
    # The server's summary worker finds every summary current: it asks its model nothing.
    asked: list[GenerationRequest] = []

    def generate(request: GenerationRequest) -> GenerationResult:
        asked.append(request)
        return GenerationResult(text="")

    with SQLiteProfileStore(target) as store:
        worker = SummaryWorker(store, EchoBackend(), generate)
        try:
            assert worker.summary("ana") == ana["summary"]
            assert worker.flush(5.0) and asked == []
        finally:
            worker.close()
    assert all(not due for _, due in stored(target).values())
    # A rerun asks the model nothing; after ana's records change, only ana is written again.
    backend = EchoBackend()
    again = build_summaries(BuildSummariesConfig(store=target, backend="echo"), backend=backend, progress=None)
    assert set(statuses(again).values()) == {"up to date", "no records"} and backend.requests == []
    with SQLiteProfileStore(target) as store:
        store.add_records("ana", [HistoryRecord("ana-9", {"text": "ana now writes about gardens"}, "2024-02-01")])
    third = build_summaries(BuildSummariesConfig(store=target, backend="echo"), backend=backend, progress=None)
    [written] = [row for row in third.rows if row.status == "written"]
    assert written.user_id == "ana" and "gardens" in (written.summary or "") and len(backend.requests) == 1


def test_ray_writes_the_same_summaries_as_local_on_sqlite(ray_cluster: Any, tmp_path: Path) -> None:
    local, ray = sqlite_store(tmp_path / "local.db"), sqlite_store(tmp_path / "ray.db")
    here = build_summaries(BuildSummariesConfig(store=local, backend="echo"), progress=None)
    there = build_summaries(BuildSummariesConfig(store=ray, backend="echo", executor="ray"), progress=None)
    assert statuses(here) == statuses(there) == EXPECTED
    assert [row.summary for row in here.rows] == [row.summary for row in there.rows]
    assert stored(local) == stored(ray)
    # A rerun submits no task.
    marks = faults(tmp_path, "rerun")
    again = build_summaries(BuildSummariesConfig(store=ray, backend="echo"), progress=None,
                            executor=RayExecutor(before_task=marks))
    assert set(statuses(again).values()) == {"up to date", "no records"} and marks.calls() == []


def test_on_postgresql_ray_workers_store_the_same_summaries_as_local(
        ray_cluster: Any, tmp_path: Path, postgres_url: str, other_postgres_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    local, ray = postgres_store(postgres_url), postgres_store(other_postgres_url)
    assert main(["summaries", "build", "--store", local, "--backend", "echo", "--json"]) == 0
    here = json.loads(capsys.readouterr().out)["users"]
    assert main(["summaries", "build", "--store", ray, "--backend", "echo", "--executor", "ray", "--json"]) == 0
    there = json.loads(capsys.readouterr().out)["users"]
    assert here == there and {r["status"] for r in there} == {"written", "no records"}
    assert stored(local) == stored(ray)
    assert main(["summaries", "build", "--store", ray, "--backend", "echo", "--executor", "ray", "--json"]) == 0
    assert {r["status"] for r in json.loads(capsys.readouterr().out)["users"]} == {"up to date", "no records"}


def test_a_worker_stores_the_summary_where_the_driver_sees_it(ray_cluster: Any, postgres_url: str) -> None:
    target = postgres_store(postgres_url)
    [outcome] = list(RayExecutor(retries=0).run([SummaryTask("ben", "echo", store=target)]))
    assert outcome.error is None and isinstance(outcome.result, str)  # the text only: the worker stored it
    assert outcome.worker is not None and outcome.worker["pid"] != os.getpid()
    with open_serving_store(target) as store:
        summary, due = summary_due(store, "ben")
        assert summary == outcome.result and not due


def test_a_user_that_keeps_failing_is_named_and_the_others_are_written(ray_cluster: Any, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    target = sqlite_store(tmp_path / "store.db")
    marks = faults(tmp_path, "marks", always=("ben",))
    report = build_summaries(BuildSummariesConfig(store=target, backend="echo"), progress=None,
                             executor=RayExecutor(retries=1, before_task=marks))
    assert statuses(report) == {**EXPECTED, "ben": "failed"}
    [failed] = report.failed
    assert failed.user_id == "ben" and "injected failure for ben" in (failed.error or "")
    assert len(marks.attempts("ben")) == 2  # the first attempt and one retry
    assert {user: due for user, (_, due) in stored(target).items()} == {
        "ana": False, "ben": True, "cal": False, TENANT_USER: False, "quiet": False}
    # A rerun summarizes only ben.
    rerun = faults(tmp_path, "rerun")
    again = build_summaries(BuildSummariesConfig(store=target, backend="echo"), progress=None,
                            executor=RayExecutor(before_task=rerun))
    assert statuses(again)["ben"] == "written" and rerun.calls() == ["ben.1"]


def test_locally_a_failing_user_is_named_and_the_command_fails(tmp_path: Path) -> None:
    target = sqlite_store(tmp_path / "store.db")

    def script(request: GenerationRequest) -> str:
        prompt = request.messages[-1]["content"]
        if "ben writes" in prompt:
            raise RuntimeError("the model is down for ben")
        return prompt

    report = build_summaries(BuildSummariesConfig(store=target, backend="echo"), backend=EchoBackend(script),
                             progress=None)
    assert statuses(report) == {**EXPECTED, "ben": "failed"}
    assert report.failed[0].error == "RuntimeError: the model is down for ben"


def test_a_tenant_or_named_users_narrow_the_run_and_bad_settings_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = sqlite_store(tmp_path / "store.db")
    assert main(["summaries", "build", "--store", target, "--backend", "echo", "--tenant", "acme"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("acme/dee\twritten\t") and out.count("\n") == 1
    assert main(["summaries", "build", "--store", target, "--backend", "echo", "--users", "ana,cal", "--json"]) == 0
    assert [(r["user_id"], r["status"]) for r in json.loads(capsys.readouterr().out)["users"]] == [
        ("ana", "written"), ("cal", "written")]
    assert main(["summaries", "build", "--store", target, "--backend", "echo", "--tenant", "acme", "--users",
                 "ana"]) == 1
    assert "users not in tenant 'acme': ana" in capsys.readouterr().err
    for bad, message in ((["--executor", "spark"], "local, ray or ray:ADDRESS"),
                         (["--executor", "ray", "--backend", "ray:2:echo"], "name the inner backend alone"),
                         (["--tenant", "no spaces"], "tenant names")):
        assert main(["summaries", "build", "--store", target, "--backend", "echo", *bad]) == 1
        assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match="backend object"):
        build_summaries(BuildSummariesConfig(store=target, executor="ray"), backend=EchoBackend())
