"""Serving benchmark: personalization overhead per request, and requests/s, on loopback.

    python benchmarks/serve.py [--users 1000] [--records 1000] [--store PATH] [--requests 2000]
                               [--concurrency 32] [--seconds 20] [--method bm25] [--embedder hashing]

It fills a SQLite profile store with synthetic users (through the store's API directly,
then indexes them as the server's record API would), starts ``tailor serve`` with the
echo backend (generation costs ~0) on a free loopback port, and measures:

- overhead: the server's own timing headers for requests from one client, to users drawn
  at random: ``X-Tailor-Personalize-Ms`` (user lookup, BM25 over the user's records,
  memory search, prompt building) and ``X-Tailor-Overhead-Ms`` (everything in the
  handler except generation, storing the conversation included);
- cold: the first request for users whose records were written without the index
  (through the store's Python API, ``add_profiles``), which indexes them on the spot;
- throughput: requests/s with ``--concurrency`` clients for ``--seconds``.

``--method`` is passed to the server (``dense`` and ``hybrid`` search record vectors:
they are computed into the store once, before the server starts, as the record API
would have).

A populated store is reused when it already holds the requested users.

Load (issue 12), instead of the above when ``--clients`` is given:

    python benchmarks/serve.py --clients 32,64,128 --streams 200 [--users 200] [--records 100]
                               [--seconds 15] [--burst-chats 200] [--timeout 60]
                               [--store postgresql://... --processes 2]

- for each client count, that many clients ask personalized chats back to back for
  ``--seconds``: requests/s, client-side p50/p99, errors, rejected (429/503);
- then a burst: ``--streams`` streamed and ``--burst-chats`` plain chats sent at once,
  each with ``--timeout``, while ``/v1/models`` is asked every 100 ms (from a thread, 5 s
  timeout): every request must
  end with a whole reply or a 429/503 within its timeout, and ``/v1/models`` must answer
  throughout and after.

With ``--processes N`` (a PostgreSQL ``--store``; SQLite works too, its writes take turns)
N server processes serve one store, and each client sends every request to one of them
(client i to process i mod N); the burst goes to the first.

Long-lived users (a chat must not get slower as a user's conversation grows):

    python benchmarks/serve.py --history 0,100,1000,10000 [--history-users 16] [--long-exchanges 1000]

writes users with that many earlier exchanges (and a fact every fourth exchange) into a
fresh store, then gives personalization p50/p99 for one request after another of each, and
requests/s of ``--concurrency`` clients on ``--history-users`` users with
``--long-exchanges`` earlier exchanges against as many fresh users (``--seconds`` each, in
halves ordered fresh, long, long, fresh, so that other work on the machine weighs on both).

Clients are coroutines of this process (httpx), so they share the machine with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tailor.embeddings import embed_profiles, load_embedder
from tailor.machine import describe as describe_cpu
from tailor.methods import parse_serve_method
from tailor.retrieval.record_index import RecordIndex
from tailor.store import SQLProfileStore, open_store
from tailor.store.sqlite import SQLiteProfileStore
from tailor.types import HistoryRecord, Profile

VOCABULARY_SIZE = 30_000
STOP_WORDS = ["the", "a", "of", "and", "to", "in", "is", "it", "that", "for", "on", "with", "as", "was", "at", "by"]


def vocabulary(seed: int = 0) -> list[str]:
    generator = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < VOCABULARY_SIZE:
        words.add("".join(generator.choice(letters) for _ in range(generator.randint(3, 10))))
    return sorted(words)


def sentence(words: list[str], generator: np.random.Generator, length: int) -> str:
    # Zipf-distributed content words with stop words mixed in, as in real text.
    picks = np.minimum(generator.zipf(1.3, size=length), len(words)) - 1
    tokens = [words[i] if generator.random() > 0.3 else STOP_WORDS[i % len(STOP_WORDS)] for i in picks]
    return " ".join(tokens)


def populate(store: SQLProfileStore, users: int, records: int, *, index: bool, prefix: str = "user") -> float:
    words = vocabulary()
    generator = np.random.default_rng(0 if index else 1)
    record_index = RecordIndex(store, cache_size=0)
    began = time.perf_counter()
    chunk = 20
    for start in range(0, users, chunk):
        profiles = []
        for number in range(start, min(start + chunk, users)):
            items = tuple(HistoryRecord(f"r{i}", {"text": sentence(words, generator, int(generator.integers(15, 45)))},
                                        f"20{10 + i % 15}-01-01") for i in range(records))
            profiles.append(Profile(f"{prefix}{number}", items, {"plan": "free"}))
        store.add_profiles(profiles)
        if index:
            for profile in profiles:
                record_index.refresh(profile.user_id)
        done = min(start + chunk, users)
        if done % 100 == 0 or done == users:
            print(f"  {prefix}: {done}/{users} users ({time.perf_counter() - began:.0f} s)", file=sys.stderr)
    return time.perf_counter() - began


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(store: Path | str, port: int, method: str, embedder: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tailor.cli.main", "serve", "--store", str(store), "--backend", "echo",
               "--port", str(port), "--log-level", "warning", "--method", method, "--embedder", embedder]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def ask(client: httpx.Client, user: str, text: str) -> httpx.Response:
    body = {"model": "echo", "user": user, "messages": [{"role": "user", "content": text}], "max_tokens": 64}
    response = client.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    return response


def percentiles(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values)
    return float(np.percentile(array, 50)), float(np.percentile(array, 99))


async def load_round(bases: list[str], clients: int, seconds: float, users: int, queries: list[str],
                     timeout: float, prefix: str = "user") -> dict[str, float]:
    """``clients`` coroutines asking chats back to back for ``seconds``, client i of server i mod N."""
    latencies: list[float] = []
    counts = {"ok": 0, "rejected": 0, "errors": 0}
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def one_client(number: int) -> None:
            local = random.Random(number)
            base = bases[number % len(bases)]
            while time.monotonic() < stop_at:
                body = {"model": "echo", "user": f"{prefix}{local.randrange(users)}", "max_tokens": 64,
                        "messages": [{"role": "user", "content": queries[local.randrange(len(queries))]}]}
                began = time.perf_counter()
                try:
                    response = await client.post(f"{base}/v1/chat/completions", json=body)
                except httpx.HTTPError:
                    counts["errors"] += 1
                    continue
                if response.status_code == 200:
                    counts["ok"] += 1
                    latencies.append((time.perf_counter() - began) * 1000)
                elif response.status_code in (429, 503):
                    counts["rejected"] += 1
                    await asyncio.sleep(min(float(response.headers.get("retry-after", "1")), 1.0))
                else:
                    counts["errors"] += 1

        began = time.monotonic()
        await asyncio.gather(*(one_client(n) for n in range(clients)))
        elapsed = time.monotonic() - began
    p50, p99 = percentiles(latencies) if latencies else (float("nan"), float("nan"))
    return {"clients": clients, "ok": counts["ok"], "rejected": counts["rejected"], "errors": counts["errors"],
            "seconds": elapsed, "per_second": counts["ok"] / elapsed, "p50": p50, "p99": p99,
            "latencies": latencies}


async def burst(base: str, streams: int, chats: int, users: int, timeout: float) -> dict[str, object]:
    """``streams`` streamed and ``chats`` plain replies sent at once, ``/v1/models`` asked every
    100 ms meanwhile: how each request ended, and how ``/v1/models`` fared."""
    outcomes: dict[str, int] = {}
    slowest = [0.0]
    models: list[float] = []
    models_failed = [0]
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    words = " ".join(f"w{i}" for i in range(40))

    async def one(client: httpx.AsyncClient, index: int, stream: bool) -> None:
        body = {"model": "echo", "user": f"user{index % users}", "stream": stream, "max_tokens": 64,
                "messages": [{"role": "user", "content": words}]}
        kind = "stream" if stream else "chat"
        began = time.perf_counter()
        try:
            if stream:
                async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                    status, text = response.status_code, "".join([line async for line in response.aiter_lines()])
                whole = status == 200 and text.rstrip().endswith("data: [DONE]")
            else:
                response = await client.post("/v1/chat/completions", json=body)
                status = response.status_code
                whole = status == 200 and bool(json.loads(response.text)["choices"][0]["message"]["content"])
            outcome = f"{kind} 200" if whole else f"{kind} {status}" if status in (429, 503) else f"{kind} bad {status}"
        except httpx.TimeoutException:
            outcome = f"{kind} timed out"
        except httpx.HTTPError as error:
            outcome = f"{kind} error {type(error).__name__}"
        slowest[0] = max(slowest[0], time.perf_counter() - began)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    done = threading.Event()
    after: list[int] = []

    def poll_models() -> None:  # a thread of its own, so that the clients' event loop does not delay it
        with httpx.Client(base_url=base, timeout=5) as poller:
            while not done.is_set():
                began = time.perf_counter()
                try:
                    ok = poller.get("/v1/models").status_code == 200
                except httpx.HTTPError:
                    ok = False
                models.append(time.perf_counter() - began)
                models_failed[0] += not ok
                done.wait(0.1)
            after.append(poller.get("/v1/models").status_code)  # and once the burst is over

    polling = threading.Thread(target=poll_models)
    polling.start()
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as client:
        began = time.monotonic()
        await asyncio.gather(*(one(client, i, i < streams) for i in range(streams + chats)))
        elapsed = time.monotonic() - began
    done.set()
    polling.join()
    return {"outcomes": dict(sorted(outcomes.items())), "seconds": elapsed, "slowest_s": slowest[0],
            "models_asked": len(models), "models_failed": models_failed[0],
            "models_max_s": max(models) if models else float("nan"), "models_after": after[0]}


def run_load(args: argparse.Namespace) -> None:
    """The load sweep and the burst (``--clients``), on a store of ``--users`` x ``--records``."""
    users = args.users if args.users is not None else 200
    records = args.records if args.records is not None else 100
    default = Path(os.environ.get("TMPDIR", "/tmp")) / "tailor-bench" / f"serve-load-{users}x{records}.db"
    path: Path | str = default
    if args.store and "://" in args.store:
        path = args.store  # a postgresql:// URL
    elif args.store:
        path = Path(args.store)
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    opened = open_store(path)
    if not isinstance(opened, SQLProfileStore):
        raise SystemExit(f"--store {path}: the server needs a SQLite file or a postgresql:// URL")
    with opened as store:
        have = len(store.list_users())
        if have == 0:
            print(f"populating {path}: {users} users x {records} records", file=sys.stderr)
            populate(store, users, records, index=True)
        elif have < users:
            raise SystemExit(f"{path} holds {have} users, not {users}; remove it or pass another --store")
    words = vocabulary()
    generator = np.random.default_rng(42)
    queries = [sentence(words, generator, int(generator.integers(6, 16))) for _ in range(500)]
    servers, bases = [], []
    try:
        for _ in range(args.processes):
            port = free_port()
            servers.append(start_server(path, port, args.method, args.embedder))
            bases.append(f"http://127.0.0.1:{port}")
        rounds = [asyncio.run(load_round(bases, clients, args.seconds, users, queries, args.timeout))
                  for clients in (int(c) for c in args.clients.split(","))]
        chats = args.burst_chats if args.burst_chats is not None else args.streams
        bursts = asyncio.run(burst(bases[0], args.streams, chats, users, args.timeout)) if args.streams else None
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    where = repr(store) if not isinstance(path, Path) else str(path)
    print(f"\nstore: {where} ({users} users x {records} records); {args.processes} server process(es): tailor serve "
          f"--backend echo --method {args.method} (defaults: --max-queue 64, --max-batch 8, --threads 40); "
          f"{describe_cpu()}, Python {platform.python_version()}\n")
    print("| clients | replies | requests/s | client p50 | client p99 | errors | rejected (429/503) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rounds:
        print(f"| {r['clients']:.0f} | {r['ok']:.0f} | {r['per_second']:.0f} | {r['p50']:.0f} ms | {r['p99']:.0f} ms "
              f"| {r['errors']:.0f} | {r['rejected']:.0f} |")
    if bursts is not None:
        print(f"\nburst: {args.streams} streams + {chats} chats at once (timeout {args.timeout:g} s): "
              f"{json.dumps(bursts)}")


def pooled(results: list[dict[str, Any]]) -> dict[str, float]:
    """Rounds of :func:`load_round` as one: requests per second over their seconds together,
    and the percentiles of all their latencies."""
    latencies = [value for result in results for value in result["latencies"]]
    p50, p99 = percentiles(latencies) if latencies else (float("nan"), float("nan"))
    ok, seconds = sum(r["ok"] for r in results), sum(r["seconds"] for r in results)
    return {"ok": ok, "seconds": seconds, "per_second": ok / seconds, "p50": p50, "p99": p99}


def run_history(args: argparse.Namespace) -> None:
    """Long-lived users (``--history``): personalization p50/p99 for one user by the number of
    exchanges they had before, then requests/s with ``--concurrency`` clients on users with
    ``--long-exchanges`` earlier exchanges against fresh users."""
    from tailor.memory.facts import Fact
    from tailor.memory.store import MemoryStore

    counts = [int(n) for n in args.history.split(",")]
    words = vocabulary()
    generator = np.random.default_rng(7)
    path = Path(args.store) if args.store else (
        Path(os.environ.get("TMPDIR", "/tmp")) / "tailor-bench" / f"serve-history-{'-'.join(map(str, counts))}.db")
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    long_users, long_exchanges = args.history_users, args.long_exchanges
    began = time.perf_counter()
    with SQLiteProfileStore(path) as store:
        memory = MemoryStore(store)

        def chat_history(user: str, exchanges: int) -> None:
            # As a served chat leaves them: the exchange (already extracted) and, every
            # fourth exchange, a fact taken from it.
            store.set_attributes(user, {})
            store.add_records(user, [HistoryRecord(f"r{i}", {"text": sentence(words, generator, 25)})
                                     for i in range(20)])
            RecordIndex(store, cache_size=0).refresh(user)
            for number in range(exchanges):
                said = sentence(words, generator, int(generator.integers(6, 20)))
                memory.add_exchange(user, f"chatcmpl-{number}", said, sentence(words, generator, 30), extract=False)
                if number % 4 == 0:
                    memory.add_facts(user, [Fact(None, "", sentence(words, generator, 6), 0.9)])

        for count in counts:
            chat_history(f"hist{count}", count)
        for number in range(long_users):
            chat_history(f"long{number}", long_exchanges)
            chat_history(f"fresh{number}", 0)
    print(f"  histories written in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    queries = [sentence(words, generator, int(generator.integers(6, 16))) for _ in range(500)]
    port = free_port()
    server = start_server(path, port, args.method, args.embedder)
    rows = []
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            for count in counts:
                ask(client, f"hist{count}", queries[0])  # the first search reads the history once
            times: dict[int, list[float]] = {count: [] for count in counts}
            for i in range(args.requests):
                # Interleaved, so that every history length meets the server in the same state
                # (its heap, its write-ahead log, the other users it holds), not one after another.
                for count in counts:
                    reply = ask(client, f"hist{count}", queries[i % len(queries)])
                    times[count].append(float(reply.headers["x-tailor-personalize-ms"]))
            rows = [(count, *percentiles(times[count])) for count in counts]
        with httpx.Client(base_url=base, timeout=30) as client:
            for group in ("fresh", "long"):
                for n in range(long_users):
                    ask(client, f"{group}{n}", queries[0])
        # Each group's --seconds in two halves, in the order fresh, long, long, fresh: a change
        # in what else the machine runs during the measurement falls on both groups alike.
        rounds: dict[str, list[dict[str, Any]]] = {"fresh": [], "long": []}
        for group in ("fresh", "long", "long", "fresh"):
            rounds[group].append(asyncio.run(load_round([base], args.concurrency, args.seconds / 2, long_users,
                                                        queries, 60.0, prefix=group)))
        throughput = {group: pooled(results) for group, results in rounds.items()}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    print(f"\n{describe_cpu()}, Python {platform.python_version()}; tailor serve --backend echo "
          f"--method {args.method} --embedder {args.embedder} (memory on: facts and {args.requests} requests per "
          "user; every fourth earlier exchange left a fact)\n")
    print("| earlier exchanges of the user | personalization p50 (`X-Tailor-Personalize-Ms`) | p99 |")
    print("| --- | --- | --- |")
    for count, p50, p99 in rows:
        print(f"| {count:,} | {p50:.2f} ms | {p99:.2f} ms |")
    fresh, long = throughput["fresh"], throughput["long"]
    print(f"\n| users ({long_users}) | clients | requests/s | client p50 | client p99 |\n| --- | --- | --- | --- | --- |")
    for label, result in (("fresh", fresh), (f"{long_exchanges:,} earlier exchanges each", long)):
        print(f"| {label} | {args.concurrency} | {result['per_second']:.0f} | {result['p50']:.0f} ms | "
              f"{result['p99']:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=None, help="default 1000 (load mode: 200)")
    parser.add_argument("--records", type=int, default=None, help="default 1000 (load mode: 100)")
    parser.add_argument("--store", default=None, help="default: $TMPDIR/tailor-bench/serve-USERSxRECORDS.db")
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests for the overhead")
    parser.add_argument("--cold-users", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--method", default="bm25", help="the server's --method (default bm25)")
    parser.add_argument("--embedder", default="hashing", help="the server's --embedder (default hashing)")
    parser.add_argument("--clients", default=None, metavar="N,N,...",
                        help="load mode: a round of --seconds per client count (e.g. 32,64,128), then the burst")
    parser.add_argument("--streams", type=int, default=0, help="load mode: streams in the burst (0: no burst)")
    parser.add_argument("--burst-chats", type=int, default=None, help="load mode: plain chats in the burst "
                        "(default: as many as --streams)")
    parser.add_argument("--timeout", type=float, default=60.0, help="load mode: each request's timeout, s")
    parser.add_argument("--processes", type=int, default=1,
                        help="load mode: server processes on the one store (default 1)")
    parser.add_argument("--history", default=None, metavar="N,N,...",
                        help="long-lived users: personalization by the number of earlier exchanges (e.g. "
                        "0,100,1000,10000), then throughput on users with long histories against fresh ones")
    parser.add_argument("--history-users", type=int, default=16, help="history mode: users per throughput group")
    parser.add_argument("--long-exchanges", type=int, default=1000,
                        help="history mode: earlier exchanges of each long-history user (default 1000)")
    args = parser.parse_args()
    if args.history:
        args.requests = min(args.requests, 300)
        run_history(args)
        return
    if args.clients:
        run_load(args)
        return
    args.users = 1000 if args.users is None else args.users
    args.records = 1000 if args.records is None else args.records
    needs_vectors = parse_serve_method(args.method).needs("embedder")

    default = Path(os.environ.get("TMPDIR", "/tmp")) / "tailor-bench" / f"serve-{args.users}x{args.records}.db"
    path = Path(args.store) if args.store else default
    path.parent.mkdir(parents=True, exist_ok=True)
    with SQLiteProfileStore(path) as store:
        have = len(store.list_users())
        if have < args.users + args.cold_users:
            if have:
                raise SystemExit(f"{path} holds {have} users, not the {args.users} + {args.cold_users} asked; "
                                 "remove it or pass another --store")
            print(f"populating {path}: {args.users} users x {args.records} records", file=sys.stderr)
            seconds = populate(store, args.users, args.records, index=True)
            print(f"  ingested and indexed in {seconds:.0f} s", file=sys.stderr)
            populate(store, args.cold_users, args.records, index=False, prefix="cold")
        if needs_vectors:
            embedder = load_embedder(args.embedder)
            began = time.perf_counter()
            report = embed_profiles(store, embedder, [f"user{n}" for n in range(args.users)], batch_size=512)
            print(f"  record vectors: {report.embedded} computed, {report.already} held "
                  f"({time.perf_counter() - began:.0f} s)", file=sys.stderr)
        # A rerun must find the cold users cold again: drop what their first requests indexed.
        with store.transaction() as connection:
            for table in ("serve_record_terms", "serve_record_index", "record_embeddings", "serve_record_matrix"):
                connection.execute(f"DELETE FROM {table} WHERE user_id LIKE 'cold%'")
    size_mb = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6

    words = vocabulary()
    generator = np.random.default_rng(42)
    queries = [sentence(words, generator, int(generator.integers(6, 16))) for _ in range(args.requests + 100)]
    picker = random.Random(42)
    port = free_port()
    server = start_server(path, port, args.method, args.embedder)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            # Warm-up: imports, connection, and one request per user, so that every user's
            # index (and vectors) is compiled, as on a server that has been up for a while.
            for number in range(args.users):
                ask(client, f"user{number}", queries[number % 100])
            personalize, overhead, latency, granular = [], [], [], 0
            for query in queries[100:]:
                began = time.perf_counter()
                response = ask(client, f"user{picker.randrange(args.users)}", query)
                latency.append((time.perf_counter() - began) * 1000)
                personalize.append(float(response.headers["x-tailor-personalize-ms"]))
                overhead.append(float(response.headers["x-tailor-overhead-ms"]))
                granular += response.headers["x-tailor-granularity"] == "user"
            cold = [float(ask(client, f"cold{n}", queries[n]).headers["x-tailor-personalize-ms"])
                    for n in range(args.cold_users)]

        served, errors, loaded = [0], [0], []
        lock = threading.Lock()
        stop_at = time.monotonic() + args.seconds

        def worker(number: int) -> None:
            local = random.Random(number)
            with httpx.Client(base_url=base, timeout=30) as client:
                while time.monotonic() < stop_at:
                    try:
                        response = ask(client, f"user{local.randrange(args.users)}", queries[local.randrange(len(queries))])
                        with lock:
                            served[0] += 1
                            loaded.append(float(response.headers["x-tailor-overhead-ms"]))
                    except httpx.HTTPError:
                        with lock:
                            errors[0] += 1

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.concurrency)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)

    p50, p99 = percentiles(personalize)
    o50, o99 = percentiles(overhead)
    l50, l99 = percentiles(latency)
    c50, c99 = percentiles(cold)
    u50, u99 = percentiles(loaded) if loaded else (float("nan"), float("nan"))
    print(f"\nstore: {path} ({args.users} users x {args.records} records, {size_mb:.0f} MB); "
          f"{describe_cpu()}, Python {platform.python_version()}; "
          f"method {args.method}, embedder {args.embedder}; {granular}/{len(personalize)} requests personalized\n")
    print("| measure | p50 | p99 |")
    print("| --- | --- | --- |")
    print(f"| personalization overhead, server-side (`X-Tailor-Personalize-Ms`), 1 client | {p50:.2f} ms | {p99:.2f} ms |")
    print(f"| all non-generation work in the handler (`X-Tailor-Overhead-Ms`), 1 client | {o50:.2f} ms | {o99:.2f} ms |")
    print(f"| round trip seen by the client (echo backend), 1 client | {l50:.2f} ms | {l99:.2f} ms |")
    print(f"| first request of a user ingested without the index ({args.cold_users} users) | {c50:.1f} ms | {c99:.1f} ms |")
    print(f"| `X-Tailor-Overhead-Ms` under {args.concurrency} concurrent clients | {u50:.2f} ms | {u99:.2f} ms |")
    print(f"\n| clients | requests | errors | seconds | requests/s |\n| --- | --- | --- | --- | --- |\n"
          f"| {args.concurrency} | {served[0]} | {errors[0]} | {elapsed:.1f} | {served[0] / elapsed:.0f} |")


if __name__ == "__main__":
    main()
