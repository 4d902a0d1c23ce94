"""``tailor serve``, ``tailor keys``, ``tailor personas`` and ``tailor summaries``: the server,
the API keys that guard it, the personas it falls back on and the summaries it writes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tailor.cli import choices
from tailor.cli.alignment import add_preference_worker_options, start_preference_worker
from tailor.logs import LOG_FORMATS


def add_serve_verbs(verbs: Any) -> None:
    """Add ``serve`` and ``keys`` to the ``tailor`` command's verbs."""
    serve = verbs.add_parser("serve", help="serve an OpenAI-compatible chat API personalized per user")
    serve.add_argument("--store", required=True,
                       help="the profile store: a SQLite file path (created if missing) or a URL (a postgresql:// "
                       f"database can be shared by several server processes). {choices.store_help()}")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; any other "
                       "needs an API key to exist)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--backend", default="default", help=choices.backend_help())
    serve.add_argument("--method", type=choices.serve_method, default="bm25", metavar="PART[+PART][:LAYOUT]",
                       help="how each reply is personalized, as tailor eval --method names it (default bm25; e.g. "
                       f"summary+hybrid). Served: {choices.method_help(served=True)}")
    serve.add_argument("--k", type=choices.positive, default=None,
                       help="records retrieved per request (default: the chat task's k, 3)")
    serve.add_argument("--selector", default=None, metavar="PATH",
                       help="--method auto: the selector that chooses each request's method (tailor train-selector)")
    serve.add_argument("--k-memories", type=choices.count, default=3, help="memories retrieved per request (default 3)")
    serve.add_argument("--k-episodes", type=choices.count, default=4,
                       help="the user's earlier messages recalled per request, dated (default 4; 0: none)")
    serve.add_argument("--episode-tokens", type=choices.count, default=256,
                       help="token budget of the recalled messages (default 256)")
    serve.add_argument("--memory-method", default="memory",
                       help="how earlier messages are searched, as in tailor eval-memory (default memory)")
    serve.add_argument("--no-memory", action="store_true", help="keep no conversations and extract no facts")
    serve.add_argument("--embedder", default="hashing",
                       help="embedder for memory search, dense/hybrid records and persona choice: hashing (fast) or "
                       "minilm, or 'none' (memories by BM25 alone)")
    serve.add_argument("--max-batch", type=choices.count, default=8, metavar="N",
                       help="replies waiting at the same time go to the model as one batch of up to N (default 8; "
                       "1: one at a time; streamed replies go alone)")
    serve.add_argument("--max-queue", type=choices.count, default=64, metavar="N",
                       help="replies that may wait for the model at once (default 64); one more is answered 429 "
                       "with Retry-After")
    serve.add_argument("--queue-timeout", type=float, default=120.0, metavar="SECONDS",
                       help="a reply that has waited this long for the model without starting is answered 503 "
                       "(default 120)")
    serve.add_argument("--body-timeout", type=float, default=30.0, metavar="SECONDS",
                       help="a client that has not sent its whole request body this long after its head is answered "
                       "408 and disconnected (default 30)")
    serve.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="a connection that has not sent a whole request head this long (after it opened or after "
                       "the previous response) is answered 408 and closed (default 10)")
    serve.add_argument("--threads", type=choices.count, default=40, metavar="N",
                       help="worker threads for request work (store reads and writes; default 40)")
    serve.add_argument("--adapter-task", default="auto", metavar="TASK",
                       help="answer with the LoRA adapters trained for TASK (tailor train-adapter) held in the store: "
                       "the user's, else their persona's, else the global one; 'auto' (default) takes the one task "
                       "the store has adapters for, 'none' serves the base model")
    serve.add_argument("--memory-backend", default=None, help="model for fact extraction (default: --backend)")
    serve.add_argument("--model", default=None, help="model id reported by /v1/models (default: the backend's)")
    serve.add_argument("--rank-method", type=choices.rank_method, default=None, metavar="METHOD",
                       help="serve POST /v1/users/{id}/rank with this ranking method (a recommender such as als, a "
                       "model method such as bm25, or a reranker such as als+bm25; default: no rank route)")
    serve.add_argument("--rank-task", default="movielens-next", help="the ranking task the rank route follows "
                       "(default movielens-next)")
    serve.add_argument("--auto-create-users", action="store_true",
                       help="create a user on their first chat (by default only users made with PUT are kept)")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                       help="the least severe log lines written (default info: one line per request)")
    add_preference_worker_options(serve)
    serve.add_argument("--log-format", default="text", choices=LOG_FORMATS,
                       help="text (key=value request lines) or json (one JSON object per line); request lines hold "
                       "method, route template, status, ms, tenant and key id, never user ids or text")

    personas = verbs.add_parser("personas", help="group a serving store's users into personas (per tenant)")
    persona_verbs = personas.add_subparsers(dest="personas_verb", metavar="ACTION")
    build = persona_verbs.add_parser("build", help="cluster one tenant's users by their records and describe each "
                                     "group with the model (replaces that tenant's personas)")
    build.add_argument("--store", required=True)
    build.add_argument("--tenant", default=None, help="whose users (default: the users outside any tenant)")
    build.add_argument("--k", type=choices.count, default=None, help="number of personas (default: chosen by silhouette)")
    build.add_argument("--backend", default="default", help="model that describes each persona")
    build.add_argument("--embedder", default="hashing", help="hashing or minilm: serve with the same one")
    choices.add_executor_options(
        build, where="where each persona's description is written: here (local, default), or one Ray task per "
        "persona on a local Ray, $RAY_ADDRESS or the cluster at ADDRESS (the clustering runs here)",
        unit="a persona", threads="the backend's threads (default: its own)")
    build.add_argument("--json", action="store_true")

    summaries = verbs.add_parser("summaries", help="write the profile summaries the server would write, ahead of "
                                 "its requests")
    summary_verbs = summaries.add_subparsers(dest="summaries_verb", metavar="ACTION")
    write = summary_verbs.add_parser("build", help="summarize every user of a serving store whose summary is "
                                     "missing or stale, as tailor serve does (a rerun skips current ones)")
    write.add_argument("--store", required=True, help="the serving store: a SQLite file or a URL (on a "
                       f"postgresql:// database Ray's workers store each summary themselves). {choices.store_help()}")
    write.add_argument("--tenant", default=None, help="only this tenant's users (default: every user)")
    write.add_argument("--users", default=None, metavar="ID,ID", help="only these users (ids as the API names them, "
                       "within --tenant)")
    write.add_argument("--backend", default="default", help="the model that writes the summaries: the server's "
                       f"--backend (default: default). {choices.backend_help()}")
    choices.add_executor_options(
        write, where="where the summaries are written: here (local, default), or one Ray task per user on a local "
        "Ray, $RAY_ADDRESS or the cluster at ADDRESS, each stored as it finishes", unit="a user",
        threads="the backend's threads (default: its own)")
    write.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    keys = verbs.add_parser("keys", help="create, list and revoke the server's API keys")
    key_verbs = keys.add_subparsers(dest="keys_verb", metavar="ACTION")
    create = key_verbs.add_parser("create", help="create a key and print it (once: only its hash is kept)")
    create.add_argument("--store", required=True)
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument("--tenant", help="a key that sees only this tenant's users")
    who.add_argument("--admin", action="store_true", help="a key that sees every user")
    create.add_argument("--json", action="store_true")
    listing = key_verbs.add_parser("list", help="list the keys (ids, tenants, never the keys)")
    listing.add_argument("--store", required=True)
    listing.add_argument("--json", action="store_true")
    revoke = key_verbs.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.add_argument("--store", required=True)


