"""Building personas: users clustered by their profile embeddings, each cluster described
by the LLM, both kept in the profile store.

This is one of the few places that reads across users, as the persona granularity needs;
hence the ``across_users`` in the function name.

The clustering runs where it is called; the descriptions are written by a
:class:`GroupDescriber`: :class:`ModelDescriber` asks a backend in this process for all of
them in one batch, and ``tailor personas build --executor ray`` hands each persona's to a
Ray task (:mod:`tailor.batch.personas`), which asks its model the same request
(:func:`persona_request`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from tailor.backends.contract import Backend
from tailor.embeddings.embedder import Embedder
from tailor.personas.clustering import choose_k, kmeans
from tailor.prompting.builder import TokenCounter
from tailor.prompting.summary import clean_description, describe_items_messages, latest_records
from tailor.store.contract import ProfileStore
from tailor.tasks.spec import TaskSpec
from tailor.types import GenerationRequest, HistoryRecord, Persona

PERSONA_INSTRUCTION = (
    "These items come from several users who write alike. Describe, in one or two short "
    "sentences, the style and interests they share (length, wording, tone, topics)."
)


class GroupDescriber(Protocol):
    """Writes each group's description from its members' pooled items."""

    def describe(self, task: TaskSpec, groups: Mapping[str, Sequence[HistoryRecord]]) -> tuple[dict[str, str], str]:
        """Each group's description, by the group's id, and the id of the model that wrote them."""
        ...


def persona_request(task: TaskSpec, items: Sequence[HistoryRecord], count_tokens: TokenCounter) -> GenerationRequest:
    """What the model is asked to describe a persona from its members' pooled items."""
    return GenerationRequest(
        messages=describe_items_messages(task, items, PERSONA_INSTRUCTION, count_tokens=count_tokens),
        max_new_tokens=64, stop=("\n\n",))


def model_id(backend: Backend) -> str:
    """The model a backend names (its ``model_id``, else its name), as personas record it."""
    return str(getattr(backend, "model_id", getattr(backend, "name", "?")))


class ModelDescriber:
    """A :class:`GroupDescriber` that asks ``backend`` for every group's description at once."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def describe(self, task: TaskSpec, groups: Mapping[str, Sequence[HistoryRecord]]) -> tuple[dict[str, str], str]:
        requests = [persona_request(task, items, self.backend.count_tokens) for items in groups.values()]
        texts = [clean_description(result.text) for result in self.backend.generate(requests)]
        return dict(zip(groups, texts)), model_id(self.backend)


def user_vector(store: ProfileStore, embedder: Embedder, user_id: str) -> np.ndarray | None:
    """The mean of the user's record embeddings (computed and stored if missing), unit length;
    ``None`` for a user without records."""
    ids, matrix = store.get_embeddings(user_id, embedder.name)
    profile = store.get_profile(user_id)
    if len(ids) < len(profile.records):
        from tailor.embeddings.ingest import embed_profiles

        embed_profiles(store, embedder, user_ids=[user_id], progress=False)
        ids, matrix = store.get_embeddings(user_id, embedder.name)
    return mean_direction(matrix) if len(ids) else None


def mean_direction(vectors: np.ndarray) -> np.ndarray | None:
    """The unit-length mean of ``vectors`` (rows); ``None`` when it is zero."""
    mean = np.asarray(vectors, dtype=np.float64).mean(0)
    norm = np.linalg.norm(mean)
    return mean / norm if norm > 0 else None


def build_personas_across_users(store: ProfileStore, embedder: Embedder, backend: Backend | None, task: TaskSpec, *,
                                user_ids: Sequence[str] | None = None, k: int | None = None,
                                k_max: int = 8, items_per_persona: int = 10, seed: int = 0,
                                describer: GroupDescriber | None = None) -> list[Persona]:
    """Cluster users (all, or ``user_ids``) into personas, describe each, store them all.

    ``k`` fixes the number of personas; by default it is chosen by silhouette over
    2..``k_max``. The descriptions are ``backend``'s (``describer``: written by it
    instead). Replaces any personas the store held.
    """
    personas, memberships = describe_personas_across_users(
        store, embedder, backend, task, user_ids=user_ids, k=k, k_max=k_max, items_per_persona=items_per_persona,
        seed=seed, describer=describer)
    store.put_personas(personas, memberships)
    return personas


def describe_personas_across_users(store: ProfileStore, embedder: Embedder, backend: Backend | None, task: TaskSpec, *,
                                   user_ids: Sequence[str] | None = None, k: int | None = None, k_max: int = 8,
                                   items_per_persona: int = 10, seed: int = 0, id_prefix: str = "",
                                   describer: GroupDescriber | None = None) -> tuple[list[Persona], dict[str, str]]:
    """:func:`build_personas_across_users` without storing: the personas (ids
    ``{id_prefix}p0``, ``{id_prefix}p1``...) and each clustered user's persona id."""
    if describer is None:
        if backend is None:
            raise ValueError("personas need a backend or a describer to write their descriptions")
        describer = ModelDescriber(backend)
    users, vectors = [], []
    for user_id in user_ids if user_ids is not None else store.list_users():
        vector = user_vector(store, embedder, user_id)
        if vector is not None:
            users.append(user_id)
            vectors.append(vector)
    if not users:
        raise ValueError("no user has records to build personas from")
    matrix = np.array(vectors)
    clustering = kmeans(matrix, k, seed=seed) if k is not None else choose_k(matrix, k_max=k_max, seed=seed)
    prompt_hash = hashlib.sha256(PERSONA_INSTRUCTION.encode()).hexdigest()[:12]
    groups: dict[str, list[HistoryRecord]] = {}
    members_by_cluster = []
    for cluster in range(len(clustering.centroids)):
        members = [u for u, label in zip(users, clustering.labels) if label == cluster]
        members_by_cluster.append(members)
        # Pool the latest items of the cluster's members, a few from each.
        per_user = max(1, items_per_persona // max(len(members), 1))
        groups[f"{id_prefix}p{cluster}"] = [r for u in members
                                            for r in latest_records(store.get_profile(u), per_user)][:items_per_persona]
    descriptions, model = describer.describe(task, groups)
    personas = [
        Persona(persona_id=f"{id_prefix}p{cluster}", description=descriptions[f"{id_prefix}p{cluster}"],
                centroid=tuple(float(x) for x in clustering.centroids[cluster]), size=len(members),
                metadata={"model": model, "prompt_hash": prompt_hash, "task": task.name, "embedder": embedder.name,
                          "k": len(clustering.centroids), "seed": seed,
                          # Undefined (NaN) for one cluster or only singletons; JSON has no NaN.
                          "silhouette": clustering.silhouette if math.isfinite(clustering.silhouette) else None})
        for cluster, members in enumerate(members_by_cluster)
    ]
    memberships = {u: f"{id_prefix}p{label}" for u, label in zip(users, clustering.labels)}
    return personas, memberships


def nearest_persona(personas: Sequence[Persona], vector: np.ndarray) -> Persona | None:
    """The persona whose centroid is most similar (cosine) to ``vector``."""
    scored = [(float(np.dot(np.asarray(p.centroid), vector)), -i, p) for i, p in enumerate(personas) if p.centroid]
    if not scored:
        return None
    return max(scored, key=lambda item: (item[0], item[1]))[2]
