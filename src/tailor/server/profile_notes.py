"""What the server says about a user beyond their records: an LLM-written summary of their
profile, and the description of their persona.

Summaries are written off the request path. A request that finds the user's summary
missing or older than their records queues the user for :class:`SummaryWorker`, and is
answered with whatever summary exists now (the previous one, or none); the worker writes
the new one through the backend at background priority, as
:mod:`tailor.prompting.summary` writes them for ``tailor eval``.

Personas are built per tenant, never across tenants (:func:`build_personas_for_tenant`,
``tailor personas build``): a persona description is written from its members' items, so
sharing one across tenants would show one tenant's data to another. Which persona a user
is shown is the library's rule (:class:`~tailor.personas.chooser.PersonaChooser`), with the
nearest persona of a user outside any looked for among their own tenant's only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tailor.backends.base import Backend
from tailor.background import KeyedWorker
from tailor.embeddings.base import Embedder
from tailor.personas.builder import describe_personas_across_users
from tailor.personas.chooser import PersonaChooser
from tailor.profiles import SQLProfileStore as SQLiteProfileStore  # SQLite or PostgreSQL
from tailor.profiles.base import ProfileStore, UnknownUserError
from tailor.prompting.summary import SUMMARY_KIND, ProfileSummarizer
from tailor.server.keys import TENANT_SEPARATOR
from tailor.tasks.chat import CHAT_TASK
from tailor.types import GenerationRequest, GenerationResult, Persona

GenerateOne = Callable[[GenerationRequest], GenerationResult]


def tenant_of(store_id: str) -> str | None:
    """The tenant whose namespace holds this store id (``None`` outside any tenant)."""
    tenant, separator, _ = store_id.partition(TENANT_SEPARATOR)
    return tenant if separator else None


def newest_summary(store: ProfileStore, user_id: str) -> tuple[str | None, bool]:
    """The user's newest stored summary (any model) and whether it is current for their
    profile; ``(None, False)`` when they have none."""
    summaries = [a for a in store.list_artifacts(user_id) if a.kind == SUMMARY_KIND]
    if not summaries:
        return None, False
    newest = max(summaries, key=lambda artifact: artifact.created_at)
    text = newest.value.get("summary")
    current = newest.profile_version == store.profile_version(user_id)
    return (text.strip() if isinstance(text, str) and text.strip() else None), current


class _BackgroundBackend:
    """A backend view whose calls go through the server's gate at background priority."""

    def __init__(self, backend: Backend, generate: GenerateOne) -> None:
        self.name = backend.name
        self.model_id = str(getattr(backend, "model_id", backend.name))
        self._backend = backend
        self._generate = generate

    def count_tokens(self, text: str) -> int:
        return self._backend.count_tokens(text)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return [self._generate(request) for request in requests]


class SummaryWorker:
    """Writes users' profile summaries on a daemon thread, one user at a time.

    ``generate`` runs one request at background priority (the server's gate); a user
    queued twice before their turn is summarized once.
    """

    def __init__(self, store: SQLiteProfileStore, backend: Backend, generate: GenerateOne) -> None:
        self.summarizer = ProfileSummarizer(_BackgroundBackend(backend, generate), CHAT_TASK, store, batch_size=1)
        self._worker: KeyedWorker[None] = KeyedWorker(self._summarize, name="tailor-summaries", coalesce=True)

    def summary(self, user_id: str) -> str:
        """The user's newest stored summary (empty when none); a missing or stale one is
        queued to be written, and this request goes on with what exists."""
        summary, current = newest_summary(self.summarizer.store, user_id)
        if not current and self.summarizer.store.count_records(user_id):
            self.submit(user_id)
        return summary or ""

    def submit(self, user_id: str) -> None:
        """Queue the user for a new summary; returns at once."""
        self._worker.submit(user_id, None)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued user is done; whether that happened within ``timeout``."""
        return self._worker.flush(None, timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._worker.close(timeout)

    def _summarize(self, user_id: str, _: None) -> None:
        try:
            self.summarizer.summaries([user_id])
        except UnknownUserError:
            pass  # deleted meanwhile


def same_tenant(user_id: str, persona: Persona) -> bool:
    """Whether ``persona`` is of the user's own tenant (a :data:`PersonaScope`)."""
    return tenant_of(persona.persona_id) == tenant_of(user_id)


def tenant_persona_chooser(store: SQLiteProfileStore, embedder: Embedder | None) -> PersonaChooser:
    """The library's :class:`~tailor.personas.chooser.PersonaChooser`, with a user's
    nearest persona looked for among their own tenant's only."""
    return PersonaChooser(store, embedder, scope=same_tenant)


def build_personas_for_tenant(store: SQLiteProfileStore, embedder: Embedder, backend: Backend, *,
                              tenant: str | None, k: int | None = None, k_max: int = 8,
                              seed: int = 0) -> list[Persona]:
    """Cluster one tenant's users (``None``: the users outside any tenant) into personas
    described by ``backend``, and store them in place of that tenant's earlier personas;
    other tenants' personas and memberships are kept as they were."""
    users = [u for u in store.list_users() if tenant_of(u) == tenant]
    prefix = f"{tenant}{TENANT_SEPARATOR}" if tenant is not None else ""
    personas, memberships = describe_personas_across_users(
        store, embedder, backend, CHAT_TASK, user_ids=users, k=k, k_max=k_max, seed=seed, id_prefix=prefix)
    with store.transaction():  # the model's work is done; the swap is atomic
        kept = [p for p in store.list_personas() if tenant_of(p.persona_id) != tenant]
        live = store.list_users()
        kept_members = {}
        for user_id in live:
            if tenant_of(user_id) != tenant:
                persona_id = store.persona_of(user_id)
                if persona_id is not None:
                    kept_members[user_id] = persona_id
        still_here = set(live)  # a user deleted while the model described the groups is left out
        store.put_personas([*kept, *personas],
                           {**kept_members, **{u: p for u, p in memberships.items() if u in still_here}})
    return personas


__all__ = ["SummaryWorker", "build_personas_for_tenant", "newest_summary", "same_tenant", "tenant_of",
           "tenant_persona_chooser"]
