"""Streaming benchmark: how soon a reply starts, streamed token by token vs sent whole.

    python benchmarks/stream.py [--requests 8] [--max-tokens 64] [--backend default]

It runs the server in-process (FastAPI's test client, no network) on the default model,
with one user holding a few records and the ``bm25`` method, and sends the same chat
requests twice: with ``stream: true`` (time to the first content chunk, and to the end)
and without (time to the whole reply). Requests run one at a time, as a local model
serves them.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from tailor.backends import load_backend
from tailor.machine import describe as describe_cpu
from tailor.server import ServeConfig, create_app

QUESTIONS = [
    "What should I cook tonight?", "Any ideas for the weekend?", "How do I keep my bees calm in summer?",
    "Suggest a short book for the train.", "How can I practise violin with little time?",
    "What should I plant on a sunny balcony?", "Write a two-line note to my neighbour about the honey.",
    "How do I start running again?", "What is a good gift for a ten-year-old?", "Plan a rainy Sunday.",
]
RECORDS = [
    {"id": "r1", "text": "I keep bees on my roof in Lisbon and sell the honey at the Saturday market."},
    {"id": "r2", "text": "My daughter started violin lessons this autumn; she is ten."},
    {"id": "r3", "text": "We grow tomatoes and basil on the balcony."},
    {"id": "r4", "text": "I commute by train for forty minutes and read on the way."},
]


def timed_stream(client: TestClient, body: dict[str, Any]) -> tuple[float, float, int, str]:
    """Seconds to the first content chunk and to the end, the chunk count, the text."""
    began = time.perf_counter()
    first, pieces = None, []
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[len("data: "):])
            piece = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
            if piece:
                first = first if first is not None else time.perf_counter() - began
                pieces.append(piece)
    return first or float("nan"), time.perf_counter() - began, len(pieces), "".join(pieces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--backend", default="default")
    args = parser.parse_args()

    backend = load_backend(args.backend)
    with tempfile.TemporaryDirectory() as folder:
        config = ServeConfig(store=str(Path(folder) / "store.db"), method="bm25", k=2, memory=False)
        with TestClient(create_app(config, backend=backend)) as client:
            client.put("/v1/users/ana", json={})
            client.post("/v1/users/ana/records", json={"records": RECORDS})
            bodies = [{"user": "ana", "max_tokens": args.max_tokens, "messages": [{"role": "user", "content": q}]}
                      for q in (QUESTIONS * (args.requests // len(QUESTIONS) + 1))[:args.requests]]
            client.post("/v1/chat/completions", json=bodies[0]).raise_for_status()  # warm-up
            firsts, ends, chunks, wholes, same = [], [], [], [], 0
            for body in bodies:
                first, end, count, text = timed_stream(client, body)
                began = time.perf_counter()
                response = client.post("/v1/chat/completions", json=body)
                response.raise_for_status()
                wholes.append(time.perf_counter() - began)
                firsts.append(first)
                ends.append(end)
                chunks.append(count)
                same += text == response.json()["choices"][0]["message"]["content"]

    def row(name: str, values: list[float]) -> str:
        array = np.asarray(values) * 1000
        return f"| {name} | {np.median(array):.0f} ms | {array.mean():.0f} ms | {array.max():.0f} ms |"

    print(f"\nbackend {args.backend}, {args.requests} requests, max_tokens {args.max_tokens}, method bm25 (k=2); "
          f"{describe_cpu()}, Python {platform.python_version()}\n")
    print("| measure | median | mean | max |\n| --- | --- | --- | --- |")
    print(row("streamed: first content chunk", firsts))
    print(row("streamed: last chunk", ends))
    print(row("not streamed: whole reply", wholes))
    print(f"\nchunks per streamed reply: median {int(np.median(chunks))}; streamed text equal to the whole "
          f"reply in {same}/{len(bodies)} requests")


if __name__ == "__main__":
    main()
