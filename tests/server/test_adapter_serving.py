"""Serving per-user adapters: each user's reply comes from their adapter, their persona's or
the global one, on one shared base model (a tiny random Llama here)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

pytest.importorskip("torch")
pytest.importorskip("peft")

from tailor.adapters.serving import AdapterSetupError
from tailor.adapters.store import AdapterKey, AdapterStore
from tailor.backends.echo import EchoBackend
from tailor.server import ServeConfig, create_app
from tailor.store import SQLiteProfileStore
from tailor.testing.adapters import random_adapter, save_adapter
from tailor.types import HistoryRecord, Persona, Profile

TASK = "news-headlines"
Ask = Callable[..., Any]


@pytest.fixture
def adapted_store(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A serving store holding alice (own adapter), bob (persona adapter), carol (none)."""
    path = tmp_path / "store.db"
    with SQLiteProfileStore(path) as store:
        store.add_profiles([Profile(user, (HistoryRecord(f"{user}-1", {"text": f"{user} writes about rivers"}),))
                            for user in ("alice", "bob", "carol")])
        store.put_personas([Persona("p1", "river people")], {"bob": "p1"})
        adapters = AdapterStore(store)
        base = save_adapter(adapters, AdapterKey.global_(TASK), random_adapter(tiny_model_dir, 0), tiny_model_dir)
        save_adapter(adapters, AdapterKey("user", "alice", TASK), random_adapter(tiny_model_dir, 1), tiny_model_dir,
                     on_top_of=base)
        save_adapter(adapters, AdapterKey("persona", "p1", TASK), random_adapter(tiny_model_dir, 2), tiny_model_dir,
                     on_top_of=base, contributors=["bob"])
    return path


@pytest.fixture
def tiny_backend(tiny_model_dir: Path) -> Any:
    from tailor.backends.hf import TransformersBackend

    return TransformersBackend(str(tiny_model_dir), batch_size=2)


def reply(client: TestClient, user: str | None, text: str = "Write a headline about the river.") -> Any:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text}], "max_tokens": 8}
    if user is not None:
        body["user"] = user
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response


def test_each_user_is_answered_with_their_own_adapter(adapted_store: Path, tiny_backend: Any) -> None:
    config = ServeConfig(store=str(adapted_store), backend="echo", method="none", memory=False)
    with TestClient(create_app(config, backend=tiny_backend)) as client:
        answers = {user: reply(client, user) for user in ("alice", "bob", "carol")}
        assert answers["alice"].headers["x-tailor-adapter"] == "user"
        assert answers["alice"].headers["x-tailor-granularity"] == "user"
        assert answers["bob"].headers["x-tailor-adapter"] == "persona:p1"
        assert answers["bob"].headers["x-tailor-granularity"] == "persona"
        assert answers["carol"].headers["x-tailor-adapter"] == "global"
        texts = {user: answer.json()["choices"][0]["message"]["content"] for user, answer in answers.items()}
        # What the base model says, with no adapter at all.
        from tailor.types import GenerationRequest

        (plain,) = tiny_backend.generate([GenerationRequest(
            ({"role": "user", "content": "Write a headline about the river."},), max_new_tokens=8)])
        assert len({texts["alice"], texts["bob"], texts["carol"], plain.text}) == 4
        # The same user twice gets the same reply: the adapter is selected, not reloaded at random.
        assert reply(client, "alice").json()["choices"][0]["message"]["content"] == texts["alice"]

        export = client.get("/v1/users/alice/export").json()
        assert [(a["scope"], a["task"]) for a in export["adapters"]["adapters"]] == [("user", TASK)]
        assert client.delete("/v1/users/alice").status_code == 200
        with SQLiteProfileStore(adapted_store) as store:
            assert AdapterStore(store).info(AdapterKey("user", "alice", TASK)) is None
        # Alice is unknown now: served as is, with the global adapter, as a request without a user.
        for anonymous in (reply(client, "alice"), reply(client, None)):
            assert anonymous.headers["x-tailor-adapter"] == "global"
            assert anonymous.headers["x-tailor-granularity"] == "global"


def test_adapter_setup_errors_are_clear(adapted_store: Path, tiny_backend: Any,
                                        caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(AdapterSetupError, match="no LoRA adapters for task 'LaMP-7'.*news-headlines"):
        create_app(ServeConfig(store=str(adapted_store), adapter_task="LaMP-7"), backend=tiny_backend)
    with pytest.raises(AdapterSetupError, match="cannot apply LoRA adapters"):
        create_app(ServeConfig(store=str(adapted_store), adapter_task=TASK), backend=EchoBackend())
    # Left to choose (auto), a backend without adapter support serves the base model, and says so.
    with caplog.at_level(logging.WARNING):
        app = create_app(ServeConfig(store=str(adapted_store)), backend=EchoBackend())
    assert "cannot apply LoRA adapters" in caplog.text
    with TestClient(app) as client:
        assert "x-tailor-adapter" not in reply(client, "alice").headers
    # adapter_task=None serves the base model even where adapters exist.
    with TestClient(create_app(ServeConfig(store=str(adapted_store), adapter_task=None),
                               backend=tiny_backend)) as client:
        assert "x-tailor-adapter" not in reply(client, "alice").headers
