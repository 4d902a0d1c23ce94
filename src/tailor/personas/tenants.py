"""Personas per tenant, never across tenants: a persona description is written from its
members' items, so sharing one across tenants would show one tenant's data to another.

:func:`build_personas_for_tenant` (``tailor personas build``) clusters one tenant's users;
:func:`tenant_persona_chooser` is the library's rule for which persona a user is shown
(:class:`~tailor.personas.chooser.PersonaChooser`), with the nearest persona of a user
outside any looked for among their own tenant's only.
"""

from __future__ import annotations

from tailor.embeddings.embedder import Embedder
from tailor.personas.builder import GroupDescriber, describe_personas_across_users
from tailor.personas.chooser import PersonaChooser
from tailor.store import SQLProfileStore
from tailor.store.tenants import TENANT_SEPARATOR, tenant_of
from tailor.tasks.chat import CHAT_TASK
from tailor.types import Backend, Persona


def same_tenant(user_id: str, persona: Persona) -> bool:
    """Whether ``persona`` is of the user's own tenant (a :data:`~tailor.personas.chooser.PersonaScope`)."""
    return tenant_of(persona.persona_id) == tenant_of(user_id)


def tenant_persona_chooser(store: SQLProfileStore, embedder: Embedder | None) -> PersonaChooser:
    """The library's :class:`~tailor.personas.chooser.PersonaChooser`, with a user's
    nearest persona looked for among their own tenant's only."""
    return PersonaChooser(store, embedder, scope=same_tenant)


def build_personas_for_tenant(store: SQLProfileStore, embedder: Embedder, backend: Backend | None, *,
                              tenant: str | None, k: int | None = None, k_max: int = 8,
                              seed: int = 0, describer: GroupDescriber | None = None) -> list[Persona]:
    """Cluster one tenant's users (``None``: the users outside any tenant) into personas
    described by ``backend`` (or by ``describer``: each persona one Ray task, for
    ``tailor personas build --executor ray``), and store them in place of that tenant's
    earlier personas; other tenants' personas and memberships are kept as they were."""
    users = [u for u in store.list_users() if tenant_of(u) == tenant]
    prefix = f"{tenant}{TENANT_SEPARATOR}" if tenant is not None else ""
    personas, memberships = describe_personas_across_users(
        store, embedder, backend, CHAT_TASK, user_ids=users, k=k, k_max=k_max, seed=seed, id_prefix=prefix,
        describer=describer)
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


__all__ = ["build_personas_for_tenant", "same_tenant", "tenant_persona_chooser"]
