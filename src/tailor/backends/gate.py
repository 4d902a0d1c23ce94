"""One model shared by many callers: the thread that runs it, and the queue of replies
waiting for it, batched (:class:`BackendGate`); a server's model and the gates its replies
and its background work wait at (:class:`ServedModel`).

A streamed reply is handed on piece by piece as the model makes it (:class:`PieceStream`).
A backend that streams (:class:`~tailor.backends.contract.StreamingBackend`: echo,
transformers and the default model, with or without adapters, and OpenAI-compatible
servers) gives each piece of text as soon as the model has produced it, so the first piece
leaves after the first token. Any other backend (llama.cpp) generates the whole reply
first, which is then cut into word-sized pieces. ``tailor serve`` answers every chat
through one gate (:mod:`tailor.server.app`).
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass

from tailor.adapters.serving import serve_adapters
from tailor.backends.contract import Backend, BackendError, StreamingBackend, TextStream
from tailor.store import SQLProfileStore
from tailor.types import GenerationRequest, GenerationResult

_CHUNK = re.compile(r"\S+\s*|\s+")


class GateFull(Exception):
    """The reply queue is full; the caller should try again after ``retry_after`` seconds."""

    def __init__(self, waiting: int, limit: int, retry_after: int) -> None:
        super().__init__(f"the model is busy: {waiting} replies are already waiting for it (the limit is {limit}); "
                         f"try again in {retry_after} s")
        self.waiting = waiting
        self.limit = limit
        self.retry_after = retry_after


class GateClosed(BackendError):
    """The server is shutting down: the model takes no more work."""


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class PieceStream:
    """A streamed reply's pieces as the model thread makes them, for one reader (a thread
    or a coroutine): each ``str`` piece, then the :class:`GenerationResult` at the end.
    The model makes the whole reply as fast as it can, whatever the pace of the reader.

    :meth:`cancel` stops it (a client that went away): a stream still queued leaves the
    queue at once; one under way is closed after the piece in hand.
    """

    def __init__(self, future: Future[GenerationResult]) -> None:
        self._future = future
        self._lock = threading.Lock()
        self._items: deque[str | GenerationResult | _Failed] = deque()
        self._waker: Future[None] | None = None
        self.cancelled = False

    def _put(self, item: str | GenerationResult | _Failed) -> None:
        with self._lock:
            self._items.append(item)
            waker, self._waker = self._waker, None
        if waker is not None:
            try:
                waker.set_result(None)
            except InvalidStateError:  # the reader stopped waiting (cancelled)
                pass

    def _take(self) -> tuple[str | GenerationResult | _Failed | None, Future[None] | None]:
        with self._lock:
            if self._items:
                return self._items.popleft(), None
            self._waker = Future()
            return None, self._waker

    @staticmethod
    def _unwrap(item: str | GenerationResult | _Failed) -> str | GenerationResult:
        if isinstance(item, _Failed):
            raise item.error
        return item

    def next(self, timeout: float | None = None) -> str | GenerationResult:
        """The next piece, or the result once the reply is whole; raises the model's error."""
        while True:
            item, waker = self._take()
            if item is not None:
                return self._unwrap(item)
            assert waker is not None
            waker.result(timeout)

    async def next_async(self) -> str | GenerationResult:
        """:meth:`next` for a coroutine: waiting holds no thread."""
        while True:
            item, waker = self._take()
            if item is not None:
                return self._unwrap(item)
            assert waker is not None
            await asyncio.wrap_future(waker)

    def cancel(self) -> bool:
        """Stop the reply; whether it was still queued (so it never reached the model)."""
        self.cancelled = True
        return self._future.cancel()


@dataclass(eq=False)
class _Job:
    request: GenerationRequest
    future: Future[GenerationResult]
    pieces: PieceStream | None = None


