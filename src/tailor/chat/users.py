"""A store's users as one served method sees them, kept in step by store id.

Everything a served user has goes through :class:`ServedUsers`: their records and the
indexes a request ranks them with (:mod:`tailor.retrieval.stored`), their memories and the
messages waiting for fact extraction (:mod:`tailor.memory`), the replies served to them and
their feedback on them (:mod:`tailor.chat.feedback`), their summary
(:class:`~tailor.chat.summaries.SummaryWorker`) and their adapters (an
:class:`~tailor.adapters.serving.AdapterHook`); deleting a user deletes all of it. A chat's
context and prompt come from :attr:`ServedUsers.personalizer`, the personalizer ``tailor
eval`` builds for the method plus the chat additions (:mod:`tailor.chat.personalizer`);
:meth:`ServedUsers.chat_steps` makes the request for the model from them.

Ids here are the store's: mapping an API's ``user_id`` into a tenant's namespace, and
answering an unknown user (:class:`~tailor.store.contract.UnknownUserError`), is the
server's business.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tailor.adapters.serving import AdapterHook, AdapterLabel
from tailor.chat.feedback import ServedFeedback
from tailor.chat.personalizer import ChatContext, ChatPersonalizer
from tailor.chat.summaries import GenerateOne, QueuedBackend, SummaryWorker
from tailor.embeddings.embedder import Embedder
from tailor.memory.episodes import EpisodeMethod
from tailor.memory.extraction import FactExtractor
from tailor.memory.facts import Fact
from tailor.memory.store import MemoryStore
from tailor.memory.worker import ExtractionWorker
from tailor.methods import BuildContext, MethodSpec
from tailor.personas.tenants import tenant_persona_chooser
from tailor.prompting.builder import PromptBudget
from tailor.retrieval.record_index import RecordIndex
from tailor.retrieval.record_vectors import RecordVectors
from tailor.retrieval.stored import StoredIndexes
from tailor.store import SQLProfileStore
from tailor.store.contract import UnknownUserError
from tailor.tasks.chat import CHAT_TASK
from tailor.types import Backend, GenerationRequest, GenerationResult, HistoryRecord, ModelSteps, answer_steps

# A user message longer than this is cut before it is sent for fact extraction.
MAX_EXTRACTION_CHARS = 8000


@dataclass(frozen=True)
class ServedChat:
    """A chat's request for the model, what personalized it (``context``; ``None``: sent as
    is), and the adapter the model runs it with (``None``: the base model)."""

    generation: GenerationRequest
    context: ChatContext | None
    adapter: str | None


class ServedUsers:
    """The users of ``store`` personalized with ``method``.

    ``backend`` is the model replies come from (its tokenizer counts prompt budgets);
    ``notes_backend`` the model that writes summaries and judges facts, each call made
    through ``background`` (the server's queue, at background priority). ``refine``'s
    style notes are written by ``backend`` through ``reply`` (the server's queue, as a
    reply) when a chat's context is taken with :meth:`context`; :meth:`context_steps`
    hands their requests to the caller instead. ``memory`` turns
    on memories and episodes (found by ``memory_method``); ``auto_create_users`` makes a
    chat for an unknown user create them.
    """

    def __init__(self, store: SQLProfileStore, method: MethodSpec, *, backend: Backend, notes_backend: Backend,
                 background: GenerateOne, reply: GenerateOne, adapters: AdapterHook,
                 adapter_label: AdapterLabel | None, embedder: Embedder | None, k: int | None, budget: PromptBudget,
                 memory: bool, memory_method: str, min_confidence: float, k_memories: int, k_episodes: int,
                 episode_tokens: int, auto_create_users: bool) -> None:
        self.store, self.adapters, self._background = store, adapters, background
        self.feedback = ServedFeedback(store)
        self.auto_create_users = auto_create_users
        self.index = RecordIndex(store)
        # Records are embedded as they are written when the method ranks or chooses by embeddings.
        self.vectors = RecordVectors(store, embedder) if embedder is not None and method.needs("embedder") else None
        self.indexes = StoredIndexes(store, self.index, self.vectors)
        self.memory: MemoryStore | None = None
        self.worker: ExtractionWorker | None = None
        if memory:
            self.memory = MemoryStore(store, embedder=embedder, episode_method=EpisodeMethod.parse(memory_method))
            self.worker = ExtractionWorker(self.memory, self._extract, min_confidence=min_confidence)
        sources = {note.served_from for note in method.notes}
        self.summaries = SummaryWorker(store, notes_backend, background) if "summaries" in sources else None
        # The personalizer tailor eval measures for this method, plus the chat additions: what
        # differs is where things come from (the stored indexes, summaries and the tenant's
        # personas; the served model, through the queue like a reply, for a note before it).
        self._notes = QueuedBackend(backend, reply)
        library = method.build(BuildContext(
            CHAT_TASK, backend.count_tokens, k=k, budget=budget, embedder=embedder, store=store, backend=self._notes,
            indexes=self.indexes, summaries=self.summaries,
            personas=tenant_persona_chooser(store, embedder) if "personas" in sources else None))
        # What the personalizer caches about a user (refine's style notes) goes with them.
        self._forget: Callable[[str], None] = getattr(library, "forget", lambda user_id: None)
        self.personalizer = ChatPersonalizer(
            store, library, self.memory, k_memories=k_memories, count_tokens=backend.count_tokens,
            adapter_label=adapter_label, k_episodes=k_episodes, episode_tokens=episode_tokens)

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

    def _require(self, user_id: str) -> None:
        if not self.store.has_user(user_id):
            raise UnknownUserError(user_id)

    # -- a chat ---------------------------------------------------------------------------------

    def context(self, user_id: str, query: str) -> ChatContext | None:
        """The user's context for ``query``; ``None`` for a user the store does not hold
        (created, with an empty context, when ``auto_create_users``). A style note
        (``refine``) is waited for in this thread."""
        return answer_steps(self.context_steps(user_id, query), self._notes.generate)

    def context_steps(self, user_id: str, query: str) -> ModelSteps[ChatContext | None]:
        """:meth:`context` as steps (:data:`~tailor.types.ModelSteps`): yields the requests
        the method makes before its prompt (``refine``'s style note; none for the other
        methods), for the caller to queue like replies and send the results back."""
        try:
            context = yield from self.personalizer.context_steps(user_id, query)
            if context is None and self.auto_create_users:
                self.store.set_attributes(user_id, {})
                context = ChatContext()
            return context
        except UnknownUserError:  # deleted between two reads
            return None

    def chat_steps(self, user_id: str | None, messages: tuple[dict[str, str], ...], query: str, *,
                   max_new_tokens: int, stop: tuple[str, ...] = ()) -> ModelSteps[ServedChat]:
        """The model's request for a chat's ``messages``: personalized for the user and
        ``query`` (their latest message), with the chat additions, or as sent for no user
        (``None``) or one the store does not hold; as steps, like :meth:`context_steps`."""
        context = (yield from self.context_steps(user_id, query)) if user_id is not None else None
        messages = self.personalizer.messages(messages, context) if context is not None else messages
        generation = GenerationRequest(messages, max_new_tokens=max_new_tokens, stop=stop,
                                       user_id=user_id if context is not None else None)
        # A request served as is still runs with the global adapter, where one is served.
        label = self.personalizer.adapter_label
        adapter = context.adapter if context is not None else (label(None) if label is not None else None)
        return ServedChat(generation, context, adapter)

    def remember(self, user_id: str, exchange_id: str, message: str, reply: str) -> None:
        """Keep an exchange for memory extraction, off the request path (nothing without memory)."""
        if self.memory is None or self.worker is None:
            return
        try:
            self.worker.submit(user_id, self.memory.add_exchange(user_id, exchange_id, message, reply))
        except UnknownUserError:
            pass  # deleted while we answered: keep nothing

    # -- users ----------------------------------------------------------------------------------

    def put_user(self, user_id: str, attributes: dict[str, str]) -> dict[str, Any]:
        with self.store.transaction():
            created = not self.store.has_user(user_id)
            self.store.set_attributes(user_id, attributes)
            profile_attributes = dict(self.store.get_profile(user_id).attributes)
        return {"created": created, "attributes": profile_attributes}

    def describe(self, user_id: str) -> dict[str, Any]:
        with self.store.transaction():
            attributes = dict(self.store.get_profile(user_id).attributes)
            records = self.store.count_records(user_id)
            memories = len(self.memory.list_memories(user_id)) if self.memory is not None else 0
        return {"attributes": attributes, "records": records, "memories": memories}

    def add_records(self, user_id: str, records: list[HistoryRecord]) -> dict[str, Any]:
        """Store a batch atomically (records and their index commit together, or nothing)."""
        # Vectors are computed before the write lock is taken, and stored with the batch.
        vectors = self.vectors.vectors_for(records) if self.vectors is not None else {}
        with self.store.transaction():
            self._require(user_id)
            added = self.store.add_records(user_id, records)
            if self.vectors is not None:
                self.vectors.store_vectors(user_id, vectors)
            self.index.refresh(user_id)
            total = self.store.count_records(user_id)
        if added and self.summaries is not None:
            self.summaries.submit(user_id)
        return {"added": added, "records": total}

    def export(self, user_id: str, /, **fields: Any) -> dict[str, Any]:
        """Everything held about the user: the store's export, memories, then ``fields``
        (the caller's own names for the user), then adapters."""
        with self.store.transaction():  # one snapshot of everything
            data = self.store.export_user(user_id)
            if self.memory is not None:
                data.update(self.memory.export(user_id))
            data.update(self.feedback.export(user_id))
        data.update(fields)
        adapters = self.adapters.metadata(user_id)
        return data if adapters is None else {**data, "adapters": adapters}

    def delete(self, user_id: str) -> int:
        """Delete the user and everything derived from them; adapters first, so a failure
        there leaves the user whole (and the delete can be retried). Returns how many
        adapters were deleted."""
        self._require(user_id)
        adapters = self.adapters.delete(user_id)
        if not self.store.delete_user(user_id):
            raise UnknownUserError(user_id)
        self._forget(user_id)
        self.indexes.forget(user_id)
        if self.memory is not None:
            self.memory.forget(user_id)
        return adapters

    # -- memories -------------------------------------------------------------------------------

    def memories(self, user_id: str, *, include_superseded: bool = False, query: str | None = None,
                 k: int = 10) -> list[dict[str, Any]]:
        """The user's memories (``query``: the ``k`` best for it; ``include_superseded``:
        with the ones replaced, and each one's history)."""
        self._require(user_id)
        if self.memory is None:
            return []
        if query is not None:
            return [memory.to_dict() for memory in self.memory.search(user_id, query, k)]
        memories = self.memory.list_memories(user_id, include_superseded=include_superseded)
        if not include_superseded:
            return [memory.to_dict() for memory in memories]
        history = self.memory.history(user_id)
        return [{**memory.to_dict(), "history": history.get(memory.id, [])} for memory in memories]

    def delete_memory(self, user_id: str, memory_id: str | None) -> list[str]:
        """The ids deleted with the memory (``None``: an id no memory can have)."""
        self._require(user_id)
        if self.memory is None or memory_id is None:
            return []
        return self.memory.delete(user_id, memory_id)

    def flush_memories(self, user_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the user's queued messages have been through extraction."""
        self._require(user_id)
        if self.worker is None:
            return {"done": True, "pending": 0}
        done = self.worker.flush(user_id, timeout)
        return {"done": done, "pending": self.worker.pending(user_id)}


__all__ = ["MAX_EXTRACTION_CHARS", "ServedChat", "ServedUsers"]
