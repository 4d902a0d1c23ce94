"""The loop a product runs, against the real ``tailor serve`` process and the official openai
client: chat, rate and edit the replies, ``tailor train-preference --since``, and the user's
next reply comes from their new adapter without a restart; deleting the user leaves nothing
of their feedback or their adapter in any table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

pytest.importorskip("trl")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from tests.server.test_process import ServerProcess

from tailor.cli.main import main
from tailor.store import SQLiteProfileStore
from tailor.training.preference import utc_time


@pytest.fixture
def server(tmp_path: Path, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    running = ServerProcess(tmp_path / "store.db", "--backend", f"transformers:{tiny_model_dir}", "--adapter-task",
                            "chat", "--no-memory").start()
    yield running
    running.stop()


def chat(api: object, text: str) -> tuple[str, dict[str, str]]:
    raw = api.chat.completions.with_raw_response.create(  # type: ignore[attr-defined]
        model="tailor", user="ana", max_tokens=8, messages=[{"role": "user", "content": text}])
    return raw.parse().id, {key.lower(): value for key, value in raw.headers.items()}


def test_feedback_trains_the_adapter_the_next_reply_is_served_with(server: ServerProcess, tiny_model_dir: Path,
                                                                    tmp_path: Path) -> None:
    http = httpx.Client(base_url=server.url)
    api = openai.OpenAI(base_url=f"{server.url}/v1", api_key="loopback-needs-no-key")
    assert http.put("/v1/users/ana", json={}).status_code == 200
    since = utc_time()
    first, headers = chat(api, "What is rain?")
    assert headers["x-tailor-granularity"] == "global" and "x-tailor-adapter" not in headers
    second, _ = chat(api, "What is snow?")
    feedback = [{"completion_id": first, "rating": -1},
                {"completion_id": second, "edited": "Snow is frozen rain."},
                {"messages": [{"role": "user", "content": "What is hail?"}], "chosen": "Ice from storms.",
                 "rejected": "A long story about weather and more weather."},
                {"messages": [{"role": "user", "content": "What is fog?"}], "chosen": "A low cloud.",
                 "rejected": "Fog is a thing that is a thing."}]
    for body in feedback:
        assert http.post("/v1/users/ana/feedback", json=body).status_code == 200
    out = StringIO()
    with redirect_stdout(out):
        assert main(["train-preference", "--store", str(server.store), "--since", since, "--model",
                     str(tiny_model_dir), "--min-pairs", "2", "--epochs", "1", "--batch-size", "2", "--json"]) == 0
    report = json.loads(out.getvalue())
    # the two pairs, and the edit unless the tiny random model's reply was empty (then no pair)
    [row] = report["adapters"]
    assert (row["key"], row["status"]) == ("user/ana/chat/lora/preference", "trained") and row["examples"] in (2, 3)
    _, headers = chat(api, "What is wind?")  # the same server process, never restarted
    assert headers["x-tailor-granularity"] == "user" and headers["x-tailor-adapter"] == "user"

    assert http.delete("/v1/users/ana").json()["deleted"] is True
    with SQLiteProfileStore(server.store) as store, store.transaction() as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [f"{table}: {row!r}" for table in tables for row in connection.execute(f'SELECT * FROM "{table}"')]
    assert {"feedback", "served_replies", "adapters"} <= set(tables)
    assert [row for row in rows if "ana" in row or "hail" in row or "Snow is frozen" in row] == []
