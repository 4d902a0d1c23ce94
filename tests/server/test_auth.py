"""API keys, the open loopback mode, and tenant isolation on every route."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailor.backends.echo import EchoBackend
from tailor.cli.main import main
from tailor.server import ServeConfig, create_app
from tailor.server.app import OpenServerRefused
from tailor.server.keys import KeyStore
from tailor.store import open_store
from tailor.store.sqlite import SQLiteProfileStore

Ask = Callable[..., Any]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create_key(store: Path | str, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    assert main(["keys", "create", "--store", str(store), *flags, "--json"]) == 0
    return str(json.loads(capsys.readouterr().out)["key"])


def test_without_keys_the_server_refuses_a_public_address(tmp_path: Path) -> None:
    with pytest.raises(OpenServerRefused, match="tailor keys create"):
        create_app(ServeConfig(store=str(tmp_path / "s.db"), host="0.0.0.0", backend="echo"), backend=EchoBackend())


def test_without_keys_loopback_is_open_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tailor.server"):
        app = create_app(ServeConfig(store=str(tmp_path / "s.db"), host="::1", backend="echo"), backend=EchoBackend())
    assert "WITHOUT authentication" in caplog.text
    with TestClient(app) as client:
        assert client.get("/v1/models").status_code == 200


def test_with_a_public_address_and_a_key_the_server_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = create_key(tmp_path / "s.db", capsys, "--admin")
    app = create_app(ServeConfig(store=str(tmp_path / "s.db"), host="0.0.0.0", backend="echo"), backend=EchoBackend())
    with TestClient(app) as client:
        assert client.get("/v1/models").status_code == 401
        assert client.get("/v1/models", headers=bearer(key)).status_code == 200


def test_once_a_key_exists_every_request_needs_one(store_target: str, make_client: Callable[..., TestClient],
                                                   capsys: pytest.CaptureFixture[str], ask: Ask) -> None:
    client = make_client()
    assert client.get("/v1/models").status_code == 200  # open until a key exists
    key = create_key(store_target, capsys, "--admin")  # made by another process, while serving
    for headers in (None, {"Authorization": "Bearer nonsense"}, {"Authorization": key},
                    bearer(key[:-2] + ("AA" if not key.endswith("AA") else "BB"))):
        response = client.get("/v1/models", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
        assert response.headers["www-authenticate"] == "Bearer"
        assert ask(client, "hi", headers=headers).status_code == 401
        assert client.put("/v1/users/alice", headers=headers).status_code == 401
    assert client.get("/v1/models", headers=bearer(key)).status_code == 200

    key_id = key.split("-", 1)[1].split(".")[0]
    assert main(["keys", "revoke", key_id, "--store", store_target]) == 0
    capsys.readouterr()
    # The only key is revoked: the store holds no active key, so loopback is open again.
    assert client.get("/v1/models").status_code == 200


def test_keys_are_stored_hashed_and_listed_without_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = create_key(tmp_path / "s.db", capsys, "--tenant", "acme")
    secret = key.split(".", 1)[1]
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("s.db*"))
    assert secret.encode() not in raw
    assert main(["keys", "list", "--store", str(tmp_path / "s.db")]) == 0
    listing = capsys.readouterr().out
    assert "tenant=acme" in listing and secret not in listing
    assert main(["keys", "create", "--store", str(tmp_path / "s.db"), "--tenant", "bad name"]) == 1
    with SQLiteProfileStore(tmp_path / "s.db") as store:
        principal = KeyStore(store).verify(key)
    assert principal is not None and principal.tenant == "acme" and not principal.admin


# Every user route of the app, with the body it needs.
def _route_calls(memory_id: str) -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/v1/users/alice", None),
        ("DELETE", "/v1/users/alice", None),
        ("POST", "/v1/users/alice/records", {"records": [{"id": "z", "text": "injected"}]}),
        ("GET", "/v1/users/alice/export", None),
        ("GET", "/v1/users/alice/memories", None),
        ("POST", "/v1/users/alice/memories:flush", None),
        ("DELETE", f"/v1/users/alice/memories/{memory_id}", None),
        ("POST", "/v1/users/alice/feedback", {"messages": [{"role": "user", "content": "q"}], "chosen": "injected",
                                              "rejected": "other"}),
        ("GET", "/v1/users/alice/feedback", None),
        ("PUT", "/v1/users/alice", {"attributes": {"stolen": "yes"}}),  # last: it makes the caller's own alice
    ]


def test_a_tenant_key_never_reaches_another_tenants_users(store_target: str, make_client: Callable[..., TestClient],
                                                          capsys: pytest.CaptureFixture[str], ask: Ask) -> None:
    store = store_target
    acme, globex, admin = (create_key(store, capsys, "--tenant", "acme"), create_key(store, capsys, "--tenant", "globex"),
                           create_key(store, capsys, "--admin"))
    client = make_client()
    client.put("/v1/users/alice", json={"attributes": {"secret": "acme-only"}}, headers=bearer(acme))
    client.post("/v1/users/alice/records", json={"records": [{"id": "r", "text": "acme confidential roadmap"}]},
                headers=bearer(acme))
    ask(client, "I live in Lisbon", user="alice", headers=bearer(acme))
    client.post("/v1/users/alice/memories:flush", headers=bearer(acme))
    memory_id = client.get("/v1/users/alice/memories", headers=bearer(acme)).json()["data"][0]["id"]
    before = client.get("/v1/users/alice/export", headers=bearer(acme)).json()

    calls = _route_calls(memory_id)
    user_routes = {route.path for route in client.app.routes if "{user_id}" in getattr(route, "path", "")}
    assert {path.replace("alice", "{user_id}").replace(memory_id, "{memory_id}") for _, path, _ in calls} == user_routes

    # Another tenant: the user does not exist for them (PUT makes their own, separate alice).
    for method, path, body in calls:
        response = client.request(method, path, json=body, headers=bearer(globex))
        if method == "PUT":
            assert response.status_code == 200 and response.json()["created"] is True
            assert response.json()["attributes"] == {"stolen": "yes"}
        else:
            assert response.status_code == 404, (method, path)
            assert "acme" not in response.text and "Lisbon" not in response.text
    # ... and asking for acme's namespace explicitly is forbidden.
    for method, path, body in calls:
        response = client.request(method, path, json=body, headers={**bearer(globex), "X-Tailor-Tenant": "acme"})
        assert response.status_code == 403, (method, path)
    reply = ask(client, "roadmap Lisbon", user="alice", headers=bearer(globex)).json()
    assert "confidential" not in json.dumps(reply) and "Lisbon" not in reply["choices"][0]["message"]["content"][:-20]
    # An admin without a tenant sees the global namespace, where there is no alice.
    assert client.get("/v1/users/alice", headers=bearer(admin)).status_code == 404

    after = client.get("/v1/users/alice/export", headers=bearer(acme)).json()
    assert after["records"] == before["records"] and after["attributes"] == {"secret": "acme-only"}
    assert [m["id"] for m in after["memories"]] == [memory_id]
    acting = {**bearer(admin), "X-Tailor-Tenant": "acme"}
    assert client.get("/v1/users/alice", headers=acting).json()["attributes"] == {"secret": "acme-only"}
    assert client.get("/v1/users/alice", headers={**bearer(admin), "X-Tailor-Tenant": "no such!"}).status_code == 400
    with open_store(store) as raw:
        assert raw.list_users() == ["acme\x1falice", "globex\x1falice"]


def test_a_tenant_key_may_name_its_own_tenant(store_target: str, make_client: Callable[..., TestClient],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    acme = create_key(store_target, capsys, "--tenant", "acme")
    client = make_client()
    headers = {**bearer(acme), "X-Tailor-Tenant": "acme"}
    assert client.put("/v1/users/bob", headers=headers).status_code == 200
    assert client.get("/v1/users/bob", headers=bearer(acme)).status_code == 200


def test_the_serve_command_refuses_a_public_address_without_keys(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--store", str(tmp_path / "s.db"), "--backend", "echo", "--host", "0.0.0.0"]) == 1
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err
