"""``tailor train-adapter`` and ``tailor eval --adapters``, in-process, on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailor.adapters.store import AdapterKey, open_adapter_store
from tailor.cli.main import main

from .conftest import write_lamp4

SMALL = ["--rank", "4", "--top-layers", "2", "--epochs", "1", "--max-items", "8"]


def train(data: Path, out: Path, model: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    return {"argv": ["train-adapter", "--task", "LaMP-4", "--data", str(data), "--split", "dev", "--out", str(out),
                     "--model", str(model), "--json", *SMALL, *extra]}


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_train_adapter_trains_global_then_users_and_resumes(tmp_path: Path, tiny_model_dir: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    data = write_lamp4(tmp_path / "data")
    out = tmp_path / "adapters"
    first = run_json(train(data, out, tiny_model_dir, "--users", "alice,bob")["argv"], capsys)
    assert [(a["key"], a["status"]) for a in first["adapters"]] == [
        ("global/all/LaMP-4/lora", "trained"), ("user/alice/LaMP-4/lora", "trained"),
        ("user/bob/LaMP-4/lora", "trained")]
    assert all(0 < a["bytes"] < 5_000_000 for a in first["adapters"])
    again = run_json(train(data, out, tiny_model_dir, "--users", "alice,bob")["argv"], capsys)
    assert {a["status"] for a in again["adapters"]} == {"up to date"}
    store = open_adapter_store(out)
    alice = store.info(AdapterKey("user", "alice", "LaMP-4"))
    global_ = store.info(AdapterKey.global_("LaMP-4"))
    assert alice is not None and global_ is not None
    assert alice.metadata["on_top_of"] == global_.digest
    assert alice.config["train"]["rank"] == 4 and alice.base_model["source"] == "tiny random llama for tests"


def test_eval_with_adapters_falls_back_and_records_the_granularity(tmp_path: Path, tiny_model_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = write_lamp4(tmp_path / "data", sizes={"carol": 4})
    out = tmp_path / "adapters"
    groups = tmp_path / "personas.json"
    groups.write_text(json.dumps({"writers": ["bob", "carol"]}))
    # carol's history is too short for an adapter of her own: she gets her persona's.
    rows = run_json(train(data, out, tiny_model_dir, "--users", "alice,carol", "--min-history", "6")["argv"],
                    capsys)["adapters"]
    assert ("user/carol/LaMP-4/lora", "too little history") in [(a["key"], a["status"]) for a in rows]
    rows = run_json(train(data, out, tiny_model_dir, "--scope", "persona", "--personas", str(groups),
                          "--min-history", "2")["argv"], capsys)["adapters"]
    assert ("persona/writers/LaMP-4/lora", "trained") in [(a["key"], a["status"]) for a in rows]
    # lora+bm25 is served by adapters trained on the bm25 prompt: the same stack, for that prompt.
    rows = run_json(train(data, out, tiny_model_dir, "--users", "alice,carol", "--min-history", "6",
                          "--method", "bm25")["argv"], capsys)["adapters"]
    assert ("user/alice/LaMP-4/lora/bm25:lamp:k=1", "trained") in [(a["key"], a["status"]) for a in rows]
    run_json(train(data, out, tiny_model_dir, "--scope", "persona", "--personas", str(groups), "--min-history", "2",
                   "--method", "bm25")["argv"], capsys)
    result = run_json(["eval", "--task", "LaMP-4", "--data", str(data), "--backend", f"transformers:{tiny_model_dir}",
                       "--method", "none,lora,lora+bm25", "--adapters", str(out), "--users", "alice,carol",
                       "--out", str(tmp_path / "run"), "--json"], capsys)
    assert result["n"] == 4
    by_method = {r["method"]: r for r in result["results"]}
    assert by_method["none"]["granularity"] == {"global": 4}
    assert by_method["lora"]["granularity"] == {"user": 2, "persona": 2}
    predictions = [json.loads(line) for line in (tmp_path / "run" / "predictions" / "lora.jsonl").open()]
    assert {p["id"]: p["notes"]["adapter"] for p in predictions} == {
        "alice-q0": "user", "alice-q1": "user", "carol-q0": "persona:writers", "carol-q1": "persona:writers"}


def test_user_embedding_trains_and_evaluates(tmp_path: Path, tiny_model_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data = write_lamp4(tmp_path / "data")
    out = tmp_path / "adapters"
    rows = run_json(train(data, out, tiny_model_dir, "--kind", "user-embedding", "--scope", "global",
                          "--embedder", "hashing", "--steps", "3")["argv"], capsys)["adapters"]
    assert rows[0]["key"] == "global/all/LaMP-4/soft-prompt" and rows[0]["status"] == "trained"
    result = run_json(["eval", "--task", "LaMP-4", "--data", str(data), "--backend", f"transformers:{tiny_model_dir}",
                       "--method", "user-embedding", "--adapters", str(out), "--limit", "2", "--json"], capsys)
    assert result["results"][0]["granularity"] == {"user": 2}


def test_adapter_methods_need_adapters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_lamp4(tmp_path / "data")
    code = main(["eval", "--task", "LaMP-4", "--data", str(data), "--backend", "echo", "--method", "lora"])
    assert code == 1 and "--adapters" in capsys.readouterr().err
    code = main(["eval", "--task", "LaMP-4", "--data", str(data), "--backend", "echo", "--method", "none",
                 "--users", "nobody"])
    assert code == 1 and "nobody" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # a usage error, said by the argument parser
        main(["eval", "--task", "LaMP-4", "--data", str(data), "--method", "lora:dialogue"])
    assert refused.value.code == 2 and "takes no layout" in capsys.readouterr().err


def test_users_restricts_any_evaluation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_lamp4(tmp_path / "data")
    result = run_json(["eval", "--task", "LaMP-4", "--data", str(data), "--backend", "echo", "--method", "none,bm25",
                       "--users", "bob", "--json"], capsys)
    assert result["n"] == 2


def test_training_targets_are_as_long_as_the_tasks_answers(tmp_path: Path, tiny_model_dir: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A target cut shorter than the task's answers would teach the adapter to stop early:
    by default the cut is the task's generation limit (at least 32 tokens)."""
    from tailor.tasks import get_task

    data = write_lamp4(tmp_path / "data")
    run_json(train(data, tmp_path / "default", tiny_model_dir, "--scope", "global")["argv"], capsys)
    stored = open_adapter_store(tmp_path / "default").info(AdapterKey.global_("LaMP-4"))
    assert stored is not None
    assert stored.config["train"]["max_output_tokens"] == max(32, get_task("LaMP-4").max_new_tokens)
    run_json(train(data, tmp_path / "short", tiny_model_dir, "--scope", "global", "--max-output-tokens", "8")["argv"],
             capsys)
    short = open_adapter_store(tmp_path / "short").info(AdapterKey.global_("LaMP-4"))
    assert short is not None and short.config["train"]["max_output_tokens"] == 8
