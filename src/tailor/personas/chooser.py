"""Which persona a user is shown: one rule for ``tailor eval`` and ``tailor serve``.

A user who belongs to a persona gets its description. Any other user (cold start) gets the
persona nearest to the mean of their stored record vectors, or to their input when the
store holds none for them, among the personas built with the same embedder that
``scope`` allows (the server allows only the user's own tenant's: a description is
written from its members' items).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from tailor.backends.contract import Backend
from tailor.embeddings.embedder import Embedder
from tailor.personas.builder import build_personas_across_users, mean_direction, nearest_persona
from tailor.store.contract import ProfileStore
from tailor.tasks.spec import TaskSpec
from tailor.types import Persona

logger = logging.getLogger(__name__)

PersonaScope = Callable[[str, Persona], bool]
"""Whether persona may be shown to user_id as a nearest persona."""


def _anywhere(user_id: str, persona: Persona) -> bool:
    return True


class PersonaChooser:
    """The persona description a user is shown, read from ``store`` at each call (personas
    may be rebuilt meanwhile). ``embedder`` (the one the personas were built with) finds
    the nearest persona for users outside any; without one they get none."""

    def __init__(self, store: ProfileStore, embedder: Embedder | None, *, scope: PersonaScope = _anywhere) -> None:
        self.store = store
        self.embedder = embedder
        self.scope = scope
        self._warned = False

    def persona(self, user_id: str, query: str) -> Persona | None:
        personas = self.store.list_personas()
        if not personas:
            return None
        own = self.store.persona_of(user_id)
        if own is not None:
            return next((p for p in personas if p.persona_id == own), None)
        if self.embedder is None:
            return None
        name = self.embedder.name
        allowed = [p for p in personas if self.scope(user_id, p)]
        candidates = [p for p in allowed if p.centroid and p.metadata.get("embedder", name) == name]
        if not candidates:
            if allowed and not self._warned:
                self._warned = True
                logger.warning("personas were built with another embedder than this one (%s); users without a "
                               "persona get none", name)
            return None
        matrix = self.store.get_embeddings(user_id, name)[1] if self.store.has_user(user_id) else ()
        vector = mean_direction(np.asarray(matrix) if len(matrix) else self.embedder.embed([query]))
        return nearest_persona(candidates, vector) if vector is not None else None

    def prepare(self, task: TaskSpec, user_ids: Sequence[str], backend: Backend, *, min_records: int = 3,
                k: int | None = None, seed: int = 0) -> list[Persona]:
        """Build the personas for ``task`` (users with at least ``min_records`` records, or
        all users when none has as many) unless the store already holds personas for it
        with every such user a member; the personas the store holds afterwards."""
        if self.embedder is None:
            raise ValueError("building personas needs an embedder")
        users = [u for u in dict.fromkeys(user_ids) if self.store.count_records(u) >= min_records]
        personas = self.store.list_personas()
        built_for = {str(p.metadata.get("task")) for p in personas}
        if not personas or task.name not in built_for or any(self.store.persona_of(u) is None for u in users):
            personas = build_personas_across_users(self.store, self.embedder, backend, task, user_ids=users or None,
                                                   k=k, seed=seed)
        return personas


__all__ = ["PersonaChooser", "PersonaScope"]
