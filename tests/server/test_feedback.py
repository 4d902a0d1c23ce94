"""Feedback over HTTP: pairs, ratings and edits of served replies, kept per user (tenant
scoped), listed, exported, every bad input a 4xx naming its field, deleted with the user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.server.test_deletion import rows_of_every_table

PAIR = {"messages": [{"role": "user", "content": "What is rain?"}], "chosen": "Water from clouds.",
        "rejected": "A long story."}


def served(client: TestClient, ask: Callable[..., Any], user: str, text: str = "Tell me about rain") -> str:
    response = ask(client, text, user=user)
    assert response.status_code == 200
    return str(response.json()["id"])


@pytest.fixture
def ana(client: TestClient) -> TestClient:
    assert client.put("/v1/users/ana", json={}).status_code == 200
    return client


def test_a_rating_and_an_edit_of_a_served_reply_become_the_user_s_feedback(ana: TestClient, ask: Any) -> None:
    completion = served(ana, ask, "ana")
    reply = ana.get("/v1/users/ana/export").json()["served_replies"][0]
    assert reply["completion_id"] == completion
    assert reply["messages"] == [{"role": "user", "content": "Tell me about rain"}]
    liked = ana.post("/v1/users/ana/feedback", json={"completion_id": completion, "rating": 1}).json()
    assert (liked["kind"], liked["chosen"], liked["rejected"], liked["rating"]) == ("rating", reply["reply"], None, 1)
    edited = ana.post("/v1/users/ana/feedback", json={"completion_id": completion, "edited": "Rain is water."}).json()
    assert (edited["chosen"], edited["rejected"]) == ("Rain is water.", reply["reply"])
    assert edited["messages"] == reply["messages"]
    pair = ana.post("/v1/users/ana/feedback", json=PAIR).json()
    assert pair["kind"] == "pair" and pair["completion_id"] is None
    listed = ana.get("/v1/users/ana/feedback").json()["data"]
    assert [row["kind"] for row in listed] == ["rating", "edit", "pair"]
    assert ana.get("/v1/users/ana/export").json()["feedback"] == listed


@pytest.mark.parametrize(("body", "status", "param"), [
    ({}, 400, None),
    ([], 400, None),
    ({"foo": 1}, 400, None),
    ({"messages": [], "chosen": "a", "rejected": "b"}, 400, "messages"),
    ({"messages": [{"role": "system", "content": "x"}], "chosen": "a", "rejected": "b"}, 400, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}], "chosen": "a", "rejected": "b"}, 400, "messages[0].role"),
    ({"messages": [{"role": "user", "content": "x"}], "chosen": "a"}, 400, "rejected"),
    ({"messages": [{"role": "user", "content": "x"}], "chosen": " ", "rejected": "b"}, 400, "chosen"),
    ({"messages": [{"role": "user", "content": "x"}], "chosen": "a\u0000", "rejected": "b"}, 400, "chosen"),
    ({"messages": [{"role": "user", "content": "x"}], "chosen": 5, "rejected": "b"}, 400, "chosen"),
    ({**PAIR, "rating": 1}, 400, "rating"),
    ({**PAIR, "rejected": PAIR["chosen"]}, 409, "rejected"),
    ({"completion_id": "chatcmpl-0", "rating": 2}, 400, "rating"),
    ({"completion_id": "chatcmpl-0", "rating": True}, 400, "rating"),
    ({"completion_id": "chatcmpl-0", "rating": "1"}, 400, "rating"),
    ({"completion_id": "chatcmpl-0", "rating": 1, "edited": "x"}, 400, "edited"),
    ({"rating": 1}, 400, "completion_id"),
    ({"completion_id": "", "rating": 1}, 400, "completion_id"),
    ({"completion_id": "chatcmpl-0", "edited": ""}, 400, "edited"),
    ({"completion_id": "chatcmpl-unknown", "rating": 1}, 404, "completion_id"),
    ({"completion_id": "chatcmpl-unknown", "edited": "x"}, 404, "completion_id"),
])
def test_every_bad_input_is_a_4xx_naming_its_field(ana: TestClient, body: Any, status: int,
                                                   param: str | None) -> None:
    response = ana.post("/v1/users/ana/feedback", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["message"]
    assert ana.get("/v1/users/ana/feedback").json()["data"] == []


def test_malformed_bodies_and_unknown_users(ana: TestClient, ask: Any) -> None:
    assert ana.post("/v1/users/ana/feedback", content=b"{not json", headers={"content-type": "application/json"}
                    ).status_code == 400
    assert ana.post("/v1/users/ana/feedback", content=b"rating=1", headers={"content-type": "text/plain"}
                    ).status_code == 415
    assert ana.post("/v1/users/nobody/feedback", json=PAIR).status_code == 404
    assert ana.get("/v1/users/nobody/feedback").status_code == 404
    assert ana.post("/v1/users/bad%0Aid/feedback", json=PAIR).status_code == 400
    completion = served(ana, ask, "ana")
    edit = ana.post("/v1/users/ana/feedback", json={"completion_id": completion,
                                                    "edited": ana.get("/v1/users/ana/export").json()[
                                                        "served_replies"][0]["reply"]})
    assert edit.status_code == 409 and edit.json()["error"]["param"] == "edited"


def test_another_user_s_reply_is_not_found(ana: TestClient, ask: Any) -> None:
    ana.put("/v1/users/bob", json={})
    bobs = served(ana, ask, "bob")
    response = ana.post("/v1/users/ana/feedback", json={"completion_id": bobs, "rating": -1})
    assert response.status_code == 404 and response.json()["error"]["param"] == "completion_id"
    assert ana.post("/v1/users/bob/feedback", json={"completion_id": bobs, "rating": -1}).status_code == 200


def test_replies_to_no_user_or_an_unknown_one_are_not_kept(ana: TestClient, ask: Any) -> None:
    anonymous = ask(ana, "hello").json()["id"]
    ask(ana, "hello", user="stranger")
    assert ana.post("/v1/users/ana/feedback", json={"completion_id": anonymous, "rating": 1}).status_code == 404
    assert ana.get("/v1/users/ana/export").json()["served_replies"] == []


def test_feedback_is_scoped_to_the_tenant(make_client: Callable[..., TestClient], ask: Any) -> None:
    client = make_client()
    service = client.app.state.service  # type: ignore[attr-defined]
    acme = service.keys.create(tenant="acme")[1]
    globex = service.keys.create(tenant="globex")[1]
    as_acme, as_globex = ({"Authorization": f"Bearer {acme}"}, {"Authorization": f"Bearer {globex}"})
    client.put("/v1/users/ana", json={}, headers=as_acme)
    completion = ask(client, "hi", user="ana", headers=as_acme).json()["id"]
    assert client.post("/v1/users/ana/feedback", json={"completion_id": completion, "rating": 1},
                       headers=as_globex).status_code == 404
    client.put("/v1/users/ana", json={}, headers=as_globex)
    assert client.post("/v1/users/ana/feedback", json={"completion_id": completion, "rating": 1},
                       headers=as_globex).status_code == 404
    assert client.post("/v1/users/ana/feedback", json={"completion_id": completion, "rating": 1},
                       headers=as_acme).status_code == 200
    assert client.get("/v1/users/ana/feedback", headers=as_globex).json()["data"] == []


def test_deleting_the_user_deletes_their_feedback_and_replies(ana: TestClient, ask: Any) -> None:
    completion = served(ana, ask, "ana", "my zanzibar question")
    ana.post("/v1/users/ana/feedback", json={"completion_id": completion, "edited": "zanzibar edit"})
    ana.post("/v1/users/ana/feedback", json={**PAIR, "chosen": "zanzibar chosen"})
    store = ana.app.state.service.store  # type: ignore[attr-defined]
    assert any("zanzibar" in row for row in rows_of_every_table(store))
    assert ana.delete("/v1/users/ana").status_code == 200
    assert not any("zanzibar" in row or "'ana'" in row for row in rows_of_every_table(store))
    assert ana.get("/v1/users/ana/feedback").status_code == 404
