"""A backend for any OpenAI-compatible chat server: vLLM, llama.cpp's server, tailor's own.

``load_backend("openai:http://127.0.0.1:8000/v1")``. Requests go to
``POST {base_url}/chat/completions`` with greedy settings (temperature 0, unless a request asks to sample), at most
``concurrency`` at a time, and come back in request order. Connection errors, timeouts,
HTTP 429 and 5xx are retried with exponential backoff and jitter (a ``Retry-After``
header is honoured); other 4xx answers fail at once.

Candidate scoring is approximate, because chat servers do not expose the likelihood of a
given continuation uniformly. Where the server returns ``logprobs``, a candidate's score
is the log-probability mass of the first-position tokens (among the top 20) that begin
it, ignoring case and surrounding spaces: candidates that share their first token tie,
and a candidate whose first token is not among the top 20 scores ``-inf``. Ties are
broken by the generated text, then by candidate order. Where the server returns no
log-probabilities, the generated text is mapped to a candidate (exact, then
case-insensitive, then the earliest candidate found in it as a whole word); that
candidate scores 0.0 and the others ``-inf``; when the text names no candidate the
result's text is the reply itself, so the task's parser judges it.

:meth:`OpenAIBackend.stream` asks for ``"stream": true`` and hands on the reply's text
as the server's events bring it. Failures before the reply begins are retried as above;
once it has begun, a failure ends it with :class:`OpenAIBackendError`.

``count_tokens`` is an estimate (:func:`approximate_token_count`): the server's tokenizer
is not reachable through the chat API.

Per-user adapters on a multi-LoRA engine (vLLM or SGLang with ``--enable-lora``):
:meth:`OpenAIBackend.with_adapters` sends each request with its user's adapter as the
``model``, named as ``tailor adapters export`` named its folder
(:func:`tailor.adapters.export.adapter_name`): ``NAME`` as vLLM takes it, or
``BASE:NAME`` as SGLang takes it (``lora_model="base:name"``, or
``$TAILOR_OPENAI_LORA_MODEL=base:name``); a request whose user has no adapter goes to the
base model.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tailor.backends.contract import (
    BackendError,
    TextStream,
    apply_stop,
    approximate_token_count,
    cut_stream,
    first_token_scores,
    match_candidate,
    score_by_text,
)
from tailor.registry import require
from tailor.types import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from typing import Self

    from tailor.adapters.runtime import AdaptedBackend, LoRAChoice
    from tailor.adapters.store import AdapterStore

logger = logging.getLogger(__name__)

__all__ = ["LORA_MODELS", "OpenAIBackend", "OpenAIBackendError", "OpenAIConfig", "first_token_scores", "match_candidate"]

LORA_MODELS = ("name", "base:name")
"""How a request names its adapter as the ``model``: vLLM's ``NAME``, SGLang's ``BASE:NAME``."""
MAX_STOP_STRINGS = 4  # the OpenAI API (and servers copying it) reject more than four
TOP_LOGPROBS = 20  # the most the OpenAI API allows
MAX_RETRY_AFTER = 120.0  # seconds; a longer Retry-After is cut to this
_RETRYABLE_STATUS = frozenset({429}) | frozenset(range(500, 600))


class OpenAIBackendError(BackendError):
    """A request to an OpenAI-compatible server failed; names the URL, status and server message."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