def run_serve(args: argparse.Namespace) -> int:
    from tailor.methods.auto import with_selector
    from tailor.server.config import ServeConfig
    from tailor.server.run import serve

    method = with_selector(args.method, args.selector) if args.selector else args.method
    config = ServeConfig(
        store=args.store, host=args.host, port=args.port, backend=args.backend, method=method, k=args.k,
        k_memories=args.k_memories, k_episodes=args.k_episodes, episode_tokens=args.episode_tokens,
        memory_method=args.memory_method, memory=not args.no_memory,
        embedder=None if args.embedder in ("none", "") else args.embedder, memory_backend=args.memory_backend,
        model=args.model, auto_create_users=args.auto_create_users,
        adapter_task=None if args.adapter_task in ("none", "") else args.adapter_task, max_batch=args.max_batch,
        max_queue=args.max_queue, queue_timeout=args.queue_timeout, worker_threads=args.threads,
        body_timeout=args.body_timeout, header_timeout=args.header_timeout,
        log_format=args.log_format, rank_method=args.rank_method, rank_task=args.rank_task)
    worker = start_preference_worker(args)
    try:
        serve(config, log_level=args.log_level)
    finally:
        if worker is not None:
            worker.stop()
    return 0


def run_personas(args: argparse.Namespace) -> int:
    from tailor.backends import load_backend_on
    from tailor.batch.personas import PersonasFailedError, RayDescriber
    from tailor.embeddings import load_embedder
    from tailor.personas.tenants import build_personas_for_tenant
    from tailor.store import open_serving_store
    from tailor.store.tenants import TENANT_SEPARATOR, check_tenant
    from tailor.training.executors import RayExecutor, parse_executor, ray_backend_refusal

    if args.personas_verb is None:
        print("tailor personas: choose an action: build", file=sys.stderr)
        return 2
    tenant = check_tenant(args.tenant) if args.tenant is not None else None
    if args.k is not None and args.k < 1:
        raise ValueError(f"--k must be at least 1, got {args.k}")
    executor = parse_executor(args.executor)
    refusal = ray_backend_refusal(args.backend) if executor.kind == "ray" else None
    if refusal:
        raise ValueError(refusal)
    embedder = load_embedder(args.embedder)
    ray = RayExecutor(executor.address, retries=args.retries, cpus_per_task=args.threads) \
        if executor.kind == "ray" else None
    # With Ray the model runs in the workers only: this process clusters and stores.
    describer = RayDescriber(ray, args.backend, progress=_progress) if ray is not None else None
    backend = load_backend_on(args.backend, args.threads) if ray is None else None
    try:
        with open_serving_store(args.store) as store:
            personas = build_personas_for_tenant(store, embedder, backend, tenant=tenant, k=args.k, describer=describer)
            sizes = {p.persona_id: p.size for p in personas}
    except PersonasFailedError as error:
        print(f"tailor personas: error: {error}", file=sys.stderr)
        return 1
    finally:
        if ray is not None:
            ray.close()
    rows = [{"persona_id": p.persona_id.rpartition(TENANT_SEPARATOR)[2], "size": sizes[p.persona_id],
             "description": p.description} for p in personas]
    if args.json:
        print(json.dumps({"tenant": tenant, "embedder": embedder.name, "personas": rows}))
    else:
        for row in rows:
            print(f"{row['persona_id']}\t{row['size']} users\t{row['description']}")
        print(f"{len(rows)} personas for {'tenant ' + repr(tenant) if tenant else 'users outside any tenant'}; "
              f"serve with --method persona+... --embedder {args.embedder}", file=sys.stderr)
    return 0


