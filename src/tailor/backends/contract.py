"""The backend contract: a model that answers batches of generation requests."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

# The contract itself is a core type (layers below the backends take a model too); it is
# re-exported here, where backends have always found it.
from tailor.types import Backend, GenerationRequest, GenerationResult, TextStream


@runtime_checkable
class StreamingBackend(Backend, Protocol):
    """A backend that can also give a free-text reply piece by piece, as it is generated.

    ``result = yield from backend.stream(request)`` passes the pieces on and gets the
    result at the end; its text is the one :meth:`generate` gives for the same request.
    No piece holds text that the stop strings cut (see :class:`StopFilter`), and
    generation ends at the first stop string. Requests with ``candidates`` are refused
    with :class:`ValueError`: scoring has nothing to stream. Closing the generator early
    stops the generation and frees the model.
    """

    def stream(self, request: GenerationRequest) -> TextStream: ...


class BackendError(RuntimeError):
    """A backend could not answer (a server error after retries, a model that failed to run)."""


def apply_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` cut before the first occurrence of any stop string."""
    cut = len(text)
    for marker in stop:
        if marker:
            position = text.find(marker)
            if position != -1:
                cut = min(cut, position)
    return text[:cut]


class StopFilter:
    """Cuts a reply that arrives in pieces at its stop strings, as :func:`apply_stop` cuts a whole one.

    :meth:`push` takes the next piece and returns the text that is now safe to send. An
    end that could still grow into a stop string (at most ``max(len(stop)) - 1``
    characters) is held back until later pieces settle it. Once a stop string has
    appeared, :attr:`stopped` is true and nothing more comes out; :meth:`finish` returns
    what is still held when the reply ends. Joined, the outputs equal
    ``apply_stop(whole, stop)``; with ``strip=True`` they equal its ``.strip()``, which
    also holds back trailing whitespace until text follows it.
    """

    def __init__(self, stop: Sequence[str], *, strip: bool = False) -> None:
        self.stop = tuple(marker for marker in stop if marker)
        self.strip = strip
        self.stopped = False
        self._longest = max((len(marker) for marker in self.stop), default=0)
        self._held = ""
        self._spaces = ""  # trailing whitespace held back (strip only)
        self._started = False  # whether any non-whitespace has gone out (strip only)

    def push(self, piece: str) -> str:
        """The text safe to send now that ``piece`` has arrived (``""`` once stopped)."""
        if self.stopped:
            return ""
        text = self._held + piece
        cut = len(apply_stop(text, self.stop))
        pending = self._pending(text, cut)
        if pending < cut:
            self._held = text[pending:]
            return self._release(text[:pending])
        self._held = ""
        self.stopped = cut < len(text)
        return self._release(text[:cut])

    def finish(self) -> str:
        """What is still held back, once the reply has ended."""
        if self.stopped:
            return ""
        text, self._held = apply_stop(self._held, self.stop), ""
        return self._release(text)

    def _pending(self, text: str, before: int) -> int:
        """Where the earliest unfinished stop string may begin (``before`` if nowhere before it)."""
        for start in range(max(0, len(text) - self._longest + 1), before):
            tail = text[start:]
            if any(len(marker) > len(tail) and marker.startswith(tail) for marker in self.stop):
                return start
        return before

    def _release(self, text: str) -> str:
        if not self.strip:
            return text
        if not self._started:
            text = text.lstrip()
            self._started = bool(text)
        text = self._spaces + text
        kept = text.rstrip()
        self._spaces = text[len(kept):]
        return kept


def cut_stream(pieces: Iterable[str], stop: Sequence[str], *, strip: bool = False) -> Generator[str, None, str]:
    """``pieces`` through a :class:`StopFilter`: yields the safe text, stops reading at the
    first stop string, and returns all the text it yielded."""
    cut = StopFilter(stop, strip=strip)
    sent = []
    for piece in pieces:
        safe = cut.push(piece)
        if safe:
            sent.append(safe)
            yield safe
        if cut.stopped:
            break
    tail = cut.finish()
    if tail:
        sent.append(tail)
        yield tail
    return "".join(sent)


# -- helpers for backends that hold a Hugging Face tokenizer (transformers, ONNX Runtime GenAI) --


