"""A served user's message index as their conversation grows: the cost of one exchange.

    python benchmarks/live_index.py [--window 2000] [--exchanges 6000]

An :class:`~tailor.memory.episodes.EpisodeIndex` (the default episode method, as `tailor
serve` keeps one per user) holding a full window of ``--window`` messages, then
``--exchanges`` exchanges: two messages appended (the oldest two dropped) and one search
(k = 16), as a chat does. The messages are sentences of random words of a fixed
vocabulary, seeded. Prints the time of an exchange (update + search) in a Markdown table:
median, p99, p99.9 and the slowest, in-process, no server; then, with ``--gc-users N``
(default 20) such windows held at once, the objects Python's garbage collector tracks and
the time of one full collection (what a server holding that many long conversations
pauses for now and then).
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from collections.abc import Sequence

import numpy as np

from tailor.machine import describe as describe_cpu
from tailor.memory.episodes import Episode, EpisodeSearch


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=int, default=2000, help="messages held (the server's MAX_SEARCHED)")
    parser.add_argument("--exchanges", type=int, default=6000)
    parser.add_argument("--gc-users", type=int, default=20, help="windows held at once for the collection's time")
    args = parser.parse_args(argv)
    generator = np.random.default_rng(7)
    words = [f"w{i}" for i in range(3000)] + ["coffee", "garden", "train", "piano", "river", "summer"] * 50

    def messages(start: int, n: int) -> list[Episode]:
        return [Episode(f"m{start + i}", "user" if (start + i) % 2 == 0 else "assistant",
                        " ".join(generator.choice(words, size=int(generator.integers(6, 30)))),
                        session="2026-12-07", date="2026-12-07") for i in range(n)]

    index = EpisodeSearch().index(messages(0, args.window))
    queries = [" ".join(generator.choice(words, size=int(generator.integers(6, 16)))) for _ in range(500)]
    seconds = []
    for exchange in range(args.exchanges):
        new = messages(args.window + 2 * exchange, 2)
        began = time.perf_counter()
        index.append(new, limit=args.window)
        index.search(queries[exchange % len(queries)], 16)
        seconds.append(time.perf_counter() - began)
    ms = np.array(seconds) * 1000
    print(f"{describe_cpu()}, Python {platform.python_version()}; window {args.window:,} messages, "
          f"{args.exchanges:,} exchanges\n")
    print("| median | p99 | p99.9 | slowest |\n| --- | --- | --- | --- |")
    print(f"| {np.percentile(ms, 50):.2f} ms | {np.percentile(ms, 99):.2f} ms | {np.percentile(ms, 99.9):.2f} ms | "
          f"{ms.max():.2f} ms |")
    held = [EpisodeSearch().index(messages(10 ** 6 * (user + 1), args.window)) for user in range(args.gc_users)]
    gc.collect()
    began = time.perf_counter()
    gc.collect()
    pause = (time.perf_counter() - began) * 1000
    print(f"\n{len(held)} windows of {args.window:,} messages held: {len(gc.get_objects()):,} objects tracked by the "
          f"garbage collector, a full collection {pause:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
