"""Batching benchmark: concurrent chat replies on the default model, one at a time vs batched.

    python benchmarks/batching.py [--clients 4] [--requests 3] [--max-tokens 32] [--batches 1,4]

For each ``--max-batch`` value it runs the server in-process (FastAPI's test client) on
the default model and has ``--clients`` threads each send ``--requests`` chat requests
(non-streamed, distinct questions, no personalization) at the same time; it prints the
wall time, replies per second, latency, and how many replies equal the one-at-a-time
replies (greedy decoding; a batch pads prompts, which can change a token now and then).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from tailor.backends.hf import DefaultBackend
from tailor.machine import describe as describe_cpu
from tailor.server import ServeConfig, create_app
from tailor.types import GenerationRequest

TOPICS = ["bread", "bees", "violin", "running", "tomatoes", "trains", "rain", "chess", "maps", "tea", "kites",
          "owls", "glass", "salt", "clocks", "boats"]


def run(backend: DefaultBackend, max_batch: int, clients: int, requests: int, max_tokens: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        config = ServeConfig(store=str(Path(folder) / "store.db"), method="none", memory=False, max_batch=max_batch)
        app = create_app(config, backend=backend)
        answers: dict[str, str] = {}
        latencies: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(clients)

        def client(number: int) -> None:
            http = TestClient(app)
            barrier.wait()
            for i in range(requests):
                question = f"Tell me one fact about {TOPICS[(number * requests + i) % len(TOPICS)]}."
                began = time.perf_counter()
                response = http.post("/v1/chat/completions", json={
                    "max_tokens": max_tokens, "messages": [{"role": "user", "content": question}]})
                response.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - began)
                    answers[question] = response.json()["choices"][0]["message"]["content"]

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - began
        app.state.service.close()
    return {"max_batch": max_batch, "wall": wall, "latencies": latencies, "answers": answers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=3, help="requests per client")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--batches", default="1,4", help="max-batch values to compare (the first is the reference)")
    args = parser.parse_args()

    backend = DefaultBackend(batch_size=8)
    # Warm-up, so that the first timed run does not pay for torch's first calls.
    backend.generate([GenerationRequest(({"role": "user", "content": "Hello"},), max_new_tokens=8)] * 2)
    runs = [run(backend, int(value), args.clients, args.requests, args.max_tokens)
            for value in args.batches.split(",")]
    reference = runs[0]["answers"]
    total = args.clients * args.requests
    print(f"\ndefault model, {args.clients} clients x {args.requests} requests, max_tokens {args.max_tokens}; "
          f"{describe_cpu()}, Python {platform.python_version()}\n")
    print("| --max-batch | wall | replies/s | latency p50 | latency max | replies equal to max-batch "
          f"{runs[0]['max_batch']} |\n| --- | --- | --- | --- | --- | --- |")
    for result in runs:
        latency = np.asarray(result["latencies"])
        same = sum(result["answers"][q] == reference[q] for q in reference)
        print(f"| {result['max_batch']} | {result['wall']:.1f} s | {total / result['wall']:.2f} | "
              f"{np.median(latency):.1f} s | {latency.max():.1f} s | {same}/{total} |")


if __name__ == "__main__":
    main()
