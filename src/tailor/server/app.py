"""The HTTP API: OpenAI-compatible chat completions, personalized per user, and the user
data API (profiles, records, export, deletion, memories). See docs/serving.md.

Each route authenticates its caller, then checks its input against its declaration
(:mod:`tailor.server.schema`: the body read within ``Limits.max_body_bytes`` and parsed
as JSON first), then runs the work in a worker thread, so a slow write never stalls the
event loop. No worker thread ever waits for the model: a chat is personalized
in one, queued for the model's own thread (:class:`~tailor.backends.gate.BackendGate`),
awaited on the event loop, and stored in one again; what a method asks the model before
the prompt (``refine``'s style note) is queued and awaited the same way, between two
steps of personalizing. A full queue is a 429 with ``Retry-After``; a reply (or note)
still queued after ``queue_timeout`` is a 503; a client that goes away while it waits
takes it out of the queue. Every error, ours or the framework's, is answered in OpenAI's
shape ``{"error": {"message", "type", "param", "code"}}``; malformed input is a 4xx. A
streamed chat reply starts only once its first piece is generated, so that everything that
can fail before it is still answered that way.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from tailor.registry import require

require("fastapi", "serve")  # fails with the "pip install 'tailor-llm[serve]'" hint

import anyio
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from tailor.adapters.serving import AdapterHook
from tailor.backends.contract import Backend, BackendError
from tailor.backends.gate import GateClosed, GateFull, PieceStream
from tailor.chat.personalizer import ChatContext
from tailor.server.config import ServeConfig, is_loopback
from tailor.server.feedback import add_feedback_routes
from tailor.server.keys import Principal
from tailor.server.ranking import add_rank_route
from tailor.server.request_log import RequestLog, request_fields, route_of
from tailor.server.responses import completion, stream_events
from tailor.server.schema import (
    ERROR_RESPONSES,
    NO_NUL,
    FlushSeconds,
    MemoryCount,
    MemoryId,
    UserId,
    request_bodies,
    validation_error,
)
from tailor.server.service import ChatOutcome, PreparedChat, TailorService
from tailor.server.validation import APIError, ChatRequest, invalid, parse_json
from tailor.store import SQLProfileStore, StoreUnavailableError
from tailor.types import GenerationRequest, GenerationResult, HistoryRecord, advance_steps

logger = logging.getLogger("tailor.server")
CHECK_THREADS = 4
"""Worker threads of /health, /ready and /v1/models' key checks, apart from every other route's."""
Answer = TypeVar("Answer")

_STATUS_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                 405: "invalid_request_error", 408: "invalid_request_error", 413: "invalid_request_error",
                 415: "invalid_request_error"}


class OpenServerRefused(ValueError):
    """The store holds no API keys and the server was asked to listen beyond loopback."""


class ClientGone(Exception):
    """The client went away before its answer (while sending its body, or while its reply
    waited for the model): there is no one to answer."""


def create_app(config: ServeConfig, *, backend: Backend | None = None, store: SQLProfileStore | None = None,
               adapters: AdapterHook | None = None, memory_backend: Backend | None = None) -> FastAPI:
    """The FastAPI application for ``config`` (``backend`` and ``store`` override the ones
    the config names; tests pass an echo backend). Raises :class:`OpenServerRefused`
    when no API key exists and ``config.host`` is not a loopback address."""
    service = TailorService(config, backend=backend, store=store, adapters=adapters, memory_backend=memory_backend)
    if not service.keys.any_active():
        if not is_loopback(config.host):
            service.close()
            raise OpenServerRefused(
                f"refusing to listen on {config.host}: the store {config.store!r} holds no API keys, and without "
                "keys tailor serves only on loopback (127.0.0.1, ::1). Create one with: "
                f"tailor keys create --admin --store {config.store}")
        logger.warning("no API keys in %s: serving WITHOUT authentication on %s (loopback only); "
                       "create a key with `tailor keys create` to require one", config.store, config.host)
    limits = config.limits
    bodies = request_bodies(limits, config.default_max_tokens)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        # The pool that runs request work (never a wait for the model), per event loop.
        anyio.to_thread.current_default_thread_limiter().total_tokens = config.worker_threads
        yield
        service.close()

    # No /docs or /openapi.json: every route of this server needs a key once keys exist.
    # Every 4xx in one shape (ERROR_RESPONSES), which also keeps FastAPI from describing its own 422.
    app = FastAPI(title="tailor", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  responses=ERROR_RESPONSES, strict_content_type=False)
    app.state.service = service
    app.add_middleware(RequestLog)  # one line per request: method, route template, status, ms, tenant

    def error_response(error: APIError) -> Any:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
        return JSONResponse(error.body(), status_code=error.status, headers={**headers, **(error.headers or {})})

    @app.exception_handler(APIError)
    async def api_error(request: Any, error: APIError) -> Any:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Any, error: RequestValidationError) -> Any:
        return error_response(validation_error(error.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Any, error: Any) -> Any:
        status = int(error.status_code)
        message = "no such route" if status == 404 else str(error.detail)
        headers = dict(getattr(error, "headers", None) or {})
        if status == 405:  # every method the path takes (the framework names one route's)
            methods = {method for route in app.routes if isinstance(route, APIRoute)
                       and route.path_regex.match(request.url.path) for method in route.methods or ()}
            headers["Allow"] = ", ".join(sorted(methods))
        return error_response(APIError(status, message, type=_STATUS_TYPES.get(status, "invalid_request_error"),
                                       headers=headers))

    @app.exception_handler(GateFull)
    async def queue_full(request: Any, error: GateFull) -> Any:
        return error_response(APIError(429, str(error), type="rate_limit_error", code="server_busy",
                                       headers={"Retry-After": str(error.retry_after)}))

    @app.exception_handler(GateClosed)
    async def shutting_down(request: Any, error: GateClosed) -> Any:
        return error_response(APIError(503, str(error), type="server_error", code="shutting_down"))

    @app.exception_handler(StoreUnavailableError)
    async def store_unavailable(request: Any, error: StoreUnavailableError) -> Any:
        # The store's database is down or out of connections: the client may retry; the
        # process stays up and its pool reconnects when the database is back.
        logger.warning("store unavailable on %s %s: %s", request.method, route_of(request.scope), error)
        return error_response(APIError(503, "the profile store is unavailable; retry shortly", type="server_error",
                                       code="store_unavailable", headers={"Retry-After": "1"}))

    @app.exception_handler(BackendError)
    async def model_failed(request: Any, error: BackendError) -> Any:
        logger.error("the model failed on %s %s: %s", request.method, route_of(request.scope), error)
        return error_response(APIError(500, f"the model failed: {type(error).__name__}", type="server_error",
                                       code="model_error"))

    @app.exception_handler(ClientGone)
    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Any, error: Exception) -> Any:
        # Logged once, as its request's line (status 499, "disconnected": when).
        request_fields(request.scope)["disconnected"] = str(error) or "in the middle of its request"
        return Response(status_code=499)  # never read: no one is there

    @app.exception_handler(Exception)
    async def server_error(request: Any, error: Exception) -> Any:
        logger.exception("unhandled error on %s %s", request.method, route_of(request.scope))
        return error_response(APIError(500, "internal server error", type="server_error"))

    async def read_body(request: Any) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise invalid("the Content-Length header is not a number")
            if int(declared) > limits.max_body_bytes:
                raise too_large()
        chunks, size = [], 0
        try:
            # A client that stalls while sending its body holds a connection: it gets
            # body_timeout seconds in all, then a 408 (and the connection is closed).
            with anyio.fail_after(config.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limits.max_body_bytes:
                        raise too_large()
                    chunks.append(chunk)
        except ClientDisconnect:
            raise ClientGone("in the middle of its request body") from None
        except TimeoutError:
            logger.warning("request body not received within %g s on %s %s (%d bytes so far)", config.body_timeout,
                           request.method, route_of(request.scope), size)
            raise APIError(408, f"the request body did not arrive within {config.body_timeout:g} s",
                           code="request_timeout", headers={"Connection": "close"}) from None
        return b"".join(chunks)

    def too_large() -> APIError:
        return APIError(413, f"the request body is larger than {limits.max_body_bytes} bytes",
                        code="request_too_large")

    class BodyRoute(APIRoute):
        """A route whose body, if it takes one, is read (within the limit) and parsed as
        strict JSON before FastAPI checks it against the route's model."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()
            if self.body_field is None:
                return handle

            # The caller is authenticated before a byte of the body is read: a request
            # without a valid key is a 401 whatever its body, which is never read.
            authentication = next(d.call for d in self.dependant.dependencies if d.call in (caller, chat_caller))

            async def read_then_handle(request: Request) -> Response:
                await authentication(request)  # type: ignore[misc]
                raw = await read_body(request)
                media_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
                if raw.strip() and not (media_type == "application/json" or media_type.endswith("+json")):
                    raise APIError(415, f"the request body must be JSON (Content-Type: application/json), got "
                                   f"{media_type[:80]!r}", code="unsupported_media_type")
                return await handle(ReadRequest(request, raw, parse_json(raw)))

            return read_then_handle

    app.router.route_class = BodyRoute

    # Chat work (personalizing, storing the exchange) has worker threads of its own, as many
    # as the pool every other route uses: a burst of chats queued for threads would
    # otherwise make /v1/models and the data API wait behind all of them. One per event loop.
    chat_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
        weakref.WeakKeyDictionary())

    async def in_chat_thread(function: Callable[..., Answer], *args: Any) -> Answer:
        loop = asyncio.get_running_loop()
        limiter = chat_limiters.get(loop)
        if limiter is None:
            limiter = chat_limiters[loop] = anyio.CapacityLimiter(config.worker_threads)
        return await anyio.to_thread.run_sync(functools.partial(function, *args), limiter=limiter)

    def authenticate(request: Request) -> Principal:
        tenants = request.headers.getlist("x-tailor-tenant")
        principal = service.authenticate(request.headers.get("authorization"), tenants[0] if tenants else None)
        if len(tenants) > 1:  # a proxy may read another one than we would: refuse, after the key
            raise invalid("the X-Tailor-Tenant header is given more than once", "X-Tailor-Tenant")
        fields = request_fields(request.scope)
        fields["tenant"], fields["key_id"] = principal.tenant, principal.key_id
        return principal

    # The first dependency of every route: its caller is authenticated (in a worker thread)
    # before any of its input is checked (a route with a body authenticates before reading
    # it, BodyRoute; the principal found then is kept in the request's state).
    async def caller(request: Request) -> Principal:
        if not hasattr(request.state, "principal"):
            request.state.principal = await run_in_threadpool(authenticate, request)
        return request.state.principal  # type: ignore[no-any-return]

    async def chat_caller(request: Request) -> Principal:
        if not hasattr(request.state, "principal"):
            request.state.principal = await in_chat_thread(authenticate, request)
        return request.state.principal  # type: ignore[no-any-return]

    # Liveness, readiness and the model list have a small pool of their own, so that a burst
    # of chats and data requests queued for threads never makes a load balancer's check wait.
    check_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
        weakref.WeakKeyDictionary())

    async def in_check_thread(function: Callable[..., Answer], *args: Any) -> Answer:
        loop = asyncio.get_running_loop()
        limiter = check_limiters.get(loop)
        if limiter is None:
            limiter = check_limiters[loop] = anyio.CapacityLimiter(CHECK_THREADS)
        return await anyio.to_thread.run_sync(functools.partial(function, *args), limiter=limiter)

    async def check_caller(request: Request) -> Principal:
        if not hasattr(request.state, "principal"):
            request.state.principal = await in_check_thread(authenticate, request)
        return request.state.principal  # type: ignore[no-any-return]

    @app.get("/health")
    async def health() -> Any:
        """Liveness: the process answers (no key needed; nothing is read)."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> Any:
        """Readiness: the store answers (no key needed); a 503 while it is unreachable."""
        await in_check_thread(service.check_store)
        return {"status": "ready"}

    @app.get("/v1/models")
    async def models(principal: Principal = Depends(check_caller)) -> Any:
        return service.models()

    async def until_answered(request: Request, waiting: Awaitable[Answer], cancel: Callable[[], bool]) -> Answer:
        """What ``waiting`` (a reply queued for the model) gives. A reply still queued after
        ``queue_timeout`` is cancelled (503); a client that goes away first cancels it too."""
        answer = asyncio.ensure_future(waiting)
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            done, _ = await asyncio.wait({answer, gone}, timeout=config.queue_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done and not cancel():  # under way on the model: wait for its end
                done, _ = await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
            if answer in done:
                return answer.result()
        finally:
            gone.cancel()
            if not answer.done():
                cancel()
                answer.cancel()
        if gone in done:
            raise ClientGone("while its reply waited for the model")
        raise APIError(503, f"the model is busy: the reply waited {config.queue_timeout:g} s in the queue without "
                       "starting; try again later", type="server_error", code="queue_timeout",
                       headers={"Retry-After": str(service.gate.retry_after())})

    async def prepare_chat(request: Request, principal: Principal, chat: ChatRequest) -> PreparedChat:
        """The chat personalized in worker threads; what the method asks the model before
        the prompt (``refine``'s style note) is queued like a reply and awaited here."""
        steps = service.prepare_chat_steps(principal, chat)
        asked = await in_chat_thread(advance_steps, steps, None)
        while not isinstance(asked, PreparedChat):
            asked = await in_chat_thread(advance_steps, steps, await model_answers(request, asked))
        return asked

    async def model_answers(request: Request, asked: list[GenerationRequest]) -> list[GenerationResult]:
        futures: list[Future[GenerationResult]] = []
        try:
            for generation in asked:
                futures.append(service.gate.submit(generation))  # a full queue: 429
            return [await until_answered(request, asyncio.wrap_future(future), future.cancel) for future in futures]
        finally:
            for future in futures:  # those not answered (the queue was full, a failure, a client gone)
                future.cancel()

    @app.post("/v1/chat/completions", responses={200: {
        "description": "the reply: a chat completion, or with stream: true a text/event-stream of chunks",
        "content": {"application/json": {}, "text/event-stream": {"schema": {"type": "string"}}}}})
    async def chat_completions(request: Request, principal: Principal = Depends(chat_caller),
                               chat: ChatRequest = Depends(bodies.chat)) -> Any:
        prepared = await prepare_chat(request, principal, chat)
        headers = reply_headers(prepared.context, (prepared.personalized - prepared.began) * 1000.0,
                                prepared.adapter)
        if not prepared.request.stream:
            future = service.gate.submit(prepared.generation)
            result = await until_answered(request, asyncio.wrap_future(future), future.cancel)
            reply: ChatOutcome = await in_chat_thread(service.finish_chat, prepared, result)
            headers["X-Tailor-Overhead-Ms"] = f"{reply.overhead_ms:.3f}"
            return JSONResponse(completion(reply.completion_id, reply.model, reply.created, reply.text,
                                           reply.finish_reason, reply.usage), headers=headers)
        pieces = service.gate.submit_stream(prepared.generation)
        first = await until_answered(request, pieces.next_async(), pieces.cancel)
        # A stream has no X-Tailor-Overhead-Ms: it is known only at its end, after the headers.
        events = stream_events(prepared.completion_id, service.model, prepared.created,
                               streamed(prepared, first, pieces), include_usage=prepared.request.include_usage)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={**headers, "Cache-Control": "no-cache"})

    async def streamed(prepared: PreparedChat, first: str | GenerationResult,
                       pieces: PieceStream) -> AsyncGenerator[str | ChatOutcome, None]:
        """The reply's pieces, then its outcome (the exchange stored once delivered whole).
        Closed early (the client went away), it stops the model on this reply."""
        try:
            item = first
            while isinstance(item, str):
                yield item
                # Let the loop run between pieces even when the next is ready: it is how a
                # client gone away is noticed (uvicorn stops writing, Starlette ends the
                # stream), instead of every piece failing on a closed socket.
                await asyncio.sleep(0)
                item = await pieces.next_async()
            yield await in_chat_thread(service.finish_chat, prepared, item)
        finally:
            pieces.cancel()

    add_rank_route(app, service, caller, model_answers)  # POST /v1/users/{user_id}/rank (server/ranking.py)

    @app.put("/v1/users/{user_id}")
    async def put_user(user_id: UserId, principal: Principal = Depends(caller),
                       attributes: dict[str, str] = Depends(bodies.attributes)) -> Any:
        return await run_in_threadpool(service.put_user, principal, user_id, attributes)

    @app.get("/v1/users/{user_id}")
    async def get_user(user_id: UserId, principal: Principal = Depends(caller)) -> Any:
        return await run_in_threadpool(service.get_user, principal, user_id)

    @app.delete("/v1/users/{user_id}")
    async def delete_user(user_id: UserId, principal: Principal = Depends(caller)) -> Any:
        return await run_in_threadpool(service.delete_user, principal, user_id)

    @app.post("/v1/users/{user_id}/records")
    async def add_records(user_id: UserId, principal: Principal = Depends(caller),
                          records: list[HistoryRecord] = Depends(bodies.records)) -> Any:
        return await run_in_threadpool(service.add_records, principal, user_id, records)

    @app.get("/v1/users/{user_id}/export")
    async def export_user(user_id: UserId, principal: Principal = Depends(caller)) -> Any:
        return await run_in_threadpool(service.export_user, principal, user_id)

    @app.get("/v1/users/{user_id}/memories")
    async def list_memories(user_id: UserId, principal: Principal = Depends(caller), include_superseded: bool = False,
                            k: MemoryCount = 10,
                            query: str | None = Query(None, max_length=limits.max_message_chars, pattern=NO_NUL)) -> Any:
        data = await run_in_threadpool(functools.partial(
            service.list_memories, principal, user_id, include_superseded=include_superseded, query=query, k=k))
        return {"object": "list", "data": data}

    @app.post("/v1/users/{user_id}/memories:flush")
    async def flush_memories(user_id: UserId, principal: Principal = Depends(caller),
                             timeout: FlushSeconds = 30) -> Any:
        deadline = time.monotonic() + timeout
        # Polled, not waited for in a worker thread: a waiting flush holds no thread.
        while True:
            state = await run_in_threadpool(service.flush_memories, principal, user_id, 0.0)
            if state["done"] or time.monotonic() >= deadline:
                return state
            await asyncio.sleep(0.02)

    @app.delete("/v1/users/{user_id}/memories/{memory_id}")
    async def delete_memory(user_id: UserId, memory_id: MemoryId, principal: Principal = Depends(caller)) -> Any:
        return await run_in_threadpool(service.delete_memory, principal, user_id, memory_id)

    add_feedback_routes(app, service, caller)
    return app


def reply_headers(context: ChatContext | None, personalize_ms: float, adapter: str | None) -> dict[str, str]:
    """The headers of a chat reply, streamed or not: how it was personalized (the adapter
    only when one was applied), and how long that took."""
    headers = {"X-Tailor-Personalize-Ms": f"{personalize_ms:.3f}",
               "X-Tailor-Granularity": context.granularity if context is not None else "global"}
    if adapter is not None:
        headers["X-Tailor-Adapter"] = adapter
    return headers


class ReadRequest(Request):
    """A request whose body has been read and parsed already (what FastAPI's body check reads)."""

    def __init__(self, request: Request, raw: bytes, value: Any) -> None:
        super().__init__(request.scope, request.receive)
        self.raw, self.value = raw, value

    async def body(self) -> bytes:
        return self.raw

    async def json(self) -> Any:
        return self.value


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone away (its body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


__all__ = ["OpenServerRefused", "create_app"]
