"""The server on the real default model: a personalized reply streamed token by token is
the same text as the reply sent whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("transformers")

from fastapi.testclient import TestClient

from tailor.server import ServeConfig, create_app

pytestmark = pytest.mark.model


def test_default_model_streams_the_same_personalized_reply(tmp_path: Path) -> None:
    from tailor.backends.hf import DefaultBackend

    backend = DefaultBackend(batch_size=1)
    config = ServeConfig(store=str(tmp_path / "store.db"), method="hybrid", k=2, memory=False)
    with TestClient(create_app(config, backend=backend)) as client:
        client.put("/v1/users/ana", json={"attributes": {"name": "Ana"}})
        records = [{"id": "r1", "text": "I keep bees on my roof in Lisbon and sell the honey at the market."},
                   {"id": "r2", "text": "My daughter started violin lessons this autumn."}]
        assert client.post("/v1/users/ana/records", json={"records": records}).status_code == 200
        body: dict[str, Any] = {"user": "ana", "max_tokens": 24,
                                "messages": [{"role": "user", "content": "What should I do with my honey?"}]}
        whole = client.post("/v1/chat/completions", json=body)
        assert whole.status_code == 200 and whole.headers["x-tailor-granularity"] == "user"
        text = whole.json()["choices"][0]["message"]["content"]
        assert text.strip()

        pieces = []
        with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as streamed:
            for line in streamed.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunk = json.loads(line[len("data: "):])
                    if chunk["choices"]:
                        pieces.append(chunk["choices"][0]["delta"].get("content") or "")
        content = [piece for piece in pieces if piece]
        assert len(content) > 3  # token by token, not one block
        assert "".join(pieces) == text
