"""Per-user adapters on a multi-LoRA engine: the ``openai:URL`` backend sends each request with
its user's adapter as the ``model`` (user -> persona -> global -> the base model), checked on
what tailor's fake OpenAI server receives. Routing reads only the store's adapter rows, so the
weights here are placeholder bytes and no model is loaded."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tailor.adapters.export import adapter_name
from tailor.adapters.runtime import AdapterResolver
from tailor.adapters.store import AdapterKey, AdapterStore
from tailor.backends.openai import OpenAIBackend, OpenAIBackendError
from tailor.store import SQLiteProfileStore
from tailor.testing.fake_openai import FakeOpenAIServer
from tailor.types import GenerationRequest, HistoryRecord, Persona, Profile

pytest.importorskip("httpx")
TASK = "news-headlines"
BASE = "fake-model"
LORA = {"lora": {"rank": 4, "alpha": 8.0, "target_modules": ["q_proj"], "layers": None}}
IDENTITY = {"path": "/models/base", "fingerprint": "00112233445566aa"}
Engine = Callable[..., "tuple[FakeOpenAIServer, OpenAIBackend]"]


def save(adapters: AdapterStore, key: AdapterKey, weights: bytes, on_top_of: str | None = None) -> str:
    return adapters.save(key, weights, config=LORA, base_model=IDENTITY, metadata={"on_top_of": on_top_of}).digest


def fill(path: Path, *, with_global: bool = True) -> Path:
    """alice: her own adapter; bob: persona p1's; carol and dave: the global one (or none)."""
    with SQLiteProfileStore(path) as store:
        store.add_profiles([Profile(user, (HistoryRecord(f"{user}-1", {"text": f"{user} writes about rivers"}),))
                            for user in ("alice", "bob", "carol", "dave")])
        store.put_personas([Persona("p1", "river people")], {"bob": "p1"})
        adapters = AdapterStore(store)
        base = save(adapters, AdapterKey.global_(TASK), b"global weights") if with_global else None
        save(adapters, AdapterKey("user", "alice", TASK), b"alice weights", on_top_of=base)
        save(adapters, AdapterKey("persona", "p1", TASK), b"persona weights", on_top_of=base)
    return path


@pytest.fixture
def engine() -> Iterator[Callable[..., tuple[FakeOpenAIServer, OpenAIBackend]]]:
    """Starts a fake engine serving the base model and the given adapter names, and a backend to it."""
    opened: list[tuple[FakeOpenAIServer, OpenAIBackend]] = []

    def start(adapters: Iterable[str] = ()) -> tuple[FakeOpenAIServer, OpenAIBackend]:
        server = FakeOpenAIServer(lambda body: f"reply from {body['model']}", models=(BASE, *adapters)).start()
        opened.append((server, OpenAIBackend(server.url, model=BASE, backoff=0.001)))
        return opened[-1]

    yield start
    for server, backend in opened:
        backend.close()
        server.stop()


def ask(user_id: str | None, text: str | None = None) -> GenerationRequest:
    return GenerationRequest(({"role": "user", "content": text or f"a headline for {user_id}"},), max_new_tokens=8,
                             user_id=user_id)


def sent_models(server: FakeOpenAIServer) -> dict[str, str]:
    """The model each chat request named, by its message."""
    return {r.body["messages"][-1]["content"]: r.body["model"] for r in server.chat_requests}


def names(store: AdapterStore) -> dict[str | None, str]:
    """The model each user's requests should name: their adapter's exported name, else the base model."""
    resolver = AdapterResolver(store, TASK)
    choices = {user: resolver.resolve(user).choice for user in ("alice", "bob", "carol", "dave", None)}
    return {user: adapter_name(choice) if choice is not None else BASE for user, choice in choices.items()}


def test_each_request_carries_its_users_adapter_name(tmp_path: Path, engine: Engine) -> None:
    store = AdapterStore(SQLiteProfileStore(fill(tmp_path / "store.db")))
    expected = names(store)
    server, backend = engine(expected.values())
    view = backend.with_adapters(store, TASK)
    users = ["alice", "bob", "carol", "dave", None]
    results = view.generate([ask(user) for user in users])
    assert sent_models(server) == {f"a headline for {user}": expected[user] for user in users}
    assert [r.text for r in results] == [f"reply from {expected[user]}" for user in users]
    assert [r.label for r in view.last_resolutions] == ["user", "persona:p1", "global", "global", "global"]
    # One name per adapter, none of them the base model's, none holding a user id.
    assert len({expected["alice"], expected["bob"], expected["carol"]}) == 3
    assert expected["carol"] == expected["dave"] == expected[None] != BASE
    assert all(name.startswith("tailor-") and not any(u in name for u in ("alice", "bob", "carol", "dave"))
               for name in expected.values())
    # The user's id still goes as OpenAI's end-user field; the plain backend still sends the base model.
    assert {r.body.get("user") for r in server.chat_requests} == {"alice", "bob", "carol", "dave", None}
    backend.generate([ask("alice", "plain")])
    assert sent_models(server)["plain"] == BASE


