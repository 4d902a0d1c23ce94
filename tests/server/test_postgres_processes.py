"""Two real `tailor serve` processes on one PostgreSQL database (echo backend) serve the same
users consistently: what one acknowledges, the other reads, searches and deletes at once;
and many clients spread over both lose nothing."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from tests.server.test_process import ServerProcess

pytestmark = pytest.mark.process


@pytest.fixture
def two_servers(postgres_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    first = ServerProcess(postgres_url).start()  # type: ignore[arg-type]  # a URL, not a path
    try:
        second = ServerProcess(postgres_url).start()  # type: ignore[arg-type]
    except BaseException:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


def chat(client: httpx.Client, user: str, content: str) -> Any:
    reply = client.post("/v1/chat/completions", json={
        "model": "echo", "user": user, "messages": [{"role": "user", "content": content}]})
    assert reply.status_code == 200, reply.text
    return reply.json()["choices"][0]["message"]["content"]


def test_two_processes_on_one_database_serve_the_same_users(two_servers: tuple[ServerProcess, ServerProcess]) -> None:
    one, two = two_servers
    with httpx.Client(base_url=one.url, timeout=20) as a, httpx.Client(base_url=two.url, timeout=20) as b:
        assert a.put("/v1/users/alice", json={"attributes": {"city": "Porto"}}).status_code == 200
        assert b.get("/v1/users/alice").json()["attributes"] == {"city": "Porto"}
        assert a.post("/v1/users/alice/records", json={"records": [
            {"id": "1", "text": "alice grows tomatoes on her balcony"},
            {"id": "2", "text": "alice rides a blue bicycle"}]}).json()["records"] == 2
        # B indexes A's records on its first search, and A's later writes on the next.
        assert "tomatoes" in chat(b, "alice", "what grows on the balcony? tomatoes")
        assert b.post("/v1/users/alice/records", json={"records": [
            {"id": "3", "text": "alice bakes sourdough bread"}]}).json()["records"] == 3
        assert "sourdough" in chat(a, "alice", "what does she bake? sourdough")
        assert "sourdough" in chat(b, "alice", "sourdough again")  # B's cached index moved on too
        exported = a.get("/v1/users/alice/export").json()
        assert [m["content"] for m in exported["conversations"] if m["role"] == "user"] == [
            "what grows on the balcony? tomatoes", "what does she bake? sourdough", "sourdough again"]
        assert b.delete("/v1/users/alice").json()["deleted"] is True
        assert a.get("/v1/users/alice").status_code == 404
        assert a.post("/v1/users/alice/records", json={"records": [{"id": "4", "text": "x"}]}).status_code == 404
        assert "balcony" not in chat(a, "alice", "tomatoes?")  # nothing of her is left to retrieve


def test_clients_spread_over_two_processes_lose_nothing(two_servers: tuple[ServerProcess, ServerProcess]) -> None:
    servers = two_servers
    clients, batches = 8, 10

    def client_work(number: int) -> list[int]:
        statuses = []
        with httpx.Client(timeout=30) as client:
            statuses.append(client.put(f"{servers[number % 2].url}/v1/users/shared").status_code)
            for batch in range(batches):
                server = servers[(number + batch) % 2]  # each client alternates between the processes
                records = [{"id": f"{number}-{batch}-{i}", "text": f"note {i} of client {number}"} for i in range(5)]
                statuses.append(client.post(f"{server.url}/v1/users/shared/records",
                                            json={"records": records}).status_code)
                statuses.append(client.post(f"{server.url}/v1/chat/completions", json={
                    "model": "echo", "user": "shared",
                    "messages": [{"role": "user", "content": f"note of client {number}"}]}).status_code)
        return statuses

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client_work, range(clients)))
    assert all(status == 200 for statuses in results for status in statuses), results
    for server in servers:
        exported = httpx.get(f"{server.url}/v1/users/shared/export", timeout=20).json()
        ids = [record["id"] for record in exported["records"]]
        assert len(ids) == len(set(ids)) == clients * batches * 5
        assert len(exported["conversations"]) == clients * batches * 2
