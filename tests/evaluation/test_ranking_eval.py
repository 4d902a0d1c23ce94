"""``tailor eval`` on a ranking task: classic recommenders fitted on every user of the split
(whatever --limit evaluates), the model's methods alone and as rerankers, cold users apart,
and no prompt showing anything at or after the held-out interaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.recommenders.next_item_data import ROWS, TITLES, build

pytest.importorskip("implicit")

from tailor.backends.echo import EchoBackend
from tailor.cli.main import main
from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.personalizers.ranking import RERANK_TOP, RERANK_WEIGHT, mix
from tailor.types import GenerationRequest


def test_classic_recommenders_rank_every_example(tmp_path: Path) -> None:
    data = build(tmp_path)
    report = evaluate(EvalConfig(task="movielens-next", data=str(data), split="test",
                                 methods=("popular", "item-knn", "als", "bpr"), out=str(tmp_path / "run"),
                                 n_resamples=50), progress=None)
    assert [r.method for r in report.results] == ["popular", "item-knn", "als", "bpr"]
    for result in report.results:
        assert result.n == 5 and 0 <= result.metrics["ndcg@10"] <= 1 and result.engine is None
        assert result.cold is not None and result.cold["n"] == 5  # every history here is short
    saved = json.loads((tmp_path / "run" / "als_outputs.json").read_text())
    assert all(isinstance(row["output"], list) for row in saved["golds"])


def test_a_limit_evaluates_fewer_users_but_fits_on_all(tmp_path: Path) -> None:
    data = build(tmp_path)
    whole = evaluate(EvalConfig(task="movielens-next-full", data=str(data), split="test", methods=("popular",),
                                out=str(tmp_path / "whole"), n_resamples=20), progress=None)
    first = evaluate(EvalConfig(task="movielens-next-full", data=str(data), split="test", methods=("popular",),
                                limit=2, out=str(tmp_path / "first"), n_resamples=20), progress=None)
    read = lambda run: [json.loads(line)["output"] for line in (tmp_path / run / "predictions" / "popular.jsonl").open()]
    assert first.n == 2 and read("first") == read("whole")[:2]
    assert whole.n == 5


def test_model_methods_alone_and_as_rerankers_never_see_the_future(tmp_path: Path) -> None:
    data = build(tmp_path, negatives=5)
    seen: list[GenerationRequest] = []

    def reply(request: GenerationRequest) -> str:
        seen.append(request)
        return ""

    report = evaluate(EvalConfig(task="movielens-next", data=str(data), split="test",
                                 methods=("bm25", "als+bm25", "als+none"), out=str(tmp_path / "run"), n_resamples=20),
                      backend=EchoBackend(reply), progress=None)
    assert {r.method for r in report.results} == {"bm25", "als+bm25", "als+none"}
    als_top = json.loads((tmp_path / "run" / "predictions" / "als-bm25.jsonl").read_text().splitlines()[0])
    assert len(json.loads(als_top["output"])) == als_top["candidates"]  # every candidate ranked
    times: dict[tuple[str, str], int] = {}
    for user, item, time in ROWS:
        times.setdefault((user, item), time)
    last = {user: max(t for (u, _), t in times.items() if u == user) for user, _, _ in ROWS}
    golds = {row["id"]: row["output"] for row in json.loads((data / "test_outputs.json").read_text())["golds"]}
    for row in (json.loads(line) for line in (tmp_path / "run" / "predictions" / "bm25.jsonl").open()):
        user = row["id"].split("-")[0]
        assert all(times[(user, record.split("-")[1])] < times[(user, golds[row["id"]])] for record in row["retrieved"])
        assert last[user] >= times[(user, golds[row["id"]])]


def test_the_echo_model_ranks_by_what_the_prompt_shows(tmp_path: Path) -> None:
    data = build(tmp_path, negatives=5)
    report = evaluate(EvalConfig(task="movielens-next", data=str(data), split="test", methods=("bm25",),
                                 n_resamples=20), backend=EchoBackend(), progress=None)
    assert 0 <= report.results[0].metrics["mrr"] <= 1
    assert set(TITLES)  # the catalogue the titles come from


def test_a_reranker_keeps_both_stage_scores_of_its_head_and_the_first_stage_below(tmp_path: Path) -> None:
    data = build(tmp_path, negatives=5)
    evaluate(EvalConfig(task="movielens-next", data=str(data), split="test", methods=("als", "als+bm25", "als+none"),
                        out=str(tmp_path / "run"), n_resamples=20), backend=EchoBackend(), progress=None)
    read = lambda name: {row["id"]: row for row in map(json.loads, (tmp_path / "run" / "predictions" / name).open())}
    als, reranked, control = read("als.jsonl"), read("als-bm25.jsonl"), read("als-none.jsonl")
    for key, row in reranked.items():
        first, model = row["stages"]["first"], row["stages"]["model"]
        head = json.loads(row["output"])[:len(first)]
        assert len(first) == len(model) == min(RERANK_TOP, row["candidates"])
        # The head's order is the mix of the two stages' scores, best first.
        mixed = mix(first, model, RERANK_WEIGHT)
        assert mixed == sorted(mixed, reverse=True)
        assert sorted(head) == sorted(json.loads(als[key]["output"])[:len(first)])
        # Without anything of the user in the prompt every title's calibrated score is 0: als's order.
        assert json.loads(control[key]["output"]) == json.loads(als[key]["output"])
        assert set(control[key]["stages"]["model"]) == {0.0}


def test_the_report_shows_cold_users_and_draws_ndcg_by_history_length(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    data = build(tmp_path)
    evaluate(EvalConfig(task="movielens-next", data=str(data), split="test", methods=("popular", "als"),
                        out=str(tmp_path / "run"), n_resamples=20), progress=None)
    assert main(["report", str(tmp_path / "run"), "--versus", "als", "--figures", str(tmp_path / "figures")]) == 0
    printed = capsys.readouterr().out
    assert "Cold users (at most 20 history items)" in printed
    assert (tmp_path / "figures" / "movielens-next-by-history-length.png").stat().st_size > 0