def test_sglang_naming_sends_base_colon_adapter(tmp_path: Path, engine: Engine,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store = AdapterStore(SQLiteProfileStore(fill(tmp_path / "store.db")))
    expected = {user: name if name == BASE else f"{BASE}:{name}" for user, name in names(store).items()}
    server, _ = engine(expected.values())
    monkeypatch.setenv("TAILOR_OPENAI_LORA_MODEL", "base:name")
    backend = OpenAIBackend(server.url, model=BASE, backoff=0.001)
    try:
        assert backend.config.lora_model == "base:name"
        view = backend.with_adapters(store, TASK)
        view.generate([ask(user) for user in ("alice", "bob", "carol")])
        list(view.stream(ask("alice", "streamed")))
        backend.generate([ask("alice", "plain")])
    finally:
        backend.close()
    assert sent_models(server) == {"a headline for alice": expected["alice"], "a headline for bob": expected["bob"],
                                   "a headline for carol": expected["carol"], "streamed": expected["alice"],
                                   "plain": BASE}
    assert expected["alice"].startswith(f"{BASE}:tailor-")
    with pytest.raises(ValueError, match="TAILOR_OPENAI_LORA_MODEL.*SGLang"):
        OpenAIBackend(server.url, model=BASE, lora_model="sglang")


def test_without_a_global_adapter_a_user_with_none_gets_the_base_model(tmp_path: Path, engine: Engine) -> None:
    store = AdapterStore(SQLiteProfileStore(fill(tmp_path / "store.db", with_global=False)))
    server, backend = engine(names(store).values())
    backend.with_adapters(store, TASK).generate([ask(user) for user in ("alice", "bob", "carol", None)])
    sent = sent_models(server)
    assert sent["a headline for carol"] == sent["a headline for None"] == BASE
    assert BASE != sent["a headline for alice"] != sent["a headline for bob"] != BASE


def test_a_streamed_reply_and_a_scored_request_carry_the_adapter_name(tmp_path: Path, engine: Engine) -> None:
    store = AdapterStore(SQLiteProfileStore(fill(tmp_path / "store.db")))
    expected = names(store)
    server, backend = engine(expected.values())
    view = backend.with_adapters(store, TASK)
    pieces = list(view.stream(ask("alice", "streamed")))
    scored = GenerationRequest(({"role": "user", "content": "scored"},), candidates=("yes", "no"), user_id="bob")
    view.generate([scored])
    assert sent_models(server) == {"streamed": expected["alice"], "scored": expected["bob"]}
    assert "".join(pieces).strip() == f"reply from {expected['alice']}"


def test_an_adapter_the_engine_has_not_loaded_fails_saying_how_to_load_it(tmp_path: Path, engine: Engine) -> None:
    store = AdapterStore(SQLiteProfileStore(fill(tmp_path / "store.db")))
    _, backend = engine()  # the base model only
    with pytest.raises(OpenAIBackendError, match="HTTP 404.*user's adapter as tailor adapters export names it"):
        backend.with_adapters(store, TASK).generate([ask("alice")])


def test_the_server_routes_each_user_and_a_deleted_user_falls_back(tmp_path: Path, engine: Engine) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from tailor.server import ServeConfig, create_app

    path = fill(tmp_path / "store.db")
    with SQLiteProfileStore(path) as opened:
        expected = names(AdapterStore(opened))
    server, backend = engine(expected.values())

    def chat(client: TestClient, user: str | None, **options: Any) -> Any:
        body: dict[str, Any] = {"messages": [{"role": "user", "content": "Write a headline about the river."}],
                                "max_tokens": 8, **options}
        if user is not None:
            body["user"] = user
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        return response

    config = ServeConfig(store=str(path), backend="echo", method="none", memory=False)
    with TestClient(create_app(config, backend=backend)) as client:
        for user, adapter, granularity in [("alice", "user", "user"), ("bob", "persona:p1", "persona"),
                                           ("carol", "global", "global"), (None, "global", "global")]:
            response = chat(client, user)
            assert server.chat_requests[-1].body["model"] == expected[user]
            assert (response.headers["x-tailor-adapter"], response.headers["x-tailor-granularity"]) == (
                adapter, granularity)
        streamed = chat(client, "alice", stream=True)
        assert "data: [DONE]" in streamed.text and server.chat_requests[-1].body["model"] == expected["alice"]
        # Deleting alice deletes her adapter: she is served as is, on the global adapter.
        assert client.delete("/v1/users/alice").status_code == 200
        assert chat(client, "alice").headers["x-tailor-adapter"] == "global"
        assert server.chat_requests[-1].body["model"] == expected[None]
