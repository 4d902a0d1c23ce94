"""``POST /v1/users/{id}/rank``: every bad input a 4xx, and the order ``tailor eval`` gives
for the same user, method and candidates."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("implicit")

from tests.recommenders.next_item_data import build

from tailor.backends.echo import EchoBackend
from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.store import ingest_examples
from tailor.tasks import get_task


@pytest.fixture
def ranked(make_client: Callable[..., Any]) -> Any:
    client = make_client(rank_method="popular")
    client.put("/v1/users/ana")
    client.post("/v1/users/ana/records", json={"records": [{"id": "r1", "item": "a", "text": "Alien"}]})
    return client


ITEMS = [{"id": "a", "text": "Alien"}, {"id": "b", "text": "Blade Runner", "title": "Blade Runner"}]


@pytest.mark.parametrize("body", [
    None, {}, {"items": []}, {"items": "a"}, {"items": [{"id": "a"}]}, {"items": [{"text": "x"}]},
    {"items": [{"id": "", "text": "x"}]}, {"items": [{"id": "a", "text": "   "}]},
    {"items": ITEMS, "top": 0},
    {"items": ITEMS, "top": "2"}, {"items": ITEMS, "top": True}, {"items": [{"id": "a", "text": "x\u0000"}]},
    {"items": [{"id": str(i), "text": "x"} for i in range(2001)]},
])
def test_every_bad_body_is_a_400(ranked: Any, body: Any) -> None:
    response = ranked.post("/v1/users/ana/rank", json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_an_unknown_user_is_a_404_and_a_bad_id_a_400(ranked: Any) -> None:
    assert ranked.post("/v1/users/nobody/rank", json={"items": ITEMS}).status_code == 404
    assert ranked.post("/v1/users/bad%20id/rank", json={"items": ITEMS}).status_code == 400
    assert ranked.post("/v1/users/ana/rank", content=b"{", headers={"content-type": "application/json"}).status_code == 400


def test_a_server_without_a_rank_method_has_no_rank_route(client: Any) -> None:
    assert client.post("/v1/users/ana/rank", json={"items": ITEMS}).status_code in (404, 405)


def test_the_answer_lists_every_candidate_once_best_first(ranked: Any) -> None:
    answer = ranked.post("/v1/users/ana/rank", json={"items": ITEMS, "top": 1}).json()
    assert answer["method"] == "popular" and answer["user_id"] == "ana"
    assert [item["rank"] for item in answer["items"]] == [1]
    twice = ranked.post("/v1/users/ana/rank", json={"items": [*ITEMS, {"id": "a", "text": "again"}]}).json()
    assert sorted(item["id"] for item in twice["items"]) == ["a", "b"]


@pytest.mark.parametrize("method", ["als", "item-knn", "bm25", "als+bm25"])
def test_rank_gives_the_order_eval_gives(tmp_path: Path, make_client: Callable[..., Any], method: str) -> None:
    data = build(tmp_path, negatives=5)
    task = get_task("movielens-next")
    examples = task.load(data, "test")
    evaluate(EvalConfig(task="movielens-next", data=str(data), split="test", methods=(method,),
                        out=str(tmp_path / "run"), n_resamples=20), backend=EchoBackend(), progress=None)
    rows = {json.loads(line)["id"]: json.loads(line) for line in
            (tmp_path / "run" / "predictions" / f"{method.replace('+', '-')}.jsonl").open()}
    client = make_client(rank_method=method, backend=EchoBackend())
    ingest_examples(client.app.state.service.store, examples)
    for example in examples:
        items = [{"id": c.id, "text": c.fields["text"], "title": c.fields["title"]} for c in example.candidates]
        answer = client.post(f"/v1/users/{example.user_id}/rank", json={"items": items})
        assert answer.status_code == 200, answer.text
        assert [item["id"] for item in answer.json()["items"]] == json.loads(rows[example.id]["output"])
