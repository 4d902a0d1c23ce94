"""A RAG-aware adapter for next-item ranking: ``tailor train-adapter`` learns each user's
earlier choices as the task's question answered with the movie's title (never the held-out
movie), ``--max-items`` bounds the global adapter's pairs too, and ``als+lora+bm25``
reranks with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("implicit")

from tests.recommenders.next_item_data import TITLES, build

from tailor.adapters.store import AdapterKey, open_adapter_store
from tailor.cli.main import main
from tailor.tasks import get_task
from tailor.training.jobs import TrainAdapterConfig, training_data

SMALL = ["--rank", "4", "--top-layers", "2", "--epochs", "1"]


def test_pairs_are_earlier_choices_answered_with_their_titles(tmp_path: Path) -> None:
    data = build(tmp_path, negatives=5)
    task = get_task("movielens-next")
    golds = {e.user_id: e.gold for e in task.load(data, "test")}
    pairs = training_data(TrainAdapterConfig(task="movielens-next", data=str(data), out=str(tmp_path / "adapters"),
                                             split="test", scope="global", method="bm25"))
    assert pairs
    for user, user_pairs in pairs.items():
        for pair in user_pairs:
            assert pair.input == task.question and pair.output in TITLES.values()
            assert pair.output != TITLES[golds[user] or ""]


def test_a_global_ranking_adapter_serves_the_reranker(tmp_path: Path, tiny_model_dir: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    data = build(tmp_path, negatives=5)
    out = tmp_path / "adapters"
    assert main(["train-adapter", "--task", "movielens-next", "--data", str(data), "--split", "test", "--out", str(out),
                 "--scope", "global", "--method", "bm25", "--max-items", "2", "--model", str(tiny_model_dir), "--json",
                 *SMALL]) == 0
    trained = json.loads(capsys.readouterr().out)["adapters"]
    assert [(row["key"], row["status"]) for row in trained] == [("global/all/movielens-next/lora/bm25:lamp:k=4",
                                                                  "trained")]
    assert trained[0]["items"] <= 2 * 5  # at most --max-items per user, for the global adapter too
    store = open_adapter_store(out)
    assert store.info(AdapterKey.global_("movielens-next", prompt="bm25:lamp:k=4")) is not None
    store.profiles.close()
    assert main(["eval", "--task", "movielens-next", "--data", str(data), "--split", "test", "--method",
                 "als+lora+bm25", "--backend", f"transformers:{tiny_model_dir}", "--adapters", str(out),
                 "--out", str(tmp_path / "run"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["method"] == "als+lora+bm25" and result["adapter"]["prompt"] == "bm25:lamp:k=4"
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions" / "als-lora-bm25.jsonl").open()]
    assert {row["notes"]["adapter"] for row in rows} == {"global"}
