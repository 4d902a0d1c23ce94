"""embed_profiles: each record embedded once, into the store, resumably."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from tailor.embeddings import embed_profiles
from tailor.embeddings.hashing import HashingEmbedder
from tailor.store import InMemoryProfileStore, ProfileStore, SQLiteProfileStore
from tailor.types import HistoryRecord, Profile


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, noting every batch it is asked to embed."""

    def __init__(self) -> None:
        super().__init__(dim=32)
        self.batches: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(list(texts))
        return super().embed(texts)


def _profiles() -> list[Profile]:
    return [
        Profile("alice", tuple(HistoryRecord(f"a{i}", {"title": f"title {i}", "text": f"alice {i}"}) for i in range(5))),
        Profile("bob", tuple(HistoryRecord(f"b{i}", {"text": f"bob {i}"}) for i in range(3))),
        Profile("carol"),
    ]


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest) -> ProfileStore:
    opened: ProfileStore = SQLiteProfileStore(":memory:") if request.param == "sqlite" else InMemoryProfileStore()
    opened.add_profiles(_profiles())
    return opened


def test_embeds_every_record_once_in_batches_across_users(store: ProfileStore) -> None:
    embedder = CountingEmbedder()
    report = embed_profiles(store, embedder, batch_size=3, progress=False)
    assert (report.users, report.embedded, report.already) == (3, 8, 0)
    assert [len(batch) for batch in embedder.batches] == [3, 3, 2]
    assert embedder.batches[1] == ["title 3 alice 3", "title 4 alice 4", "bob 0"]  # all fields, in order
    ids, matrix = store.get_embeddings("bob", embedder.name)
    assert ids == ["b0", "b1", "b2"]
    np.testing.assert_allclose(matrix, HashingEmbedder(dim=32).embed(["bob 0", "bob 1", "bob 2"]))
    again = embed_profiles(store, embedder, progress=False)
    assert (again.embedded, again.already) == (0, 8)
    assert len(embedder.batches) == 3


def test_resumes_with_what_is_missing_and_follows_replaced_records(store: ProfileStore) -> None:
    embedder = CountingEmbedder()
    embed_profiles(store, embedder, ["alice"], progress=False)
    assert store.get_embeddings("bob", embedder.name)[0] == []
    store.add_records("alice", [HistoryRecord("a2", {"text": "rewritten"})])
    report = embed_profiles(store, embedder, progress=False)
    assert (report.embedded, report.already) == (4, 4)  # a2 again, and bob's three
    assert embedder.batches[-1] == ["rewritten", "bob 0", "bob 1", "bob 2"]


def test_document_chooses_the_embedded_text(store: ProfileStore) -> None:
    embedder = CountingEmbedder()
    embed_profiles(store, embedder, ["alice"], document=lambda r: r.fields.get("title", ""), progress=False)
    assert embedder.batches == [[f"title {i}" for i in range(5)]]


def test_bad_batch_size_is_refused(store: ProfileStore) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        embed_profiles(store, HashingEmbedder(), batch_size=0)