class BackendGate:
    """The one thread that runs the model, and the queue of replies waiting for it.

    Local models are not thread-safe and gain nothing from interleaving, so one dedicated
    thread makes every call. Callers never wait inside it: a reply is queued and answered
    through a future (or a :class:`PieceStream`), which a request handler awaits without
    holding a worker thread, so no number of waiting replies can starve the work the
    model needs to finish. At most ``max_queue`` replies wait; one more raises
    :class:`GateFull` at once (the server answers 429 with ``Retry-After``).

    Replies, plain and streamed, are served in arrival order: when the head of the queue is
    a plain reply it goes to the model as one batch with the oldest other plain replies
    waiting (up to ``max_batch``; a batch of 4 on a CPU takes far less than 4 single
    calls); a streamed reply goes alone. A reply cancelled while queued (its client went
    away) leaves the queue at once. Background work (memory extraction, summaries) runs
    only while no reply waits, and is not counted against ``max_queue``.
    """

    def __init__(self, backend: Backend, *, max_batch: int = 1, max_queue: int = 64) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self.backend = backend
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._changed = threading.Condition()
        self._replies: deque[_Job] = deque()
        self._background: deque[_Job] = deque()
        self._running = 0
        self._closed = False
        self._seconds_per_call = 1.0  # a running mean, for Retry-After
        self._thread = threading.Thread(target=self._serve, name="tailor-model", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        """Replies queued for the model (not yet started)."""
        with self._changed:
            return len(self._replies)

    @property
    def busy(self) -> bool:
        """Whether the model is working on something now."""
        with self._changed:
            return self._running > 0

    # -- queueing -------------------------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        """Queue a reply; its future holds the result. Raises :class:`GateFull` when
        ``max_queue`` replies already wait. Cancelling the future while the reply is
        queued takes it out of the queue."""
        return self._queue(_Job(request, Future())).future

    def submit_stream(self, request: GenerationRequest) -> PieceStream:
        """Queue a streamed reply (raises :class:`GateFull` as :meth:`submit` does)."""
        future: Future[GenerationResult] = Future()
        job = self._queue(_Job(request, future, PieceStream(future)))
        assert job.pieces is not None
        return job.pieces

    def _queue(self, job: _Job, *, background: bool = False) -> _Job:
        with self._changed:
            if self._closed:
                raise GateClosed("the server is shutting down")
            if background:
                self._background.append(job)
            else:
                if len(self._replies) >= self.max_queue:
                    raise GateFull(len(self._replies), self.max_queue, self.retry_after())
                self._replies.append(job)
            self._changed.notify_all()
        job.future.add_done_callback(lambda future: self._drop(job) if future.cancelled() else None)
        return job

    def _drop(self, job: _Job) -> None:
        with self._changed:
            for queue in (self._replies, self._background):
                try:
                    queue.remove(job)
                except ValueError:
                    pass

    def retry_after(self) -> int:
        """About how long the model takes for one call, when places in the queue free up
        again (whole seconds, 1 to 60)."""
        return max(1, min(60, math.ceil(self._seconds_per_call)))

    def generate(self, request: GenerationRequest, *, background: bool = False) -> GenerationResult:
        """A reply, waiting in the calling thread (for threads of their own: background
        workers, scripts; a request handler awaits :meth:`submit` instead)."""
        if background:
            return self._queue(_Job(request, Future()), background=True).future.result()
        return self.submit(request).result()

    def stream(self, request: GenerationRequest) -> TextStream:
        """A streamed reply read in the calling thread; closing it cancels the reply."""
        pieces = self.submit_stream(request)
        try:
            while True:
                item = pieces.next()
                if isinstance(item, GenerationResult):
                    return item
                yield item
        finally:
            pieces.cancel()

    def close(self, timeout: float = 5.0) -> None:
        """Refuse new work, fail what is queued, and stop after the call in hand."""
        with self._changed:
            self._closed = True
            queued = [*self._replies, *self._background]
            self._replies.clear()
            self._background.clear()
            self._changed.notify_all()
        for job in queued:
            if job.future.set_running_or_notify_cancel():
                self._fail(job, GateClosed("the server is shutting down"))
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- the model thread -----------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._changed:
                while not (self._closed or self._replies or self._background):
                    self._changed.wait()
                if self._closed:
                    return
                if self._replies:
                    batch = self._next_batch()
                else:
                    batch = [self._background.popleft()]
                self._running = len(batch)
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
            began = time.perf_counter()
            try:
                if len(batch) == 1 and batch[0].pieces is not None:
                    self._run_stream(batch[0], batch[0].pieces)
                elif batch:
                    self._run_batch(batch)
            finally:
                with self._changed:
                    self._running = 0
                    if batch:
                        self._seconds_per_call = 0.8 * self._seconds_per_call + 0.2 * (time.perf_counter() - began)

    def _next_batch(self) -> list[_Job]:
        """The head of the queue: a stream alone, or the oldest plain replies (``max_batch``)."""
        head = self._replies[0]
        if head.pieces is not None:
            return [self._replies.popleft()]
        batch = [job for job in self._replies if job.pieces is None][:self.max_batch]
        for job in batch:
            self._replies.remove(job)
        return batch

    def _run_batch(self, batch: list[_Job]) -> None:
        try:
            results = self.backend.generate([job.request for job in batch])
            if len(results) != len(batch):
                raise BackendError(f"the model gave {len(results)} answers to {len(batch)} requests")
        except Exception as error:  # noqa: BLE001 (handed to every reply of the batch, raised there)
            for job in batch:
                self._fail(job, error)
            return
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)

    def _run_stream(self, job: _Job, pieces: PieceStream) -> None:
        try:
            if isinstance(self.backend, StreamingBackend):
                source = self.backend.stream(job.request)
            else:
                source = _chunked(self.backend.generate([job.request])[0])
            try:
                while not pieces.cancelled:
                    try:
                        piece = next(source)
                    except StopIteration as end:
                        result: GenerationResult = end.value
                        job.future.set_result(result)
                        pieces._put(result)
                        return
                    pieces._put(piece)
            finally:
                source.close()
            self._fail(job, BackendError("the streamed reply was cancelled"))
        except Exception as error:  # noqa: BLE001 (handed to the reader of the stream)
            self._fail(job, error)

    @staticmethod
    def _fail(job: _Job, error: BaseException) -> None:
        job.future.set_exception(error)
        if job.pieces is not None:
            job.pieces._put(_Failed(error))


class ServedModel:
    """The model behind a server, and the gates its work waits at. Replies come from
    :attr:`backend` through :attr:`gate`, batched: ``base``, or a view of it that applies
    each user's adapter for ``adapter_task``
    (:func:`~tailor.adapters.serving.serve_adapters`; :attr:`adapter_label` names the
    adapter of a user, ``None`` when none is served). Memory extraction and summaries use
    :attr:`notes_backend` (``memory_backend``, or the base model, without adapters) through
    :meth:`background`, at background priority."""

    def __init__(self, base: Backend, store: SQLProfileStore, adapter_task: str | None, *,
                 memory_backend: Backend | None = None, max_batch: int = 1, max_queue: int = 64) -> None:
        self.base = base
        self.backend, self.adapter_label = serve_adapters(base, store, adapter_task)
        self.gate = BackendGate(self.backend, max_batch=max_batch, max_queue=max_queue)
        self.notes_backend = memory_backend or base
        if memory_backend is not None:
            self._background_gate = BackendGate(memory_backend)
        elif self.backend is base:
            self._background_gate = self.gate
        else:  # the base model, without adapters; the model's own lock keeps calls apart
            self._background_gate = BackendGate(base)

    def background(self, request: GenerationRequest) -> GenerationResult:
        return self._background_gate.generate(request, background=True)

    def reply(self, request: GenerationRequest) -> GenerationResult:
        return self.gate.generate(request)

    def close(self) -> None:
        for gate in {id(self.gate): self.gate, id(self._background_gate): self._background_gate}.values():
            gate.close()


def _chunked(result: GenerationResult) -> TextStream:
    yield from _CHUNK.findall(result.text)
    return result


__all__ = ["BackendGate", "GateClosed", "GateFull", "PieceStream", "ServedModel"]