def run_summaries(args: argparse.Namespace) -> int:
    from tailor.batch.summaries import BuildSummariesConfig, build_summaries

    if args.summaries_verb is None:
        print("tailor summaries: choose an action: build", file=sys.stderr)
        return 2
    users = None
    if args.users is not None:
        users = tuple(dict.fromkeys(u.strip() for u in args.users.split(",") if u.strip()))
        if not users:
            raise ValueError("--users needs at least one user id (ID,ID,...)")
    config = BuildSummariesConfig(store=args.store, tenant=args.tenant, users=users, backend=args.backend,
                                  executor=args.executor, threads=args.threads, retries=args.retries)
    report = build_summaries(config, progress=_progress)
    failed = report.failed
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        for row in report.rows:
            name = f"{row.tenant}/{row.user_id}" if row.tenant else row.user_id
            detail = row.error if row.status == "failed" else (row.summary or "")
            print(f"{name}\t{row.status}\t{detail}")
        counts = {status: sum(row.status == status for row in report.rows) for status in ("written", "up to date")}
        print(f"{counts['written']} summaries written, {counts['up to date']} up to date", file=sys.stderr)
    if failed:
        print(f"tailor summaries: {len(failed)} user(s) failed after {args.retries} retries (rerun to retry only "
              "these): " + ", ".join(f"{row.tenant}/{row.user_id}" if row.tenant else row.user_id for row in failed),
              file=sys.stderr)
        return 1
    return 0


def _progress(total: int, description: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, leave=False, dynamic_ncols=True)


def run_keys(args: argparse.Namespace) -> int:
    from tailor.server.keys import KeyStore
    from tailor.store import open_serving_store

    if args.keys_verb is None:
        print("tailor keys: choose an action: create, list, revoke", file=sys.stderr)
        return 2
    with open_serving_store(args.store) as store:
        keys = KeyStore(store)
        if args.keys_verb == "create":
            info, key = keys.create(tenant=args.tenant, admin=args.admin)
            if args.json:
                print(json.dumps({"key": key, "key_id": info.key_id, "tenant": info.tenant, "admin": info.admin}))
            else:
                scope = "admin (all users)" if info.admin else f"tenant {info.tenant!r}"
                print(key)
                print(f"key id {info.key_id}, {scope}; shown once, only its hash is stored", file=sys.stderr)
            return 0
        if args.keys_verb == "list":
            rows = keys.list()
            if args.json:
                print(json.dumps([vars(row) for row in rows]))
            for row in rows if not args.json else []:
                scope = "admin" if row.admin else f"tenant={row.tenant}"
                state = f"revoked {row.revoked_at}" if row.revoked_at else "active"
                print(f"{row.key_id}\t{scope}\t{row.created_at}\t{state}")
            return 0
        if not keys.revoke(args.key_id):
            print(f"tailor keys: error: no active key {args.key_id!r}", file=sys.stderr)
            return 1
        print(f"revoked {args.key_id}")
        return 0


__all__ = ["add_serve_verbs", "run_keys", "run_personas", "run_serve", "run_summaries"]
