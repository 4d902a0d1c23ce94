"""Faults with real processes on PostgreSQL (echo backend), under load from several clients:

- one of two server processes killed with SIGKILL: the other keeps answering every request,
  and every write either of them acknowledged is in the database;
- the PostgreSQL server stopped and started again: requests during the outage fail cleanly
  (503 with Retry-After, never a 500 or a hang), succeed again after it without restarting
  the server process, and every acknowledged write is kept.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from tests.postgres_fixtures import ThrowawayPostgres, find_postgres_binaries
from tests.server.test_process import ServerProcess

pytestmark = pytest.mark.process


@dataclass
class Load:
    """Clients writing one record per request to ``user`` until stopped; what each got back."""

    urls: Callable[[int], list[str]]
    """The servers a client may use now (it tries them in turn until one answers)."""
    user: str = "loaded"
    acknowledged: set[str] = field(default_factory=set)
    statuses: list[tuple[float, int]] = field(default_factory=list)
    """(time, status) of every answer; a server that did not answer at all is not in it."""
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, number: int) -> None:
        counter = itertools.count()
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                record_id = f"{number}-{next(counter)}"
                for url in self.urls(number):
                    try:
                        reply = client.post(f"{url}/v1/users/{self.user}/records",
                                            json={"records": [{"id": record_id, "text": f"note {record_id}"}]})
                    except httpx.TransportError:
                        continue  # this server is gone: try the next
                    with self._lock:
                        self.statuses.append((time.monotonic(), reply.status_code))
                        if reply.status_code == 200:
                            self.acknowledged.add(record_id)
                    if reply.status_code == 503:
                        assert reply.headers.get("retry-after")
                        time.sleep(0.05)
                    break

    def run(self, clients: int, during: Callable[[], None]) -> None:
        with ThreadPoolExecutor(clients) as pool:
            futures = [pool.submit(self.client, number) for number in range(clients)]
            try:
                during()
            finally:
                self.stop.set()
            for future in futures:
                future.result()


def exported_ids(url: str, user: str) -> set[str]:
    reply = httpx.get(f"{url}/v1/users/{user}/export", timeout=30)
    assert reply.status_code == 200, reply.text
    return {record["id"] for record in reply.json()["records"]}


def test_killing_one_of_two_servers_under_load_loses_nothing_acknowledged(postgres_url: str) -> None:
    first = ServerProcess(postgres_url).start()  # type: ignore[arg-type]  # a URL, not a path
    second = ServerProcess(postgres_url).start()  # type: ignore[arg-type]
    try:
        assert httpx.put(f"{first.url}/v1/users/loaded", timeout=10).status_code == 200
        alive = [first.url, second.url]
        load = Load(urls=lambda number: alive[number % len(alive):] + alive[:number % len(alive)])
        killed_at: list[float] = []

        def kill_the_first() -> None:
            time.sleep(1.5)
            first.kill()  # SIGKILL, in the middle of its clients' requests
            killed_at.append(time.monotonic())
            time.sleep(1.5)

        load.run(6, kill_the_first)
        assert {status for _, status in load.statuses} == {200}  # every answer, from either, was a success
        assert sum(1 for at, _ in load.statuses if at > killed_at[0]) > 10  # the second kept answering
        assert load.acknowledged <= exported_ids(second.url, "loaded")
        assert httpx.get(f"{second.url}/v1/models", timeout=10).status_code == 200
    finally:
        first.stop()
        second.stop()


@pytest.fixture
def own_postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server of this test's own, to stop and start (the session's serves others)."""
    binaries = find_postgres_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL binaries")
    server = ThrowawayPostgres(binaries)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_a_postgres_restart_mid_load_is_503s_then_success_without_restarting_the_server(
        own_postgres: ThrowawayPostgres) -> None:
    server = ServerProcess(own_postgres.url).start()  # type: ignore[arg-type]
    try:
        assert httpx.put(f"{server.url}/v1/users/loaded", timeout=10).status_code == 200
        load = Load(urls=lambda number: [server.url])
        outage: list[float] = []

        def restart_postgres() -> None:
            time.sleep(1.0)
            outage.append(time.monotonic())
            own_postgres.halt()
            time.sleep(3.0)
            own_postgres.start()
            outage.append(time.monotonic())
            deadline = time.monotonic() + 30  # the pool reconnects with a backoff of a few seconds
            while time.monotonic() < deadline:
                time.sleep(0.5)
                if any(at > outage[1] and status == 200 for at, status in load.statuses):
                    break
            time.sleep(1.0)

        load.run(4, restart_postgres)
        statuses = {status for _, status in load.statuses}
        assert statuses <= {200, 503}, statuses  # never a 500
        assert any(status == 503 for _, status in load.statuses)  # the outage was seen, and said so
        assert any(at > outage[1] and status == 200 for at, status in load.statuses)  # and it recovered
        assert server.process is not None and server.process.poll() is None  # the same process
        assert load.acknowledged <= exported_ids(server.url, "loaded")
    finally:
        server.stop()