@dataclass(frozen=True)
class OpenAIConfig:
    """Keyword arguments of :class:`OpenAIBackend`, less the API key (configs are saved beside results)."""

    base_url: str
    model: str | None = None
    concurrency: int = 4
    max_retries: int = 4
    timeout: float = 60.0
    backoff: float = 0.5
    lora_model: str = "name"


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server at ``base_url`` (ending in ``/v1``).

    ``model`` defaults to ``$TAILOR_OPENAI_MODEL``, else the first model the server lists
    at ``GET {base_url}/models`` (asked once, on first use). ``api_key`` defaults to
    ``$TAILOR_OPENAI_API_KEY``, then ``$OPENAI_API_KEY``; it is sent as a bearer token.
    At most ``concurrency`` requests are in flight at once, across all callers of this
    backend. A failed request is tried again up to ``max_retries`` times, waiting
    ``backoff * 2**attempt`` seconds (with jitter) or the server's ``Retry-After``.
    """

    samples = True
    """A request with a temperature above 0 is sampled by the server (with its seed, where the server takes one)."""
    name = "openai"

    def __init__(self, base_url: str, *, model: str | None = None, api_key: str | None = None,
                 concurrency: int = 4, max_retries: int = 4, timeout: float = 60.0, backoff: float = 0.5,
                 lora_model: str | None = None) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http:// or https:// URL such as http://127.0.0.1:8000/v1, "
                             f"got {base_url!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if backoff < 0:
            raise ValueError(f"backoff must be 0 or more, got {backoff}")
        lora_model = lora_model or os.environ.get("TAILOR_OPENAI_LORA_MODEL") or "name"
        if lora_model not in LORA_MODELS:
            raise ValueError(f"lora_model (or $TAILOR_OPENAI_LORA_MODEL) must be one of {', '.join(LORA_MODELS)} "
                             f"(name: vLLM's NAME; base:name: SGLang's BASE:NAME), got {lora_model!r}")
        httpx = require("httpx", "openai")
        self._httpx = httpx
        self.base_url = base_url.rstrip("/")
        self.config = OpenAIConfig(self.base_url, model or os.environ.get("TAILOR_OPENAI_MODEL") or None,
                                   concurrency, max_retries, timeout, backoff, lora_model)
        key = api_key or os.environ.get("TAILOR_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self._slots = threading.BoundedSemaphore(concurrency)
        self._model = self.config.model
        self._model_lock = threading.Lock()
        self._logprobs_supported = True
        self._random = random.Random()

    # -- identity and lifecycle --------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model name sent with every request (discovered from the server when not given)."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    self._model = self._discover_model()
        return self._model

    @property
    def model_id(self) -> str:
        return f"{self.model} at {self.base_url}"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def count_tokens(self, text: str) -> int:
        """An estimate: the chat API does not expose the server's tokenizer."""
        return approximate_token_count(text)

    # -- generation ----------------------------------------------------------------------------

    def with_adapters(self, store: AdapterStore, task: str, *, personas: Mapping[str, str] | None = None,
                      prompt: str | None = None, levels: Sequence[str] | None = None) -> AdaptedBackend:
        """A view of this backend that sends each request to its user's adapter on the server.

        The adapter is the one the user would get from a local model (their own for ``task``,
        else their persona's, else the global one: :class:`~tailor.adapters.runtime.AdapterResolver`,
        whose arguments ``personas``, ``prompt`` and ``levels`` are), sent as the ``model``
        under the name ``tailor adapters export`` gave its folder (``NAME``, or ``BASE:NAME``
        with ``lora_model="base:name"``); the server must have loaded that folder (vLLM:
        ``--enable-lora --lora-modules NAME=PATH``, or its filesystem resolver; SGLang:
        ``--enable-lora --lora-paths NAME=PATH``). Unlike a local model's, the base model the adapters were trained on is not
        checked: the server's is not known here. This backend itself stays plain.
        """
        from tailor.adapters.runtime import AdaptedBackend, AdapterResolver

        options: dict[str, Any] = {"prompt": prompt} if prompt is not None else {}
        if levels is not None:
            options["levels"] = tuple(levels)
        return AdaptedBackend(self, AdapterResolver(store, task, personas=personas, **options))

    def _models(self, count: int, lora: Sequence[LoRAChoice | None] | None) -> list[str]:
        """The ``model`` of each request: its adapter's exported name, else the base model."""
        if lora is not None and len(lora) != count:
            raise ValueError(f"lora names {len(lora)} adapters for {count} requests")
        base = self.model  # discovered once, before the fan-out
        if lora is None:
            return [base] * count
        from tailor.adapters.export import adapter_name

        prefix = f"{base}:" if self.config.lora_model == "base:name" else ""
        return [prefix + adapter_name(choice) if choice is not None else base for choice in lora]

    def generate(self, requests: Sequence[GenerationRequest], *,
                 lora: Sequence[LoRAChoice | None] | None = None) -> list[GenerationResult]:
        """Replies in request order; ``lora`` (from :meth:`with_adapters`' view) names each
        request's adapter, ``None`` for the base model."""
        if not requests:
            return []
        models = self._models(len(requests), lora)
        if len(requests) == 1 or self.config.concurrency == 1:
            return [self._answer(request, model) for request, model in zip(requests, models)]
        workers = min(self.config.concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tailor-openai") as pool:
            futures = [pool.submit(self._answer, request, model) for request, model in zip(requests, models)]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()  # requests not yet sent are not sent
                raise

    def stream(self, request: GenerationRequest, *, lora: LoRAChoice | None = None) -> TextStream:
        """One reply as the server generates it (see :class:`~tailor.backends.contract.StreamingBackend`),
        with the adapter ``lora`` names (``None``: the base model).

        The reply's token count comes from the server's usage report where it sends one,
        else it is estimated. A slot of ``concurrency`` is held until the stream ends.
        """
        if request.candidates is not None:
            raise ValueError("a request with candidates is scored, not streamed; use generate()")
        [model] = self._models(1, [lora])
        payload, stops = self._payload(request, model)
        payload.update(stream=True, stream_options={"include_usage": True})
        url = self._url("/chat/completions")
        client = self._client
        usage: dict[str, int] = {}
        # The slot is held through retries too: what it limits is this reply's connection.
        with self._slots:
            response = self._open("POST", url, lambda: client.send(client.build_request("POST", url, json=payload),
                                                                     stream=True))
            try:
                text = yield from cut_stream(self._deltas(response, url, usage), stops, strip=True)
            finally:
                response.close()
        return GenerationResult(text=text, tokens=usage.get("completion_tokens") or approximate_token_count(text))

    def _deltas(self, response: Any, url: str, usage: dict[str, int]) -> Iterator[str]:
        """The text pieces of a streamed reply's server-sent events; its completion-token
        count, when the server reports it, goes into ``usage``."""
        httpx = self._httpx
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # blank lines between events, comments, event names
                data = line[len("data:"):].strip()
                if data == "[DONE]":
                    return
                try:
                    chunk = json.loads(data)
                except ValueError as error:
                    raise OpenAIBackendError(f"POST {url} streamed an event that is not JSON: {data[:200]!r}",
                                             url=url, status=response.status_code) from error
                if not isinstance(chunk, dict):
                    raise OpenAIBackendError(f"POST {url} streamed an event that is not a JSON object", url=url,
                                             status=response.status_code)
                failure = chunk.get("error")
                if failure is not None:
                    message = failure.get("message") if isinstance(failure, dict) else failure
                    raise OpenAIBackendError(f"POST {url} failed while streaming: {message}", url=url,
                                             status=response.status_code)
                tokens = (chunk.get("usage") or {}).get("completion_tokens")
                if isinstance(tokens, int):
                    usage["completion_tokens"] = tokens
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") if isinstance(choice, dict) and choice.get("index", 0) == 0 else None
                    content = delta.get("content") if isinstance(delta, dict) else None
                    if isinstance(content, str) and content:
                        yield content
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
            raise OpenAIBackendError(f"POST {url} broke off while streaming ({type(error).__name__}: "
                                     f"{error or 'no detail'}); not retried, as the reply had begun", url=url,
                                     status=response.status_code) from error

    def _payload(self, request: GenerationRequest, model: str) -> tuple[dict[str, Any], list[str]]:
        """The chat-completions body for ``request``, and its stop strings."""
        payload: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in request.messages],
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            payload["seed"] = request.seed
        stops = [s for s in request.stop if s]
        if stops:
            payload["stop"] = stops[:MAX_STOP_STRINGS]  # the rest are applied below
        if request.user_id is not None:
            payload["user"] = request.user_id
        return payload, stops

    def _answer(self, request: GenerationRequest, model: str) -> GenerationResult:
        payload, stops = self._payload(request, model)
        try:
            if request.candidates is None:
                reply = self._post("/chat/completions", payload)
                text, tokens, _ = _read_choice(reply, self._url("/chat/completions"))
                return GenerationResult(text=apply_stop(text, stops).strip(), tokens=tokens)
            return self._score(request, payload, stops)
        except OpenAIBackendError as error:
            if error.status == 404 and model != self.model:
                raise OpenAIBackendError(
                    f"{error} ({model} is a user's adapter as tailor adapters export names it: export the store's "
                    "adapters again and load that folder into the server; see docs/serving.md)",
                    url=error.url, status=error.status) from error
            raise

    def _score(self, request: GenerationRequest, payload: dict[str, Any], stops: list[str]) -> GenerationResult:
        candidates = request.candidates or ()
        reply: dict[str, Any] | None = None
        if self._logprobs_supported:
            try:
                reply = self._post("/chat/completions", {**payload, "logprobs": True, "top_logprobs": TOP_LOGPROBS})
            except OpenAIBackendError as error:
                if error.status != 400:
                    raise
                # Some servers reject the logprobs fields outright; fall back to matching text.
                logger.warning("%s rejected a logprobs request (%s); scoring candidates by their text", self.base_url,
                               error)
                self._logprobs_supported = False
        if reply is None:
            reply = self._post("/chat/completions", payload)
        raw, _, top = _read_choice(reply, self._url("/chat/completions"))
        text = apply_stop(raw, stops).strip()
        if not top:
            return score_by_text(text, candidates)
        matched = match_candidate(text, candidates)
        scores = first_token_scores(top, candidates)
        best_score = max(scores.values())
        if best_score == -math.inf:
            return GenerationResult(text=matched or text, scores=scores)
        tied = [c for c in candidates if scores[c] == best_score]
        best = matched if matched in tied else tied[0]
        return GenerationResult(text=best, scores=scores)

    # -- HTTP ---------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _discover_model(self) -> str:
        listing = self._send("GET", "/models", None)
        data = listing.get("data") if isinstance(listing, dict) else None
        ids = [item.get("id") for item in data or [] if isinstance(item, dict)]
        names = [name for name in ids if isinstance(name, str) and name]
        if not names:
            raise OpenAIBackendError(
                f"{self._url('/models')} lists no models; pass model=... or set TAILOR_OPENAI_MODEL",
                url=self._url("/models"))
        return names[0]

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._send("POST", path, payload)

    def _send(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        url = self._url(path)

        def request() -> Any:
            with self._slots:
                return self._client.request(method, url, json=payload)

        response = self._open(method, url, request)
        try:
            body = response.json()
        except ValueError as error:
            raise OpenAIBackendError(f"{method} {url} answered HTTP {response.status_code} with a body "
                                     f"that is not JSON: {response.text[:200]!r}", url=url,
                                     status=response.status_code) from error
        if not isinstance(body, dict):
            raise OpenAIBackendError(f"{method} {url} answered with JSON that is not an object",
                                     url=url, status=response.status_code)
        return body

    def _open(self, method: str, url: str, send: Callable[[], Any]) -> Any:
        """The first response of ``send()`` below HTTP 400, trying again after connection
        errors, timeouts, 429 and 5xx; a streamed one is left open for the caller."""
        httpx = self._httpx
        attempts = self.config.max_retries + 1
        last = ""
        status: int | None = None
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                response = send()
                if response.status_code >= 400:
                    try:
                        response.read()  # the error body of a streamed response
                    finally:
                        response.close()
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
                last, status = f"{type(error).__name__}: {error or 'no detail'}", None
            else:
                if response.status_code < 400:
                    return response
                status = response.status_code
                last = f"HTTP {status}: {_server_message(response)}"
                if status not in _RETRYABLE_STATUS:
                    raise OpenAIBackendError(f"{method} {url} failed with {last}", url=url, status=status)
                retry_after = _retry_after(response.headers.get("Retry-After"))
            if attempt + 1 == attempts:
                break
            delay = self.config.backoff * (2 ** attempt) * (0.5 + self._random.random())
            if retry_after is not None:
                delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
            logger.warning("%s %s: %s; retrying in %.2f s (%d of %d)", method, url, last, delay, attempt + 1,
                           self.config.max_retries)
            time.sleep(delay)
        raise OpenAIBackendError(f"{method} {url} failed after {attempts} attempt(s); last error: {last}",
                                 url=url, status=status)


# -- reading replies ------------------------------------------------------------------------------


def _read_choice(reply: Mapping[str, Any], url: str) -> tuple[str, int, list[tuple[str, float]]]:
    """The first choice's text, its completion-token count, and its first position's top log-probs."""
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise OpenAIBackendError(f"POST {url} answered without choices: {str(reply)[:200]}", url=url)
    choice = choices[0]
    message = choice.get("message") or {}
    text = message.get("content") if isinstance(message, dict) else None
    text = text if isinstance(text, str) else ""
    usage = reply.get("usage") or {}
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if not isinstance(tokens, int):
        tokens = approximate_token_count(text)
    top: list[tuple[str, float]] = []
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if isinstance(content, list) and content and isinstance(content[0], dict):
        for entry in content[0].get("top_logprobs") or []:
            token, value = entry.get("token"), entry.get("logprob")
            if isinstance(token, str) and isinstance(value, (int, float)):
                top.append((token, float(value)))
    return text, tokens, top


def _server_message(response: Any) -> str:
    """The error message in an error body (OpenAI, vLLM, llama.cpp and FastAPI layouts), else its text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("message", "detail", "error"):
            if body.get(key):
                return str(body[key])
    text = response.text.strip()
    return text[:500] if text else "(empty body)"


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds, or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
