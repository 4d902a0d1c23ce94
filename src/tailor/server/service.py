"""What the server does, without the web framework: authenticate, read and write a user's
data, personalize and answer a chat. :mod:`tailor.server.app` maps routes onto it.

Every method takes the calling :class:`~tailor.server.keys.Principal` and turns the API's
``user_id`` into the store's id in the principal's namespace, so a tenant's key can only
ever reach its tenant's users. A user the caller cannot see is answered 404, exactly as
one that does not exist.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from tailor.backends import load_backend
from tailor.backends.base import Backend
from tailor.memory.extraction import FactExtractor
from tailor.memory.facts import Fact
from tailor.memory.store import MemoryStore
from tailor.memory.worker import ExtractionWorker
from tailor.profiles import SQLiteProfileStore, SQLProfileStore, open_store
from tailor.profiles.base import UnknownUserError
from tailor.prompting.builder import PromptBudget
from tailor.server.adapters import serve_adapters
from tailor.server.config import ServeConfig, is_loopback
from tailor.server.generation import BackendGate, count_prompt_tokens, finish_reason, now
from tailor.server.hooks import AdapterHook, default_adapters
from tailor.server.keys import KeyStore, Principal, check_tenant
from tailor.server.personalize import ChatContext, ChatPersonalizer, serving_personalizer
from tailor.server.profile_notes import SummaryWorker, tenant_persona_chooser
from tailor.server.record_index import RecordIndex
from tailor.server.record_vectors import RecordVectors
from tailor.server.validation import MEMORY_ID_PATTERN, APIError, ChatRequest, check_user_id, invalid, not_found
from tailor.types import GenerationRequest, GenerationResult, HistoryRecord

logger = logging.getLogger(__name__)

# A user message longer than this is cut before it is sent for fact extraction.
MAX_EXTRACTION_CHARS = 8000


@dataclass(frozen=True)
class ChatOutcome:
    """A finished reply, what personalized it (``context``; ``None``: served as is), and
    what it cost around generation (milliseconds)."""

    completion_id: str
    model: str
    created: int
    text: str
    finish_reason: str
    usage: dict[str, int]
    context: ChatContext | None
    personalize_ms: float
    overhead_ms: float
    adapter: str | None = None
    """The adapter that answered (for a known user, ``context.adapter``)."""


@dataclass(frozen=True)
class PreparedChat:
    """A chat request, personalized and ready for the model."""

    request: ChatRequest
    store_id: str | None
    context: ChatContext | None
    generation: GenerationRequest
    completion_id: str
    created: int
    began: float
    personalized: float
    """``time.perf_counter()`` when the request came in, and when personalization was done."""
    adapter: str | None = None


def open_serving_store(target: str) -> SQLProfileStore:
    """The store ``tailor serve --store`` names: a SQLite file (path or ``sqlite:///path``)
    or a PostgreSQL database (``postgresql://...``); keys, memories and indexes go beside
    the profiles, so the in-memory store, which has no room for them, is refused."""
    if target in (":memory:", "memory"):  # a throwaway server (tests): SQLite in memory
        return SQLiteProfileStore(":memory:")
    opened = open_store(target)
    if not isinstance(opened, SQLProfileStore):
        opened.close()
        # A configuration mistake (the CLI reports ValueErrors as such), not a caller's type error.
        raise ValueError(  # noqa: TRY004
            f"tailor serve needs a SQLite file (a path or sqlite:///path) or a postgresql:// URL, got {target!r}")
    return opened


def unauthorized(message: str) -> APIError:
    return APIError(401, message, type="authentication_error", code="invalid_api_key")


class TailorService:
    """The store, keys, index, memory and model behind one server."""

    def __init__(self, config: ServeConfig, *, backend: Backend | None = None,
                 store: SQLProfileStore | None = None, adapters: AdapterHook | None = None,
                 memory_backend: Backend | None = None) -> None:
        if store is not None and not isinstance(store, SQLProfileStore):
            raise TypeError(f"tailor serve keeps keys and memories beside the profiles and needs a SQLite or "
                            f"PostgreSQL store, got {type(store).__name__}")
        self.config = config
        self._owns_store = store is None
        self.store = store if store is not None else open_serving_store(config.store)
        self.keys = KeyStore(self.store)
        self.index = RecordIndex(self.store)
        self.base_backend = backend if backend is not None else load_backend(config.backend)
        # The backend replies come from: the base model, or a view of it that applies each
        # user's adapter. Memory extraction and summaries use the base model.
        self.backend, adapter_label = serve_adapters(self.base_backend, self.store, config.adapter_task)
        self._adapter_label = adapter_label
        self.gate = BackendGate(self.backend, max_batch=config.max_batch, max_queue=config.max_queue)
        self.adapters: AdapterHook = adapters if adapters is not None else default_adapters(self.store)
        self.model = config.model or str(getattr(self.base_backend, "name", "tailor"))
        method = config.serve_method
        embedder = None
        if config.embedder:
            from tailor.embeddings import load_embedder

            embedder = load_embedder(config.embedder)
        stored = method.retrieval in ("dense", "hybrid")
        self.vectors = RecordVectors(self.store, embedder) if stored and embedder is not None else None
        if memory_backend is None and config.memory_backend:
            memory_backend = load_backend(config.memory_backend)
        if memory_backend is not None:
            self._memory_gate = BackendGate(memory_backend)
        elif self.backend is self.base_backend:
            self._memory_gate = self.gate
        else:  # the base model, without adapters; the model's own lock keeps calls apart
            self._memory_gate = BackendGate(self.base_backend)
        self.memory: MemoryStore | None = None
        self.worker: ExtractionWorker | None = None
        if config.memory:
            from tailor.memory.episodes import EpisodeMethod

            self.memory = MemoryStore(self.store, embedder=embedder,
                                      episode_method=EpisodeMethod.parse(config.memory_method))
            self.worker = ExtractionWorker(self.memory, self._extract, min_confidence=config.min_confidence)
        self.summaries: SummaryWorker | None = None
        if method.summary:
            self.summaries = SummaryWorker(self.store, memory_backend or self.base_backend, self._background)
        # The personalizer tailor eval measures for this method, plus the chat additions.
        library = serving_personalizer(
            method, store=self.store, index=self.index, vectors=self.vectors, embedder=embedder, k=config.k,
            budget=PromptBudget(config.input_tokens, config.context_tokens), count_tokens=self.backend.count_tokens,
            summaries=self.summaries, personas=tenant_persona_chooser(self.store, embedder) if method.persona else None)
        self.personalizer = ChatPersonalizer(
            self.store, library, self.memory, k_memories=config.k_memories, count_tokens=self.backend.count_tokens,
            adapter_label=adapter_label, k_episodes=config.k_episodes, episode_tokens=config.episode_tokens)

    def _background(self, request: GenerationRequest) -> GenerationResult:
        return self._memory_gate.generate(request, background=True)

    def _extract(self, text: str) -> list[Fact]:
        # Statements found by code, each judged by the model (yes/no scored): a 135M model can do that.
        return FactExtractor(self._judge).extract(text[:MAX_EXTRACTION_CHARS])

    def _judge(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return [self._background(request) for request in requests]

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
        if self.summaries is not None:
            self.summaries.close()
        for gate in {id(self.gate): self.gate, id(self._memory_gate): self._memory_gate}.values():
            gate.close()
        if self._owns_store:
            self.store.close()

    # -- who is calling -------------------------------------------------------------------------

    def authenticate(self, authorization: str | None, tenant: str | None = None) -> Principal:
        """The caller of a request with these ``Authorization`` and ``X-Tailor-Tenant`` headers."""
        if not self.keys.any_active():
            if not is_loopback(self.config.host):
                raise unauthorized("this server has no API keys and is not bound to loopback, so it serves no one; "
                                   "create a key with `tailor keys create`")
            principal = Principal(key_id=None, tenant=None, admin=True)
        else:
            scheme, _, token = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise unauthorized("this server needs an API key: send the header 'Authorization: Bearer KEY'")
            verified = self.keys.verify(token.strip())
            if verified is None:
                raise unauthorized("the API key is invalid or revoked")
            principal = verified
        if tenant is not None:
            if not principal.admin:
                if tenant != principal.tenant:
                    raise APIError(403, "a tenant key cannot act for another tenant", type="permission_error",
                                   param="X-Tailor-Tenant", code="forbidden")
            else:
                try:
                    principal = replace(principal, tenant=check_tenant(tenant))
                except ValueError as error:
                    raise invalid(str(error), "X-Tailor-Tenant") from None
        return principal

    @staticmethod
    def store_id(principal: Principal, user_id: str) -> str:
        return principal.store_user_id(check_user_id(user_id))

    def _require(self, principal: Principal, user_id: str) -> str:
        store_id = self.store_id(principal, user_id)
        if not self.store.has_user(store_id):
            raise not_found(f"unknown user {user_id!r}", "user_id")
        return store_id

    # -- users ----------------------------------------------------------------------------------

    def put_user(self, principal: Principal, user_id: str, attributes: dict[str, str]) -> dict[str, Any]:
        store_id = self.store_id(principal, user_id)
        with self.store.transaction():
            created = not self.store.has_user(store_id)
            self.store.set_attributes(store_id, attributes)
            profile_attributes = dict(self.store.get_profile(store_id).attributes)
        return {"user_id": user_id, "created": created, "attributes": profile_attributes}

    def get_user(self, principal: Principal, user_id: str) -> dict[str, Any]:
        store_id = self.store_id(principal, user_id)
        try:
            with self.store.transaction():
                attributes = dict(self.store.get_profile(store_id).attributes)
                records = self.store.count_records(store_id)
                memories = len(self.memory.list_memories(store_id)) if self.memory is not None else 0
        except UnknownUserError:
            raise not_found(f"unknown user {user_id!r}", "user_id") from None
        return {"user_id": user_id, "attributes": attributes, "records": records, "memories": memories}

    def add_records(self, principal: Principal, user_id: str, records: list[HistoryRecord]) -> dict[str, Any]:
        """Store a batch atomically (records and their index commit together, or nothing)."""
        store_id = self.store_id(principal, user_id)
        # Vectors are computed before the write lock is taken, and stored with the batch.
        vectors = self.vectors.vectors_for(records) if self.vectors is not None else {}
        with self.store.transaction():
            if not self.store.has_user(store_id):
                raise not_found(f"unknown user {user_id!r}; create it with PUT /v1/users/{user_id}", "user_id")
            added = self.store.add_records(store_id, records)
            if self.vectors is not None:
                self.vectors.store_vectors(store_id, vectors)
            self.index.refresh(store_id)
            total = self.store.count_records(store_id)
        if added and self.summaries is not None:
            self.summaries.submit(store_id)
        return {"user_id": user_id, "added": added, "records": total}

    def export_user(self, principal: Principal, user_id: str) -> dict[str, Any]:
        store_id = self.store_id(principal, user_id)
        try:
            with self.store.transaction():  # one snapshot of everything
                data = self.store.export_user(store_id)
                if self.memory is not None:
                    data.update(self.memory.export(store_id))
        except UnknownUserError:
            raise not_found(f"unknown user {user_id!r}", "user_id") from None
        data["user_id"] = user_id
        data["tenant"] = principal.tenant
        adapters = self.adapters.metadata(store_id)
        if adapters is not None:
            data["adapters"] = adapters
        return data

    def delete_user(self, principal: Principal, user_id: str) -> dict[str, Any]:
        """Delete the user and everything derived from them; adapters first, so a failure
        there leaves the user whole (and the delete can be retried)."""
        store_id = self._require(principal, user_id)
        adapters = self.adapters.delete(store_id)
        if not self.store.delete_user(store_id):
            raise not_found(f"unknown user {user_id!r}", "user_id")
        self.index.forget(store_id)
        if self.vectors is not None:
            self.vectors.forget(store_id)
        return {"user_id": user_id, "deleted": True, "adapters_deleted": adapters}

    # -- memories -------------------------------------------------------------------------------

    def list_memories(self, principal: Principal, user_id: str, *, include_superseded: bool = False,
                      query: str | None = None, k: int = 10) -> list[dict[str, Any]]:
        store_id = self._require(principal, user_id)
        if self.memory is None:
            return []
        if query is not None:
            return [memory.to_dict() for memory in self.memory.search(store_id, query, k)]
        memories = self.memory.list_memories(store_id, include_superseded=include_superseded)
        if not include_superseded:
            return [memory.to_dict() for memory in memories]
        history = self.memory.history(store_id)
        return [{**memory.to_dict(), "history": history.get(memory.id, [])} for memory in memories]

    def delete_memory(self, principal: Principal, user_id: str, memory_id: str) -> dict[str, Any]:
        store_id = self._require(principal, user_id)
        deleted: list[str] = []
        if self.memory is not None and MEMORY_ID_PATTERN.fullmatch(memory_id):
            deleted = self.memory.delete(store_id, memory_id)
        if not deleted:
            raise not_found(f"user {user_id!r} has no memory {memory_id[:80]!r}", "memory_id")
        return {"id": memory_id, "deleted": True, "deleted_ids": deleted}

    def flush_memories(self, principal: Principal, user_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the user's queued messages have been through extraction."""
        store_id = self._require(principal, user_id)
        if self.worker is None:
            return {"user_id": user_id, "done": True, "pending": 0}
        done = self.worker.flush(store_id, timeout)
        return {"user_id": user_id, "done": done, "pending": self.worker.pending(store_id)}

    # -- chat -----------------------------------------------------------------------------------

    def chat(self, principal: Principal, request: ChatRequest) -> ChatOutcome:
        """Personalize and answer a chat request, waiting in this thread; its exchange is
        queued for memory extraction. (The HTTP server does the same in three steps,
        :meth:`prepare_chat`, the model through :attr:`gate`, :meth:`finish_chat`, so
        that no request handler holds a worker thread while its reply waits.)"""
        prepared = self.prepare_chat(principal, request)
        return self.finish_chat(prepared, self.gate.generate(prepared.generation))

    def prepare_chat(self, principal: Principal, request: ChatRequest) -> PreparedChat:
        """Personalize a chat request: the prompt for the model, and what went into it."""
        began = time.perf_counter()
        store_id = self.store_id(principal, request.user) if request.user is not None else None
        context = self._context(store_id, request.last_user_message) if store_id is not None else None
        messages = self.personalizer.messages(request.messages, context) if context is not None else request.messages
        generation = GenerationRequest(messages, max_new_tokens=request.max_tokens, stop=request.stop,
                                       user_id=store_id if context is not None else None)
        # A request served as is still runs with the global adapter, where one is served.
        adapter = context.adapter if context is not None else (
            self._adapter_label(None) if self._adapter_label is not None else None)
        return PreparedChat(request=request, store_id=store_id, context=context, generation=generation,
                             completion_id=f"chatcmpl-{uuid.uuid4().hex}", created=now(), began=began,
                             personalized=time.perf_counter(), adapter=adapter)

    def finish_chat(self, prepared: PreparedChat, result: GenerationResult) -> ChatOutcome:
        """Keep the exchange for memory extraction (a streamed reply only once delivered
        whole); count the tokens."""
        generated = time.perf_counter()
        request, store_id, context = prepared.request, prepared.store_id, prepared.context
        if context is not None and store_id is not None and self.memory is not None and self.worker is not None:
            try:
                message_id = self.memory.add_exchange(store_id, prepared.completion_id, request.last_user_message,
                                                      result.text)
                self.worker.submit(store_id, message_id)
            except UnknownUserError:
                pass  # deleted while we answered: keep nothing
        prompt_tokens = count_prompt_tokens(self.backend, prepared.generation.messages)
        completion_tokens = result.tokens or self.backend.count_tokens(result.text)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        finished = time.perf_counter()
        return ChatOutcome(
            completion_id=prepared.completion_id, model=self.model, created=prepared.created, text=result.text,
            finish_reason=finish_reason(result, request.max_tokens), usage=usage, context=context,
            personalize_ms=(prepared.personalized - prepared.began) * 1000.0,
            overhead_ms=((finished - prepared.began) - (generated - prepared.personalized)) * 1000.0,
            adapter=prepared.adapter)

    def _context(self, store_id: str, query: str) -> ChatContext | None:
        try:
            context = self.personalizer.context(store_id, query)
            if context is None and self.config.auto_create_users:
                self.store.set_attributes(store_id, {})
                context = ChatContext()
            return context
        except UnknownUserError:  # deleted between two reads
            return None

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "tailor"}]}


__all__ = ["ChatOutcome", "PreparedChat", "TailorService"]
