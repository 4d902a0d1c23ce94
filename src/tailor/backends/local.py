"""What the engines tailor drives step by step share (ONNX Runtime GenAI, OpenVINO).

Each engine says how to advance a batch by one token (:meth:`LocalEngine._decode`) and
how likely each token of each candidate is after a prompt
(:meth:`LocalEngine._candidate_logprobs`), and, where it applies LoRA adapters at run
time, how to give each row its adapter (:meth:`LocalEngine._select_adapters`); batching,
streaming, stop strings, label scores and refusing adapters are written once, here.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from tailor.backends.contract import (
    DecodedRow,
    StopFilter,
    TextStream,
    batches_by_length,
    chat_prompt_ids,
    tokenizer_count,
)
from tailor.types import GenerationRequest, GenerationResult


class LocalEngine:
    """Greedy generation over batches of prompts of similar length, and label scoring, on an
    engine that subclasses drive token by token.

    Subclasses set ``engine``, ``config`` (with ``batch_size``, ``max_input_tokens`` and
    ``candidate_score``), ``tokenizer``, ``_ends`` (the token ids that end a reply) and
    ``_lock``, and implement :meth:`_decode` and :meth:`_candidate_logprobs`.
    """

    engine: str
    config: Any
    tokenizer: Any
    _ends: set[int]
    _lock: threading.Lock
    applies_lora = False
    """Whether :meth:`generate` and :meth:`stream` take ``lora`` (per-row LoRA adapters,
    given to the engine by :meth:`_select_adapters` before each batch)."""

    def count_tokens(self, text: str) -> int:
        return tokenizer_count(self.tokenizer, text)

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The request's messages through the model's chat template, cut from the left to fit."""
        return chat_prompt_ids(self.tokenizer, request, self.config.max_input_tokens)

    # -- what an engine implements -----------------------------------------------------------

    def _decode(self, prompts: list[list[int]], rows: list[DecodedRow]) -> Iterator[int]:
        """Greedy decoding of ``prompts`` into ``rows`` (one each), yielding after every step,
        until every row is done or the longest token limit is reached."""
        raise NotImplementedError

    def _candidate_logprobs(self, prompt: list[int], candidates: list[list[int]]) -> list[list[float]]:
        """For each candidate (token ids), the log-probability of each of its tokens after
        ``prompt`` and the candidate's tokens before it."""
        raise NotImplementedError

    def _select_adapters(self, choices: Sequence[Any | None]) -> None:
        """Run the next batch (one row per entry; for candidates, one row) with these LoRA
        adapters (``None``: none). Engines that apply adapters (:attr:`applies_lora`) implement it."""

    # -- generation ---------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest], *, lora: Sequence[Any] | None = None,
                 prefixes: Sequence[Any] | None = None) -> list[GenerationResult]:
        """Answer ``requests``: free text for those without candidates, scores for those with them.

        ``lora[i]`` is request ``i``'s LoRA adapter (``None``: none), on an engine that
        :attr:`applies_lora`; rows with different adapters share a batch. Soft prompts
        (``prefixes``), and adapters on any other engine, are an error naming what to use instead.
        """
        given = [name for name, value in (("lora", None if self.applies_lora else lora), ("prefixes", prefixes))
                 if value is not None and any(v is not None for v in value)]
        if given:
            raise ValueError(f"the {self.engine} backend does not apply {' or '.join(given)}; "
                             "use with_adapters() or the transformers backend")
        if lora is not None and len(lora) != len(requests):
            raise ValueError(f"lora must hold one entry per request ({len(requests)}), got {len(lora)}")

        def adapters(indexes: Sequence[int]) -> list[Any]:
            return [lora[i] if lora is not None else None for i in indexes]

        results: list[GenerationResult | None] = [None] * len(requests)
        with self._lock:
            for i, request in enumerate(requests):
                if request.candidates is not None:
                    self._select_adapters(adapters([i]))
                    results[i] = self._score_candidates(request)
            encoded = {i: self.prompt_ids(r) for i, r in enumerate(requests) if r.candidates is None}
            for batch in batches_by_length(encoded, self.config.batch_size):
                self._select_adapters(adapters(batch))
                rows = [DecodedRow(requests[i], self.tokenizer, self._ends) for i in batch]
                for _ in self._decode([encoded[i] for i in batch], rows):
                    pass
                for i, row in zip(batch, rows):
                    results[i] = row.result()
        return [r for r in results if r is not None]

    def stream(self, request: GenerationRequest, *, lora: Any | None = None) -> TextStream:
        """Answer one request token by token: the same text as ``generate([request], lora=[lora])``.

        Holds the backend's lock while it runs; closing the generator early stops the
        generation before its next token.
        """
        if request.candidates is not None:
            raise ValueError("a request with candidates is scored, not streamed; use generate()")
        if lora is not None and not self.applies_lora:
            raise ValueError(f"the {self.engine} backend does not apply lora; use with_adapters() or the "
                             "transformers backend")
        with self._lock:
            self._select_adapters([lora])
            row = DecodedRow(request, self.tokenizer, self._ends)
            cut = StopFilter(request.stop, strip=True)
            sent = 0
            for _ in self._decode([self.prompt_ids(request)], [row]):
                safe = cut.push(row.text[sent:])
                sent = len(row.text)
                if safe:
                    yield safe
                if cut.stopped:
                    break
            tail = cut.finish()
            if tail:
                yield tail
        return row.result()

    def _score_candidates(self, request: GenerationRequest) -> GenerationResult:
        """Each candidate's mean (or total) log-likelihood after the prompt; the best one is the text."""
        candidates = request.candidates or ()
        tokenized = []
        for candidate in candidates:
            ids = self.tokenizer(candidate, add_special_tokens=False)["input_ids"]
            if not ids:
                raise ValueError(f"candidate {candidate!r} has no tokens")
            tokenized.append(list(ids))
        scores = {}
        for candidate, ids, token_scores in zip(candidates, tokenized,
                                                self._candidate_logprobs(self.prompt_ids(request), tokenized)):
            total = math.fsum(token_scores)
            scores[candidate] = total / len(ids) if self.config.candidate_score == "mean" else total
        best = max(candidates, key=lambda c: scores[c])
        return GenerationResult(text=best, scores=scores, tokens=0)
