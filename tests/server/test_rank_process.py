"""``POST /v1/users/{id}/rank`` on the real ``tailor serve`` process: users and histories
sent over HTTP, then every user's candidates ranked in the order ``tailor eval`` gives for
the same user, method and candidates (a classic recommender, and the model reranking its
top items, and the model alone)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

pytest.importorskip("implicit")

from tests.recommenders.next_item_data import build
from tests.server.test_process import ServerProcess

from tailor.backends.echo import EchoBackend
from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.tasks import get_task

pytestmark = pytest.mark.process


@pytest.mark.parametrize("method", ["als", "bm25", "als+bm25"])
def test_the_served_order_is_evals(tmp_path: Path, method: str) -> None:
    data = build(tmp_path, negatives=5)
    examples = get_task("movielens-next").load(data, "test")
    evaluate(EvalConfig(task="movielens-next", data=str(data), split="test", methods=(method,),
                        out=str(tmp_path / "run"), n_resamples=20), backend=EchoBackend(), progress=None)
    lines = (tmp_path / "run" / "predictions" / f"{method.replace('+', '-')}.jsonl").read_text().splitlines()
    evaluated = {row["id"]: json.loads(row["output"]) for row in map(json.loads, lines)}
    server = ServerProcess(tmp_path / "store.db", "--rank-method", method).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for example in examples:
                assert client.put(f"/v1/users/{example.user_id}").status_code == 200
                records = [{"id": r.id, **({"date": r.date} if r.date else {}), **r.fields}
                           for r in example.profile.records]
                assert client.post(f"/v1/users/{example.user_id}/records", json={"records": records}).status_code == 200
            for example in examples:
                items = [{"id": c.id, "text": c.fields["text"], "title": c.fields["title"]} for c in example.candidates]
                answer = client.post(f"/v1/users/{example.user_id}/rank", json={"items": items})
                assert answer.status_code == 200, answer.text
                assert answer.json()["method"] == method
                assert [item["id"] for item in answer.json()["items"]] == evaluated[example.id], example.user_id
    finally:
        server.stop()
