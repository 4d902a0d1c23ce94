"""Episodic memory on the served path: what a user said earlier reaches the prompt, with
its date, beside the facts extracted from it (the issue's Maria scenario), and goes with the user."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tailor.backends.echo import EchoBackend
from tailor.chat.personalizer import EPISODES_HEADER
from tailor.types import GenerationRequest

MARIA = ["I'm Maria, I live in Lisbon and I work as a nurse",
         "I'm vegetarian, so please never suggest meat recipes",
         "My daughter Ana turns 7 next week; she loves dinosaurs",
         "Actually I moved to Porto last month"]
DINNER = "Suggest a dinner for tonight and a birthday gift idea"


def small_model_reply(request: GenerationRequest) -> str:
    """A short reply, as a small model gives (extraction only scores ``yes``/``no``)."""
    return "Noted, thank you."


def last_prompt(backend: EchoBackend) -> str:
    chat = [request for request in backend.requests if request.candidates is None]
    return chat[-1].messages[0]["content"]


def ask(client: TestClient, user: str, content: str) -> object:
    response = client.post("/v1/chat/completions", json={
        "model": "tailor", "user": user, "messages": [{"role": "user", "content": content}]})
    assert response.status_code == 200, response.text
    return response


def test_maria_dinner_request_is_served_with_the_vegetarian_turn(make_client: Callable[..., TestClient]) -> None:
    backend = EchoBackend(small_model_reply)
    client = make_client(backend=backend, auto_create_users=True)
    for message in MARIA:
        ask(client, "maria", message)
    assert client.post("/v1/users/maria/memories:flush").status_code == 200
    memories = [m["text"] for m in client.get("/v1/users/maria/memories").json()["data"]]
    assert "user.diet = vegetarian" in memories and "user.city = Porto" in memories  # Lisbon superseded

    response = ask(client, "maria", DINNER)
    assert response.headers["x-tailor-granularity"] == "user"  # type: ignore[attr-defined]
    chat = [request for request in backend.requests if request.candidates is None]
    system = chat[-1].messages[0]
    assert system["role"] == "system"
    assert EPISODES_HEADER in system["content"]
    line = next(line for line in system["content"].splitlines() if "vegetarian" in line)
    assert line.startswith("- On 20") and "the user said: I'm vegetarian, so please never suggest meat recipes" in line
    assert chat[-1].messages[-1]["content"] == DINNER


def test_first_message_of_a_new_user_has_nothing_to_recall(make_client: Callable[..., TestClient]) -> None:
    client = make_client(backend=EchoBackend(small_model_reply), auto_create_users=True)
    response = ask(client, "newcomer", "Hello there")
    assert response.headers["x-tailor-granularity"] == "global"  # type: ignore[attr-defined]


def test_episodes_are_exported_and_deleted_with_the_user(make_client: Callable[..., TestClient]) -> None:
    backend = EchoBackend(small_model_reply)
    client = make_client(backend=backend, auto_create_users=True)
    for message in MARIA:
        ask(client, "maria", message)
    ask(client, "ana", "I'm vegetarian too")
    exported = client.get("/v1/users/maria/export").json()
    said = [(message["role"], message["content"]) for message in exported["conversations"]]
    assert ("user", MARIA[1]) in said and ("assistant", "Noted, thank you.") in said
    assert all(message["created_at"] for message in exported["conversations"])

    assert client.delete("/v1/users/maria").status_code in (200, 204)
    ask(client, "maria", "Any vegetarian dinner idea?")  # re-created, empty
    backend.requests.clear()
    ask(client, "maria", "What about a vegetarian lunch?")
    system = last_prompt(backend)
    assert "never suggest meat" not in system  # the deleted user's turns are gone
    assert "I'm vegetarian too" not in system  # and another user's never come


def test_episode_budget_cuts_long_turns(make_client: Callable[..., TestClient]) -> None:
    backend = EchoBackend(small_model_reply)
    client = make_client(backend=backend, auto_create_users=True, episode_tokens=40)
    ask(client, "long", "I collect stamps " + "and rare stamps from Portugal " * 60)
    ask(client, "long", "Which stamps should I buy next?")
    system = last_prompt(backend)
    block = system.split(EPISODES_HEADER, 1)[1]
    assert "I collect stamps" in block and block.rstrip().endswith("...")
    assert len(block.split()) < 60
