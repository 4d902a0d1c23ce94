"""Building personas: users clustered by their profile embeddings, each cluster described
by the LLM, both kept in the profile store.

This is one of the few places that reads across users, as the persona granularity needs;
hence the ``across_users`` in the function name.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from tailor.backends.contract import Backend
from tailor.embeddings.embedder import Embedder
from tailor.personas.clustering import choose_k, kmeans
from tailor.prompting.summary import clean_description, describe_items_messages, latest_records
from tailor.store.contract import ProfileStore
from tailor.tasks.spec import TaskSpec
from tailor.types import GenerationRequest, Persona

PERSONA_INSTRUCTION = (
    "These items come from several users who write alike. Describe, in one or two short "
    "sentences, the style and interests they share (length, wording, tone, topics)."
)


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


def build_personas_across_users(store: ProfileStore, embedder: Embedder, backend: Backend, task: TaskSpec, *,
                                user_ids: Sequence[str] | None = None, k: int | None = None,
                                k_max: int = 8, items_per_persona: int = 10, seed: int = 0) -> list[Persona]:
    """Cluster users (all, or ``user_ids``) into personas, describe each, store them all.

    ``k`` fixes the number of personas; by default it is chosen by silhouette over
    2..``k_max``. Replaces any personas the store held.
    """
    personas, memberships = describe_personas_across_users(
        store, embedder, backend, task, user_ids=user_ids, k=k, k_max=k_max, items_per_persona=items_per_persona,
        seed=seed)
    store.put_personas(personas, memberships)
    return personas


def describe_personas_across_users(store: ProfileStore, embedder: Embedder, backend: Backend, task: TaskSpec, *,
                                   user_ids: Sequence[str] | None = None, k: int | None = None, k_max: int = 8,
                                   items_per_persona: int = 10, seed: int = 0,
                                   id_prefix: str = "") -> tuple[list[Persona], dict[str, str]]:
    """:func:`build_personas_across_users` without storing: the personas (ids
    ``{id_prefix}p0``, ``{id_prefix}p1``...) and each clustered user's persona id."""
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
    model = str(getattr(backend, "model_id", getattr(backend, "name", "?")))
    prompt_hash = hashlib.sha256(PERSONA_INSTRUCTION.encode()).hexdigest()[:12]
    requests, members_by_cluster = [], []
    for cluster in range(len(clustering.centroids)):
        members = [u for u, label in zip(users, clustering.labels) if label == cluster]
        members_by_cluster.append(members)
        # Pool the latest items of the cluster's members, a few from each.
        per_user = max(1, items_per_persona // max(len(members), 1))
        pooled = [r for u in members for r in latest_records(store.get_profile(u), per_user)][:items_per_persona]
        requests.append(GenerationRequest(
            messages=describe_items_messages(task, pooled, PERSONA_INSTRUCTION, count_tokens=backend.count_tokens),
            max_new_tokens=64, stop=("\n\n",)))
    descriptions = [clean_description(r.text) for r in backend.generate(requests)]
    personas = [
        Persona(persona_id=f"{id_prefix}p{cluster}", description=descriptions[cluster],
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
