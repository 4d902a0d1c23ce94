"""Chat completions: the OpenAI shape, personalization per user, streaming, the openai client."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailor.backends.echo import EchoBackend

Ask = Callable[..., Any]


def seed(client: TestClient, user: str = "alice") -> None:
    assert client.put(f"/v1/users/{user}", json={"attributes": {"name": user}}).status_code == 200
    records = [{"id": "r1", "text": "Hiking the Alps with my dog every summer"},
               {"id": "r2", "title": "Pasta", "text": "my grandmother's tomato sauce recipe"},
               {"id": "r3", "text": "Notes on learning the cello", "date": "2024-01-02"}]
    assert client.post(f"/v1/users/{user}/records", json={"records": records}).status_code == 200


def test_models_lists_the_served_model(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert body["data"][0]["id"] == "echo"
    assert body["data"][0]["object"] == "model"


def test_a_completion_has_the_openai_shape(client: TestClient, ask: Ask) -> None:
    response = ask(client, "hello there")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] == "echo"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "[user] hello there"
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert response.headers["x-tailor-granularity"] == "global"
    assert float(response.headers["x-tailor-personalize-ms"]) >= 0


def test_a_known_user_gets_matching_records_above_their_message(client: TestClient, ask: Ask) -> None:
    seed(client)
    response = ask(client, "any tips for hiking with a dog?", user="alice")
    reply = response.json()["choices"][0]["message"]["content"]
    assert response.headers["x-tailor-granularity"] == "user"
    assert reply.startswith("[system] ")
    # As tailor eval builds the prompt (LaMP's layout): the items, best first, then the input;
    # BM25 fills k (3) with the records that share no word, in the order they were added.
    last = reply.split("[user] ")[-1]
    assert last == ("Earlier items from this user:\n- Hiking the Alps with my dog every summer\n"
                    "- Pasta my grandmother's tomato sauce recipe\n- Notes on learning the cello\n\n"
                    "any tips for hiking with a dog?")


def test_the_clients_system_message_is_kept_first(client: TestClient) -> None:
    seed(client)
    messages = [{"role": "system", "content": "Answer in French."},
                {"role": "user", "content": "a sauce recipe please"}]
    body = client.post("/v1/chat/completions", json={"model": "m", "user": "alice", "messages": messages}).json()
    reply = body["choices"][0]["message"]["content"]
    assert reply.startswith("[system] Answer in French.")
    assert "tomato sauce" in reply
    assert reply.count("[system]") == 1


def test_unknown_or_missing_users_are_served_without_personalization(client: TestClient, ask: Ask) -> None:
    seed(client)
    for user in ("nobody", None):
        response = ask(client, "hiking with a dog", user=user)
        assert response.status_code == 200
        assert response.headers["x-tailor-granularity"] == "global"
        assert response.json()["choices"][0]["message"]["content"] == "[user] hiking with a dog"
    assert client.get("/v1/users/nobody").status_code == 404  # and nothing was kept about them


def test_recency_method_shows_the_latest_records(make_client: Callable[..., TestClient], ask: Ask) -> None:
    client = make_client(method="recency", k=1)
    seed(client)
    reply = ask(client, "unrelated words", user="alice").json()["choices"][0]["message"]["content"]
    assert "cello" in reply  # the only dated record counts as the latest
    assert "Alps" not in reply


def test_max_tokens_and_stop_are_honoured(make_client: Callable[..., TestClient], ask: Ask) -> None:
    client = make_client(backend=EchoBackend())  # echoes the user's message
    body = ask(client, "one two three four five", max_tokens=2).json()
    assert body["choices"][0]["message"]["content"] == "one two"
    assert body["choices"][0]["finish_reason"] == "length"
    body = ask(client, "one two. three four", stop=["."], temperature=0.7).json()
    assert body["choices"][0]["message"]["content"] == "one two"


def test_streaming_sends_chunks_then_done(client: TestClient, ask: Ask) -> None:
    response = ask(client, "stream me please", stream=True, stream_options={"include_usage": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: "):]) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "[user] stream me please"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    assert len({c["id"] for c in chunks}) == 1


def test_the_openai_client_works_unchanged_in_process(client: TestClient) -> None:
    openai = pytest.importorskip("openai")
    seed(client)
    api = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client)
    assert [model.id for model in api.models.list()] == ["echo"]
    completion = api.chat.completions.create(
        model="echo", user="alice", messages=[{"role": "user", "content": "learning the cello"}])
    assert "Notes on learning the cello" in (completion.choices[0].message.content or "")
    assert completion.usage is not None and completion.usage.total_tokens > 0
    stream = api.chat.completions.create(model="echo", stream=True,
                                         messages=[{"role": "user", "content": "streamed words"}])
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "[user] streamed words"


def test_persona_and_summary_personalize_a_user_without_matching_records(make_client: Callable[..., TestClient],
                                                                         ask: Ask) -> None:
    from tailor.types import Persona

    client = make_client(method="persona+summary+bm25")
    client.put("/v1/users/dana")
    store = client.app.state.service.store  # type: ignore[attr-defined]
    store.put_personas([Persona("hikers", "Outdoor people who like short, practical answers.")], {"dana": "hikers"})
    store.put_artifact("dana", "summary", "old", {"summary": "Writes long essays."}, 0)
    store.put_artifact("dana", "summary", "new", {"summary": "Writes tersely, in lists."}, 0)
    response = ask(client, "what should I pack?", user="dana")
    reply = response.json()["choices"][0]["message"]["content"]
    assert response.headers["x-tailor-granularity"] == "user"
    assert "Outdoor people who like short, practical answers." in reply
    assert ("Writes tersely, in lists." in reply) != ("Writes long essays." in reply)  # one summary, the newest


def test_bm25_fills_k_with_the_first_records_and_sees_them_change(client: TestClient, ask: Ask) -> None:
    seed(client)
    reply = ask(client, "hello", user="alice").json()["choices"][0]["message"]["content"]
    assert "- Hiking the Alps with my dog every summer\n- Pasta" in reply  # no word shared: profile order
    replaced = {"records": [{"id": "r1", "text": "Sailing the Aegean"}]}
    assert client.post("/v1/users/alice/records", json=replaced).status_code == 200
    reply = ask(client, "hello", user="alice").json()["choices"][0]["message"]["content"]
    assert "Sailing the Aegean" in reply and "Hiking" not in reply
