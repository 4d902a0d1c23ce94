"""What the server does, without the web framework: authenticate, read and write a user's
data, personalize and answer a chat. :mod:`tailor.server.app` maps routes onto it; the
users' data and their personalization are the library's
(:class:`~tailor.chat.users.ServedUsers`).

Every method takes the calling :class:`~tailor.server.keys.Principal` and turns the API's
``user_id`` into the store's id in the principal's namespace, so a tenant's key can only
ever reach its tenant's users. A user the caller cannot see is answered 404, exactly as
one that does not exist.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from tailor.adapters.serving import AdapterHook, default_adapters
from tailor.backends import load_backend
from tailor.backends.gate import ServedModel
from tailor.chat.personalizer import ChatContext
from tailor.chat.users import ServedUsers
from tailor.prompting.builder import PromptBudget, count_prompt_tokens
from tailor.server.config import ServeConfig, is_loopback
from tailor.server.keys import KeyStore, Principal
from tailor.server.responses import finish_reason, now
from tailor.server.validation import MEMORY_ID_PATTERN, APIError, ChatRequest, check_user_id, invalid, not_found
from tailor.store import SQLProfileStore, open_serving_store
from tailor.store.contract import UnknownUserError
from tailor.store.tenants import check_tenant, store_user_id
from tailor.types import Backend, GenerationRequest, GenerationResult, HistoryRecord, ModelSteps, answer_steps


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
        base_backend = backend if backend is not None else load_backend(config.backend)
        if getattr(base_backend, "choice", None) is not None:
            from tailor.backends.choice import announce

            announce(base_backend.choice)  # type: ignore[attr-defined]
        self.model = config.model or str(getattr(base_backend, "name", "tailor"))
        if memory_backend is None and config.memory_backend:
            memory_backend = load_backend(config.memory_backend)
        self.served_model = ServedModel(base_backend, self.store, config.adapter_task, memory_backend=memory_backend,
                                        max_batch=config.max_batch, max_queue=config.max_queue)
        self.backend, self.gate = self.served_model.backend, self.served_model.gate
        embedder = None
        if config.embedder:
            from tailor.embeddings import load_embedder

            embedder = load_embedder(config.embedder)
        self.users = ServedUsers(
            self.store, config.serve_method, backend=self.backend, notes_backend=self.served_model.notes_backend,
            background=self.served_model.background, reply=self.served_model.reply,
            adapters=adapters if adapters is not None else default_adapters(self.store),
            adapter_label=self.served_model.adapter_label, embedder=embedder, k=config.k,
            budget=PromptBudget(config.input_tokens, config.context_tokens), memory=config.memory,
            memory_method=config.memory_method, min_confidence=config.min_confidence, k_memories=config.k_memories,
            k_episodes=config.k_episodes, episode_tokens=config.episode_tokens,
            auto_create_users=config.auto_create_users)

    def close(self) -> None:
        self.users.close()
        self.served_model.close()
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
        return store_user_id(principal.tenant, check_user_id(user_id))

    @contextmanager
    def _user(self, principal: Principal, user_id: str, hint: str = "") -> Iterator[str]:
        """The store's id of ``user_id``; a user the store does not hold is a 404."""
        try:
            yield self.store_id(principal, user_id)
        except UnknownUserError:
            raise not_found(f"unknown user {user_id!r}{hint}", "user_id") from None

    # -- users and memories ---------------------------------------------------------------------

    def put_user(self, principal: Principal, user_id: str, attributes: dict[str, str]) -> dict[str, Any]:
        return {"user_id": user_id, **self.users.put_user(self.store_id(principal, user_id), attributes)}

    def get_user(self, principal: Principal, user_id: str) -> dict[str, Any]:
        with self._user(principal, user_id) as store_id:
            return {"user_id": user_id, **self.users.describe(store_id)}

    def add_records(self, principal: Principal, user_id: str, records: list[HistoryRecord]) -> dict[str, Any]:
        """Store a batch atomically (records and their index commit together, or nothing)."""
        with self._user(principal, user_id, f"; create it with PUT /v1/users/{user_id}") as store_id:
            return {"user_id": user_id, **self.users.add_records(store_id, records)}

    def export_user(self, principal: Principal, user_id: str) -> dict[str, Any]:
        with self._user(principal, user_id) as store_id:
            return self.users.export(store_id, user_id=user_id, tenant=principal.tenant)

    def delete_user(self, principal: Principal, user_id: str) -> dict[str, Any]:
        """Delete the user and everything derived from them."""
        with self._user(principal, user_id) as store_id:
            return {"user_id": user_id, "deleted": True, "adapters_deleted": self.users.delete(store_id)}

    def list_memories(self, principal: Principal, user_id: str, *, include_superseded: bool = False,
                      query: str | None = None, k: int = 10) -> list[dict[str, Any]]:
        with self._user(principal, user_id) as store_id:
            return self.users.memories(store_id, include_superseded=include_superseded, query=query, k=k)

    def delete_memory(self, principal: Principal, user_id: str, memory_id: str) -> dict[str, Any]:
        with self._user(principal, user_id) as store_id:
            deleted = self.users.delete_memory(store_id, memory_id if MEMORY_ID_PATTERN.fullmatch(memory_id) else None)
        if not deleted:
            raise not_found(f"user {user_id!r} has no memory {memory_id[:80]!r}", "memory_id")
        return {"id": memory_id, "deleted": True, "deleted_ids": deleted}

    def flush_memories(self, principal: Principal, user_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the user's queued messages have been through extraction."""
        with self._user(principal, user_id) as store_id:
            return {"user_id": user_id, **self.users.flush_memories(store_id, timeout)}

    # -- chat -----------------------------------------------------------------------------------

    def chat(self, principal: Principal, request: ChatRequest) -> ChatOutcome:
        """Personalize and answer a chat request, waiting in this thread; its exchange is
        queued for memory extraction. (The HTTP server does the same in steps,
        :meth:`prepare_chat_steps` with the model's answers to its requests awaited
        through :attr:`gate`, the reply through :attr:`gate`, :meth:`finish_chat`, so that
        no request handler holds a worker thread while the model works for it.)"""
        prepared = self.prepare_chat(principal, request)
        return self.finish_chat(prepared, self.gate.generate(prepared.generation))

    def prepare_chat(self, principal: Principal, request: ChatRequest) -> PreparedChat:
        """Personalize a chat request: the prompt for the model, and what went into it (a
        style note, for ``refine``, waited for in this thread)."""
        return answer_steps(self.prepare_chat_steps(principal, request), self._ask_model)

    def _ask_model(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return [self.gate.generate(request) for request in requests]

    def prepare_chat_steps(self, principal: Principal, request: ChatRequest) -> ModelSteps[PreparedChat]:
        """:meth:`prepare_chat` as steps (:data:`~tailor.types.ModelSteps`): what the method
        asks the model before the prompt (``refine``'s style note; nothing for the other
        methods) is yielded, for the caller to queue through :attr:`gate` like a reply."""
        began = time.perf_counter()
        store_id = self.store_id(principal, request.user) if request.user is not None else None
        served = yield from self.users.chat_steps(store_id, request.messages, request.last_user_message,
                                                  max_new_tokens=request.max_tokens, stop=request.stop)
        return PreparedChat(request=request, store_id=store_id, context=served.context, generation=served.generation,
                             completion_id=f"chatcmpl-{uuid.uuid4().hex}", created=now(), began=began,
                             personalized=time.perf_counter(), adapter=served.adapter)

    def finish_chat(self, prepared: PreparedChat, result: GenerationResult) -> ChatOutcome:
        """Keep the exchange for memory extraction (a streamed reply only once delivered
        whole); count the tokens."""
        generated = time.perf_counter()
        request, store_id, context = prepared.request, prepared.store_id, prepared.context
        if context is not None and store_id is not None:
            self.users.remember(store_id, prepared.completion_id, request.last_user_message, result.text)
            # Kept so that a rating or an edit of this reply can name it (tailor.chat.feedback).
            self.users.feedback.keep_reply(store_id, prepared.completion_id, request.messages, result.text,
                                           prepared.adapter)
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

    def check_store(self) -> None:
        """Returns when the store answers; raises StoreUnavailableError (a 503) when not."""
        self.store.ping()

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "tailor"}]}


__all__ = ["ChatOutcome", "PreparedChat", "TailorService"]
