"""Compute record embeddings into a profile store, once per record: the ingestion path."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from tailor.embeddings.embedder import Embedder
from tailor.store.contract import ProfileStore
from tailor.types import HistoryRecord

DocumentFn = Callable[[HistoryRecord], str]


@dataclass(frozen=True)
class EmbedReport:
    """What :func:`embed_profiles` did: users looked at, records embedded now, records
    that already had a vector."""

    users: int
    embedded: int
    already: int


def embed_profiles(store: ProfileStore, embedder: Embedder, user_ids: Iterable[str] | None = None, *,
                   batch_size: int = 64, document: DocumentFn = HistoryRecord.text,
                   progress: bool = True) -> EmbedReport:
    """Embed every record of ``user_ids`` (all users when ``None``) that has no vector yet.

    Vectors are stored under ``embedder.name`` with :meth:`ProfileStore.put_embeddings`,
    one batch of at most ``batch_size`` records at a time (a batch may mix users, so small
    profiles still fill the model's batches). A stopped run loses at most one batch; run
    it again and it carries on where it stopped. ``document`` chooses the text embedded for
    a record (all of its fields by default); a retriever reading these vectors must use the
    same one.
    """
    if batch_size < 1:
        raise ValueError(f"embed_profiles: batch_size must be at least 1, got {batch_size}")
    users = store.list_users() if user_ids is None else list(dict.fromkeys(user_ids))
    model = embedder.name
    pending: list[tuple[str, str, str]] = []  # (user_id, record_id, text)
    already = 0
    for user_id in users:
        have = set(store.get_embeddings(user_id, model)[0])
        already += len(have)
        pending.extend((user_id, r.id, document(r)) for r in store.get_profile(user_id).records if r.id not in have)

    from tqdm.auto import tqdm

    with tqdm(total=len(pending), desc=f"embedding ({model})", unit="rec", disable=not progress or not pending,
              leave=False, dynamic_ncols=True) as bar:
        for start in range(0, len(pending), batch_size):
            batch = pending[start:start + batch_size]
            vectors = embedder.embed([text for _, _, text in batch])
            by_user: dict[str, dict[str, np.ndarray]] = {}
            for (user_id, record_id, _), vector in zip(batch, vectors):
                by_user.setdefault(user_id, {})[record_id] = vector
            for user_id, user_vectors in by_user.items():
                store.put_embeddings(user_id, model, user_vectors)
            bar.update(len(batch))
    return EmbedReport(users=len(users), embedded=len(pending), already=already)
