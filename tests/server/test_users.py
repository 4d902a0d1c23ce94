"""The user data API: profiles, record batches, export, deletion, and memories over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailor.backends.echo import EchoBackend
from tailor.chat.personalizer import EPISODES_HEADER

Ask = Callable[..., Any]


def records(*texts: str, prefix: str = "r") -> dict[str, Any]:
    return {"records": [{"id": f"{prefix}{i}", "text": text} for i, text in enumerate(texts)]}


def test_put_creates_then_merges_attributes(client: TestClient) -> None:
    first = client.put("/v1/users/alice", json={"attributes": {"city": "Porto"}})
    assert first.status_code == 200
    assert first.json() == {"user_id": "alice", "created": True, "attributes": {"city": "Porto"}}
    second = client.put("/v1/users/alice", json={"attributes": {"job": "nurse"}}).json()
    assert second == {"user_id": "alice", "created": False, "attributes": {"city": "Porto", "job": "nurse"}}
    assert client.put("/v1/users/bob").status_code == 200  # no body: a user without attributes
    assert client.get("/v1/users/alice").json() == {"user_id": "alice", "attributes": {"city": "Porto", "job": "nurse"},
                                                    "records": 0, "memories": 0}


def test_record_batches_are_idempotent_by_id(client: TestClient) -> None:
    client.put("/v1/users/alice")
    first = client.post("/v1/users/alice/records", json=records("a", "b")).json()
    assert first == {"user_id": "alice", "added": 2, "records": 2}
    again = client.post("/v1/users/alice/records", json=records("a", "b changed", "c")).json()
    assert again == {"user_id": "alice", "added": 1, "records": 3}
    exported = client.get("/v1/users/alice/export").json()
    assert [r["text"] for r in exported["records"]] == ["a", "b changed", "c"]


def test_a_replaced_record_is_searched_by_its_new_text(client: TestClient, ask: Ask) -> None:
    client.put("/v1/users/alice")
    client.post("/v1/users/alice/records", json={"records": [{"id": "x", "text": "violin lessons"}]})
    client.post("/v1/users/alice/records", json={"records": [{"id": "x", "text": "sailing trips"}]})
    assert "sailing trips" in ask(client, "sailing", user="alice").json()["choices"][0]["message"]["content"]
    assert "violin lessons" not in ask(client, "violin", user="alice").json()["choices"][0]["message"]["content"]


def test_a_batch_with_one_bad_record_stores_nothing(client: TestClient) -> None:
    client.put("/v1/users/alice")
    bad = {"records": [{"id": "ok", "text": "fine"}, {"id": "bad", "text": 5}]}
    response = client.post("/v1/users/alice/records", json=bad)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "records[1].text"
    assert client.get("/v1/users/alice").json()["records"] == 0


def test_records_for_an_unknown_user_are_refused(client: TestClient) -> None:
    response = client.post("/v1/users/ghost/records", json=records("a"))
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_export_holds_records_attributes_memories_and_conversations(client: TestClient, ask: Ask) -> None:
    client.put("/v1/users/alice", json={"attributes": {"lang": "pt"}})
    client.post("/v1/users/alice/records", json={"records": [{"id": "1", "text": "hello", "date": "2024-05-01"}]})
    ask(client, "I live in Lisbon", user="alice")
    assert client.post("/v1/users/alice/memories:flush").json()["done"] is True
    exported = client.get("/v1/users/alice/export").json()
    assert exported["user_id"] == "alice"
    assert exported["attributes"] == {"lang": "pt"}
    assert exported["records"] == [{"id": "1", "text": "hello", "date": "2024-05-01"}]
    assert [m["value"] for m in exported["memories"]] == ["Lisbon"]
    assert exported["memories"][0]["history"][0]["event"] == "ADD"
    assert [m["role"] for m in exported["conversations"]] == ["user", "assistant"]
    assert exported["conversations"][0]["content"] == "I live in Lisbon"


def test_memories_are_extracted_off_the_request_and_superseded_not_lost(client: TestClient, ask: Ask) -> None:
    client.put("/v1/users/alice")
    ask(client, "I live in Porto and I like jazz", user="alice")
    client.post("/v1/users/alice/memories:flush")
    active = client.get("/v1/users/alice/memories").json()["data"]
    assert sorted(m["text"] for m in active) == ["user.city = Porto", "user.likes += jazz"]
    porto = next(m for m in active if m["value"] == "Porto")
    assert 0.5 <= porto["confidence"] <= 1.0  # the model's margin over the extractor's threshold
    assert porto["source_message_id"].startswith("msg_")

    ask(client, "I live in Lisbon now. I like jazz", user="alice")  # a move, and a repeat
    client.post("/v1/users/alice/memories:flush")
    active = client.get("/v1/users/alice/memories").json()["data"]
    assert sorted(m["text"] for m in active) == ["user.city = Lisbon", "user.likes += jazz"]
    everything = client.get("/v1/users/alice/memories?include_superseded=true").json()["data"]
    old = next(m for m in everything if m["value"] == "Porto")
    lisbon = next(m for m in everything if m["value"] == "Lisbon")
    assert old["superseded_by"] == lisbon["id"]
    assert [e["event"] for e in old["history"]] == ["ADD", "SUPERSEDED"]

    reply = ask(client, "where do I live? which city", user="alice").json()["choices"][0]["message"]["content"]
    assert "user.city = Lisbon" in reply
    facts = reply.split("[user]")[0].split("Facts")[-1].split(EPISODES_HEADER)[0]
    assert "Porto" not in facts  # a superseded fact is never shown (the dated message saying it may be)


def test_deleting_a_memory_removes_it_and_its_earlier_versions(client: TestClient, ask: Ask) -> None:
    client.put("/v1/users/alice")
    ask(client, "I live in Porto", user="alice")
    client.post("/v1/users/alice/memories:flush")
    ask(client, "I live in Lisbon", user="alice")
    client.post("/v1/users/alice/memories:flush")
    lisbon = client.get("/v1/users/alice/memories").json()["data"][0]
    response = client.delete(f"/v1/users/alice/memories/{lisbon['id']}")
    assert response.status_code == 200
    assert len(response.json()["deleted_ids"]) == 2
    assert client.get("/v1/users/alice/memories?include_superseded=true").json()["data"] == []
    assert client.delete(f"/v1/users/alice/memories/{lisbon['id']}").status_code == 404
    assert client.delete("/v1/users/alice/memories/not-an-id").status_code == 404


def test_memory_search_by_query(client: TestClient, ask: Ask) -> None:
    client.put("/v1/users/alice")
    ask(client, "I live in Lisbon. I like cycling. I like opera", user="alice")
    client.post("/v1/users/alice/memories:flush")
    found = client.get("/v1/users/alice/memories", params={"query": "opera tickets", "k": 1}).json()["data"]
    assert [m["value"] for m in found] == ["opera"]


def test_deleting_a_user_removes_everything_and_every_route_then_404s(client: TestClient, ask: Ask) -> None:
    client.put("/v1/users/alice", json={"attributes": {"a": "b"}})
    client.post("/v1/users/alice/records", json=records("hiking", "cooking"))
    ask(client, "I live in Lisbon", user="alice")
    client.post("/v1/users/alice/memories:flush")
    memory_id = client.get("/v1/users/alice/memories").json()["data"][0]["id"]
    assert client.delete("/v1/users/alice").json()["deleted"] is True

    for method, path in [("GET", "/v1/users/alice"), ("GET", "/v1/users/alice/export"),
                         ("DELETE", "/v1/users/alice"), ("POST", "/v1/users/alice/records"),
                         ("GET", "/v1/users/alice/memories"), ("POST", "/v1/users/alice/memories:flush"),
                         ("DELETE", f"/v1/users/alice/memories/{memory_id}")]:
        body = records("again") if path.endswith("/records") else None
        assert client.request(method, path, json=body).status_code == 404, (method, path)
    assert ask(client, "hiking", user="alice").headers["x-tailor-granularity"] == "global"

    store = client.app.state.service.store  # type: ignore[attr-defined]
    assert not store.has_user("alice")
    with store.transaction() as connection:
        for table in ("records", "attributes", "conversation_messages", "memories", "memory_history",
                      "serve_record_terms", "serve_record_index"):
            assert connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    assert store.tables_missing_cascade() == []


def test_deletion_calls_the_adapter_hook(make_client: Callable[..., TestClient]) -> None:
    class Adapters:
        def __init__(self) -> None:
            self.deleted: list[str] = []

        def metadata(self, user_id: str) -> dict[str, Any] | None:
            return {"lora": {"rank": 8}} if user_id not in self.deleted else None

        def delete(self, user_id: str) -> int:
            self.deleted.append(user_id)
            return 1

    from tailor.server import ServeConfig, create_app

    adapters = Adapters()
    app = create_app(ServeConfig(store=":memory:", backend="echo"), backend=EchoBackend(), adapters=adapters)
    with TestClient(app) as client:
        client.put("/v1/users/alice")
        assert client.get("/v1/users/alice/export").json()["adapters"] == {"lora": {"rank": 8}}
        assert client.delete("/v1/users/alice").json()["adapters_deleted"] == 1
        assert adapters.deleted == ["alice"]


def test_no_memory_mode_keeps_no_conversations(make_client: Callable[..., TestClient], ask: Ask) -> None:
    client = make_client(memory=False)
    client.put("/v1/users/alice")
    ask(client, "I live in Lisbon", user="alice")
    exported = client.get("/v1/users/alice/export").json()
    assert "conversations" not in exported and "memories" not in exported
    assert client.get("/v1/users/alice/memories").json()["data"] == []


def test_auto_create_users_keeps_a_first_time_users_chat(make_client: Callable[..., TestClient], ask: Ask) -> None:
    client = make_client(auto_create_users=True)
    ask(client, "I live in Lisbon", user="newcomer")
    client.post("/v1/users/newcomer/memories:flush")
    assert [m["value"] for m in client.get("/v1/users/newcomer/memories").json()["data"]] == ["Lisbon"]


def test_adapters_in_the_store_are_exported_and_deleted_with_the_user(client: TestClient) -> None:
    adapters = pytest.importorskip("tailor.adapters.store")
    client.put("/v1/users/alice")
    store = client.app.state.service.store  # type: ignore[attr-defined]
    adapter_store = adapters.AdapterStore(store)
    adapter_store.save(adapters.AdapterKey("user", "alice", "chat"), b"\x00" * 64, config={"rank": 4},
                       base_model={"name": "tiny"})
    exported = client.get("/v1/users/alice/export").json()
    assert [a["task"] for a in exported["adapters"]["adapters"]] == ["chat"]
    client.delete("/v1/users/alice")
    assert adapter_store.list(scope="user") == []