def tokenizer_count(tokenizer: Any, text: str) -> int:
    """How many tokens ``text`` takes for ``tokenizer``, special tokens left out."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def chat_prompt_ids(tokenizer: Any, request: GenerationRequest, limit: int) -> list[int]:
    """The request's messages through ``tokenizer``'s chat template, cut from the left to ``limit`` tokens."""
    ids = tokenizer.apply_chat_template(
        [dict(m) for m in request.messages], add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    return list(ids[-limit:]) if len(ids) > limit else list(ids)


def batches_by_length(encoded: Mapping[int, Sequence[int]], size: int) -> Iterator[list[int]]:
    """The keys of ``encoded`` (request index -> prompt ids) in batches of ``size``, shortest
    prompts first, so prompts of similar length share a batch and padding wastes little compute."""
    order = sorted(encoded, key=lambda i: len(encoded[i]))
    for start in range(0, len(order), size):
        yield order[start:start + size]


def check_backend_arguments(candidate_score: str, batch_size: int, threads: int | None = None) -> None:
    """The constructor arguments local backends share, checked with a message saying which is wrong."""
    if candidate_score not in ("mean", "sum"):
        raise ValueError(f"candidate_score must be 'mean' or 'sum', got {candidate_score!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")


def available_threads() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def log_softmax(np: Any, logits: Any) -> Any:
    """Log-probabilities from one position's logits, in float64."""
    values = logits.astype(np.float64)
    peak = values.max()
    return values - peak - np.log(np.exp(values - peak).sum())


class DecodedRow:
    """One request's generated tokens and text while a batch decodes, and whether it has ended.

    Text is decoded incrementally: each new token decodes with a few tokens of context
    before it, not the whole row again; a character split across tokens waits for its
    last byte. Stop strings are looked for only in the text that the step added (and the
    end of the text before it). :meth:`result` decodes the row once as a whole.
    """

    _CONTEXT = 4  # tokens decoded before the new ones, so spaces and merges come out as in the whole

    def __init__(self, request: GenerationRequest, tokenizer: Any, ends: set[int]) -> None:
        self.request = request
        self.tokenizer = tokenizer
        self.ends = ends
        self.tokens: list[int] = []
        self.text = ""
        self.done = False
        self._settled = 0  # how many tokens self.text holds
        self._markers = tuple(marker for marker in request.stop if marker)
        self._longest = max((len(m) for m in self._markers), default=0)

    def add(self, token: int) -> None:
        if self.done:
            return
        if token in self.ends:
            self.done = True
            return
        self.tokens.append(token)
        previous = len(self.text)
        start = max(0, self._settled - self._CONTEXT)
        before = self.tokenizer.decode(self.tokens[start:self._settled], skip_special_tokens=True)
        after = self.tokenizer.decode(self.tokens[start:], skip_special_tokens=True)
        if not after.endswith("\ufffd"):
            if after.startswith(before):
                self.text += after[len(before):]
            else:  # the tokenizer rewrote the context: decode the whole row once
                self.text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
            self._settled = len(self.tokens)
        if self._markers:
            window = self.text[max(0, previous - self._longest):]
            if any(marker in window for marker in self._markers):
                self.done = True
        if len(self.tokens) >= self.request.max_new_tokens:
            self.done = True

    def result(self) -> GenerationResult:
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        return GenerationResult(text=apply_stop(text, self.request.stop).strip(), tokens=len(self.tokens))


def approximate_token_count(text: str) -> int:
    """A tokenizer-free estimate (about 1.3 tokens per word) for backends without a tokenizer."""
    words = len(text.split())
    return (words * 4 + 2) // 3


# -- candidates scored from generated text (for backends without prompt log-probs) ------------


def match_candidate(text: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``text`` names: exactly, then ignoring case, then the earliest one it holds as a whole word."""
    stripped = text.strip()
    for candidate in candidates:
        if candidate.strip() == stripped:
            return candidate
    folded = stripped.casefold()
    for candidate in candidates:
        if candidate.strip().casefold() == folded:
            return candidate
    best: tuple[int, int] | None = None
    found = None
    for candidate in candidates:
        needle = candidate.strip().casefold()
        if not needle:
            continue
        hit = re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", folded)
        # Earliest wins; at the same place the longer candidate ("sci-fi" over "sci").
        if hit is not None and (best is None or (hit.start(), -len(needle)) < best):
            best, found = (hit.start(), -len(needle)), candidate
    return found


def score_by_text(text: str, candidates: Sequence[str]) -> GenerationResult:
    """The result for candidates answered in free text: the one ``text`` names scores 0, the rest ``-inf``.

    Its text is the named candidate, or ``text`` itself when it names none (scored as wrong).
    """
    matched = match_candidate(text, candidates)
    scores = {c: (0.0 if c == matched else -math.inf) for c in candidates}
    return GenerationResult(text=matched or text, scores=scores)


def first_token_scores(top: Sequence[tuple[str, float]], candidates: Sequence[str]) -> dict[str, float]:
    """Each candidate's log-probability mass among the top first-position tokens that begin it.

    A token counts for a candidate when, stripped of spaces, it is a non-empty prefix of
    the candidate, ignoring case. A candidate no token begins scores ``-inf``.
    """
    scores = {}
    for candidate in candidates:
        folded = candidate.strip().casefold()
        matched = [value for token, value in top if token.strip() and folded.startswith(token.strip().casefold())]
        scores[candidate] = _logsumexp(matched) if matched else -math.inf
    return scores


def _logsumexp(values: Sequence[float]) -> float:
    peak = max(values)
    return peak + math.log(sum(math.exp(v - peak) for v in values))
