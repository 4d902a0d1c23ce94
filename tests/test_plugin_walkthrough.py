"""docs/architecture.md's walkthrough stays true: its plug-ins (a retrieval method, a task
with its own metric and file format, a backend, a store), installed as the doc writes them,
show up where each applies (``tailor eval``, ``tailor serve``, ``--help``, the same-prompt
test) without an edit to tailor."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.plugins import installed_plugin
from tests.server.conftest import make_client, store_target  # noqa: F401 (fixtures)
from tests.server.test_same_prompt import check_served_prompts_are_evals_prompts

from tailor.backends import BACKENDS
from tailor.cli.main import build_parser, main
from tailor.methods import METHODS
from tailor.registry import Registry
from tailor.retrieval import RETRIEVERS
from tailor.server import ServeConfig, create_app
from tailor.store import STORES, open_store
from tailor.tasks import TASKS

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
REGISTRIES: dict[str, Registry] = {"tailor.retrievers": RETRIEVERS, "tailor.tasks": TASKS,
                                   "tailor.backends": BACKENDS, "tailor.stores": STORES, "tailor.methods": METHODS}


def walkthrough() -> dict[str, tuple[str, dict[str, dict[str, str]]]]:
    """module -> (its code, its entry points), as docs/architecture.md writes them."""
    text = DOC.read_text(encoding="utf-8")
    plugins: dict[str, tuple[str, dict[str, dict[str, str]]]] = {}
    for code in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL):
        first = code.splitlines()[0]
        if first.startswith("# ") and first.endswith(".py"):
            plugins[first[2:-3]] = (code, {})
    for block in re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL):
        group = re.search(r'\[project\.entry-points\."([^"]+)"\]', block)
        assert group is not None, block
        for name, target in re.findall(r'^(\S+) = "([^"]+)"$', block, flags=re.MULTILINE):
            plugins[target.partition(":")[0]][1].setdefault(group.group(1), {})[name] = target
    return plugins


@pytest.fixture()
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    plugins = walkthrough()
    assert set(plugins) == {"tailor_example_retriever", "tailor_example_task", "tailor_example_backend",
                            "tailor_example_store"}
    monkeypatch.setenv("TAILOR_ARCHIVE", str(tmp_path))
    with ExitStack() as stack:
        for module, (code, entry_points) in plugins.items():
            assert entry_points, f"{module} has no registration in the doc"
            stack.enter_context(installed_plugin(tmp_path, pytest.MonkeyPatch(), module, code, entry_points,
                                                 [REGISTRIES[group] for group in entry_points]))
        yield {"tmp": tmp_path}
    for registry in REGISTRIES.values():
        registry.reload_plugins()


def write_captions(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"{user}-{n}", "user": user, "photo": f"{subject} at dusk", "caption": f"{subject} at dusk",
             "earlier": [f"{user} shot {subject} before", "a quiet street"]}
            for user, subject in (("ana", "a harbour"), ("bo", "a forest")) for n in range(3)]
    (folder / "dev.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return folder


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(argv) == 0, capsys.readouterr().err
    return dict(json.loads(capsys.readouterr().out))


def help_of(verb: str) -> str:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return str(subparsers.choices[verb].format_help())  # type: ignore[attr-defined]


def test_the_method_shows_in_eval_serve_help_and_the_same_prompt_test(
        installed: dict[str, Any], capsys: pytest.CaptureFixture[str], make_client: Any) -> None:  # noqa: F811 (the fixture)
    data = write_captions(installed["tmp"] / "captions")
    result = run_json(["eval", "--task", "captions", "--data", str(data), "--backend", "echo",
                       "--method", "none,latest,persona+latest:dialogue", "--embedder", "hashing", "--json"], capsys)
    assert [r["method"] for r in result["results"]] == ["none", "latest", "persona+latest:dialogue"]
    assert result["results"][1]["granularity"] == {"user": 6}
    assert "latest" in help_of("eval") and "latest" in help_of("serve")
    assert main(["methods"]) == 0
    assert re.search(r"^ +latest +the user's records in the order they were added, newest first$",
                     capsys.readouterr().out, flags=re.MULTILINE)
    check_served_prompts_are_evals_prompts("latest", make_client)


def test_the_task_shows_in_eval_score_and_help(installed: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    data = write_captions(installed["tmp"] / "captions")
    out = installed["tmp"] / "run"
    result = run_json(["eval", "--task", "captions", "--data", str(data), "--backend", "parrot",
                       "--method", "none,latest", "--out", str(out), "--json"], capsys)
    by_method = {r["method"]: r for r in result["results"]}
    # The parrot repeats the input's last line, "photo: <the caption>": never the caption exactly.
    assert by_method["none"]["metrics"]["exact-match"] == 0.0 and by_method["none"]["metrics"]["rouge-1"] > 0.5
    assert set(by_method["latest"]["ci95"]) == {"exact-match", "rouge-1"}
    assert "captions" in help_of("eval")
    golds = installed["tmp"] / "golds.json"
    rows = [json.loads(line) for line in (data / "dev.jsonl").read_text().splitlines()]
    TASKS.load("captions").write_predictions(golds, [(row["id"], row["caption"]) for row in rows])
    scored = run_json(["score", "--task", "captions", "--golds", str(golds), "--preds",
                       by_method["none"]["predictions_file"] if "predictions_file" in by_method["none"]
                       else str(out / "none_outputs.json"), "--json"], capsys)
    assert scored["metrics"]["exact-match"] == 0.0 and scored["n"] == 6


def test_the_backend_and_the_store_show_in_eval_serve_and_help(installed: dict[str, Any]) -> None:
    assert "parrot" in help_of("eval") and "parrot" in help_of("serve")
    assert "archive://" in help_of("serve")
    with open_store("archive://opened") as store:
        store.add_records("u", [])
    assert (installed["tmp"] / "opened.db").is_file()
    config = ServeConfig(store="archive://served", backend="parrot", method="latest", memory=False)
    with TestClient(create_app(config)) as client:
        assert client.put("/v1/users/ana", json={}).status_code == 200
        records = {"records": [{"id": "1", "text": "a harbour at dawn"}, {"id": "2", "text": "a forest"}]}
        assert client.post("/v1/users/ana/records", json=records).status_code == 200
        body = {"model": "m", "user": "ana", "messages": [{"role": "user", "content": "what to shoot next?"}]}
        reply = client.post("/v1/chat/completions", json=body)
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"] == "what to shoot next?"
    with open_store("archive://served") as store:
        assert [r.id for r in store.get_profile("ana").records] == ["1", "2"]
