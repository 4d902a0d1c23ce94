"""Deletion over HTTP reaches what was derived from the user (issue 12): after personas were
built from a user's records, ``DELETE /v1/users/{user_id}`` leaves nothing of them in any
table of the store (SQLite, and PostgreSQL), and another member's chat prompt no longer
holds their words.

The personas are built as ``tailor personas build`` builds them, on the server's own store,
with a scripted model that writes each description from its members' items word for word
(the worst case: a real model paraphrases, but may quote)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.server.conftest import scripted_reply

from tailor.backends.echo import EchoBackend
from tailor.embeddings import load_embedder
from tailor.personas.tenants import build_personas_for_tenant
from tailor.store import SQLiteProfileStore
from tailor.store.tenants import TENANT_SEPARATOR

GONE = "gone-user-7f3"
SECRET = "zanzibar quokka heliotrope"
GONE_TEXTS = [f"my {SECRET} diary", "I keep bees on the quokka roof", "heliotrope paint for the shed"]


def rows_of_every_table(store: Any) -> list[str]:
    """Every row of every table of the store (the server's and the store's own), as text."""
    listing = ("SELECT name FROM sqlite_master WHERE type = 'table'" if isinstance(store, SQLiteProfileStore) else
               "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
    with store.transaction() as connection:
        tables = [row[0] for row in connection.execute(listing)]
        rows = [f"{table}: {row!r}" for table in tables
                for row in connection.execute(f'SELECT * FROM "{table}"').fetchall()]
    assert {"personas", "persona_members", "records", "memories", "conversation_messages"} <= set(tables)
    return rows


def traces_of_the_deleted_user(rows: list[str]) -> list[str]:
    words = {word for text in GONE_TEXTS for word in text.split() if len(word) > 5}  # zanzibar, quokka, ...
    return [row for row in rows if GONE in row or any(word in row.lower() for word in words)]


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("tenant", [None, "acme"])
def test_deleting_a_user_over_http_leaves_nothing_of_them_in_any_table_or_prompt(
        tenant: str | None, store_kind: str, make_client: Callable[..., TestClient], ask: Callable[..., Any],
        request: pytest.FixtureRequest) -> None:
    store = {} if store_kind == "sqlite" else {"store": request.getfixturevalue("postgres_url")}
    client = make_client(method="persona+bm25", embedder="hashing", **store)
    headers = {"X-Tailor-Tenant": tenant} if tenant else {}
    service = client.app.state.service  # type: ignore[attr-defined]
    for user, texts in [(GONE, GONE_TEXTS), ("kept", ["I keep a garden diary", "paint for the garden shed"])]:
        assert client.put(f"/v1/users/{user}", json={"attributes": {"motto": texts[0]}}, headers=headers).status_code == 200
        body = {"records": [{"id": f"r{i}", "text": text} for i, text in enumerate(texts)]}
        assert client.post(f"/v1/users/{user}/records", json=body, headers=headers).status_code == 200
    # Conversations and memories of the user to delete (scripted extraction: "I live in X").
    assert ask(client, "I live in Zanzibar and I like quokka", user=GONE, headers=headers).status_code == 200
    assert client.post(f"/v1/users/{GONE}/memories:flush", headers=headers).json()["done"] is True

    # `tailor personas build --k 1`: both users in one persona, described from both.
    personas = build_personas_for_tenant(service.store, load_embedder("hashing"), EchoBackend(scripted_reply),
                                         tenant=tenant, k=1)
    assert len(personas) == 1 and "zanzibar" in personas[0].description.lower()
    # What kept's prompt would hold now, read without a chat: a reply to kept would be kept's
    # conversation, which the delete of another user rightly leaves alone (docs/serving.md).
    kept_id = f"{tenant}{TENANT_SEPARATOR}kept" if tenant else "kept"
    decided = service.users.personalizer.context(kept_id, "what about the garden shed").personalized
    assert "zanzibar" in " ".join(m["content"] for m in decided.messages).lower()  # the persona note held GONE's words
    assert traces_of_the_deleted_user(rows_of_every_table(service.store))  # the scan does see them

    assert client.delete(f"/v1/users/{GONE}", headers=headers).json()["deleted"] is True

    rows = rows_of_every_table(service.store)
    assert traces_of_the_deleted_user(rows) == []
    assert any("kept" in row for row in rows)  # the scan does see the other user
    after = ask(client, "what about the garden shed", user="kept", headers=headers)
    prompt = after.json()["choices"][0]["message"]["content"].lower()  # the scripted model echoes its prompt
    assert "garden" in prompt and after.headers["x-tailor-granularity"] == "user"
    assert not [word for word in ("zanzibar", "quokka", "heliotrope", GONE) if word in prompt]
    assert client.get(f"/v1/users/{GONE}", headers=headers).status_code == 404
