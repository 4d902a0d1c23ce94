"""What each embedding-based retriever (``dense``, ``hybrid``, ``recency+dense``) promises
beyond the retriever contract, which test_retriever_contract.py runs over them too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from tailor.embeddings.hashing import HashingEmbedder
from tailor.retrieval.dense import DenseRetriever, RecencyDenseRetriever
from tailor.retrieval.hybrid import HybridRetriever
from tailor.store import InMemoryProfileStore, SQLiteProfileStore
from tailor.types import HistoryRecord, Profile, RetrievalHit

_QUERY = "river trees planted by volunteers"


def record(id: str, text: str, date: str | None = None) -> HistoryRecord:
    return HistoryRecord(id=id, fields={"text": text}, date=date)


def _alice() -> Profile:
    return Profile("alice", (
        record("r1", "Volunteers planted trees along the river", "2020-03-01"),
        record("r2", "The city council passed the budget", "2021-07-15"),
        record("r3", "River cleanup drew hundreds of volunteers", "2019-11-30"),
        record("r4", "Local team wins the football final", None),
        record("r5", "New library opens downtown", "2022-01-02"),
        record("r6", "Trees and parks make cities cooler", "2018-05-20"),
    ))


def _ids(hits: Sequence[RetrievalHit]) -> list[str]:
    return [hit.record.id for hit in hits]


# -- dense -----------------------------------------------------------------------------------


def test_dense_scores_are_cosine_similarities_ranked_like_numpy() -> None:
    embedder = HashingEmbedder()
    user = _alice()
    query = "volunteers cleaning the river downtown"
    documents = embedder.embed([r.text() for r in user.records])
    reference = documents @ embedder.embed([query])[0]
    expected = sorted(range(len(user)), key=lambda i: (-reference[i], i))
    hits = DenseRetriever(embedder).retrieve(query, user, len(user))
    assert _ids(hits) == [user.records[i].id for i in expected]
    np.testing.assert_allclose([hit.score for hit in hits], reference[expected], rtol=1e-5, atol=1e-6)
    assert np.allclose(np.linalg.norm(documents, axis=1), 1.0)


def test_dense_retrieve_by_vector_matches_retrieve() -> None:
    embedder = HashingEmbedder()
    retriever = DenseRetriever(embedder)
    by_text = retriever.retrieve(_QUERY, _alice(), 4)
    by_vector = retriever.retrieve_by_vector(embedder.embed([_QUERY])[0], _alice(), 4)
    assert _ids(by_text) == _ids(by_vector) and [h.score for h in by_text] == [h.score for h in by_vector]
    with pytest.raises(ValueError, match="shape"):
        retriever.retrieve_by_vector(np.zeros(3), _alice(), 1)


def test_dense_ties_go_to_the_earlier_record() -> None:
    user = Profile("u", (record("a", "same words"), record("b", "other"), record("c", "same words")))
    assert _ids(DenseRetriever(HashingEmbedder()).retrieve("same words", user, 3))[:2] == ["a", "c"]


def test_dense_with_a_store_reads_stored_vectors_and_stores_missing_ones() -> None:
    embedder = HashingEmbedder()
    store = SQLiteProfileStore(":memory:")
    store.add_profiles([_alice()])
    query_vector = embedder.embed(["football final"])[0]
    store.put_embeddings("alice", embedder.name, {"r5": query_vector})  # r5 is about a library, not football
    retriever = DenseRetriever(embedder, store)
    hits = retriever.retrieve("football final", store.get_profile("alice"), 2)
    assert _ids(hits) == ["r5", "r4"]  # r5 wins on its stored vector, so the store was read
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    ids, matrix = store.get_embeddings("alice", embedder.name)
    assert ids == ["r1", "r2", "r3", "r4", "r5", "r6"]  # the missing ones were computed and kept
    np.testing.assert_allclose(matrix[0], embedder.embed([_alice().records[0].text()])[0], rtol=1e-6)


def test_dense_with_a_store_uses_the_profile_when_the_store_lacks_the_user() -> None:
    store = InMemoryProfileStore()
    hits = DenseRetriever(HashingEmbedder(), store).retrieve(_QUERY, _alice(), 1)
    assert _ids(hits) == ["r1"]
    assert not store.has_user("alice")


def test_dense_re_embeds_a_record_replaced_under_the_same_id() -> None:
    retriever = DenseRetriever(HashingEmbedder())
    before = Profile("u", (record("a", "library opens downtown"), record("b", "football final tonight")))
    assert _ids(retriever.retrieve("football", before, 1)) == ["b"]
    after = Profile("u", (record("a", "football final replay"), record("b", "gardening tips")))
    assert _ids(retriever.retrieve("football", after, 1)) == ["a"]


# -- hybrid ----------------------------------------------------------------------------------


class TableEmbedder:
    """Fixed vectors per text, so that the dense ranking is set by hand."""

    name = "table"
    dim = 2

    def __init__(self, table: dict[str, tuple[float, float]]) -> None:
        self.table = table

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        matrix = np.asarray([self.table[text] for text in texts], dtype=np.float32)
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)  # type: ignore[no-any-return]


def test_hybrid_fuses_ranks_as_computed_by_hand() -> None:
    user = Profile("u", (
        record("r1", "apple apple"),            # BM25 1st (two hits, short);   dense 3rd
        record("r2", "cherry"),                 # BM25: no shared term;         dense 1st
        record("r3", "apple pear kiwi plum"),   # BM25 2nd;                     dense 2nd
    ))
    embedder = TableEmbedder({"apple": (1.0, 0.0), "apple apple": (0.1, 0.9), "cherry": (0.9, 0.1),
                              "apple pear kiwi plum": (0.5, 0.5)})
    hits = HybridRetriever(embedder, k_rrf=60).retrieve("apple", user, 3)
    fused = {"r1": 1 / 61 + 1 / 63, "r2": 1 / 61, "r3": 1 / 62 + 1 / 62}
    assert _ids(hits) == ["r1", "r3", "r2"]
    for hit in hits:
        assert hit.score == pytest.approx(fused[hit.record.id], rel=1e-12)
    # With k_rrf = 0, r2 (1/1) ties r3 (1/2 + 1/2), and the tie goes to the one the dense
    # ranking places higher (r2).
    assert _ids(HybridRetriever(embedder, k_rrf=0).retrieve("apple", user, 3)) == ["r1", "r2", "r3"]


def test_hybrid_depth_cuts_each_ranking_before_fusing() -> None:
    user = Profile("u", (
        record("r1", "apple apple"),            # BM25 1st; dense 3rd
        record("r2", "cherry"),                 # BM25 none; dense 1st
        record("r3", "apple pear kiwi plum"),   # BM25 2nd; dense 2nd
    ))
    embedder = TableEmbedder({"apple": (1.0, 0.0), "apple apple": (0.1, 0.9), "cherry": (0.9, 0.1),
                              "apple pear kiwi plum": (0.5, 0.5)})
    hits = HybridRetriever(embedder, depth=1).retrieve("apple", user, 3)
    # Each ranking keeps its first record only: r2 (dense) and r1 (BM25) tie at 1/61, and
    # the tie goes to the dense ranking's; r3 is in neither cut ranking and is no hit.
    assert _ids(hits) == ["r2", "r1"]
    assert [hit.score for hit in hits] == pytest.approx([1 / 61, 1 / 61])


def test_hybrid_rejects_a_negative_constant() -> None:
    with pytest.raises(ValueError, match="k_rrf"):
        HybridRetriever(HashingEmbedder(), k_rrf=-1)


# -- recency+dense ---------------------------------------------------------------------------


def _dated_profile() -> Profile:
    # 30 records, r00 oldest .. r29 newest; the best match for the query is old.
    records = [record(f"r{i:02d}", f"note number {i} about errands", f"2020-01-{i + 1:02d}") for i in range(30)]
    records[3] = record("r03", "volcano eruption near the village", "2020-01-04")
    records[25] = record("r25", "the village fair", "2020-01-26")
    return Profile("u", tuple(records))


def test_recency_dense_only_returns_records_from_the_recent_window() -> None:
    user = _dated_profile()
    retriever = RecencyDenseRetriever(HashingEmbedder())
    hits = retriever.retrieve("volcano eruption village", user, 3)
    recent = {f"r{i:02d}" for i in range(10, 30)}  # window max(4 * 3, 20) = the 20 newest
    assert set(_ids(hits)) <= recent
    assert _ids(hits)[0] == "r25"  # the recent record sharing a word
    assert _ids(RecencyDenseRetriever(HashingEmbedder(), window=30).retrieve("volcano eruption village", user, 1)) \
        == ["r03"]


def test_recency_dense_window_grows_with_k() -> None:
    retriever = RecencyDenseRetriever(HashingEmbedder())
    assert retriever.window_for(1) == 20 and retriever.window_for(10) == 40
    assert RecencyDenseRetriever(HashingEmbedder(), window=5).window_for(10) == 5
    hits = RecencyDenseRetriever(HashingEmbedder(), window=5).retrieve("errands", _dated_profile(), 10)
    assert sorted(_ids(hits)) == ["r25", "r26", "r27", "r28", "r29"]
    with pytest.raises(ValueError, match="window"):
        RecencyDenseRetriever(HashingEmbedder(), window=0)


def test_dense_cache_is_bounded_in_profiles_and_bytes() -> None:
    embedder = HashingEmbedder(dim=64)
    profiles = [Profile(f"u{i}", tuple(record(f"r{j}", f"text {i} {j}") for j in range(10))) for i in range(5)]
    by_count = DenseRetriever(embedder, cache_size=2)
    by_bytes = DenseRetriever(embedder, cache_bytes=2 * 10 * 64 * 4)  # room for two 10 x 64 float32 matrices
    for retriever in (by_count, by_bytes):
        for user in profiles:
            retriever.retrieve("text", user, 1)
        assert [key[0] for key in retriever._cache] == ["u3", "u4"]
        assert retriever._held_bytes == sum(m.nbytes for _, m in retriever._cache.values())


def test_similarity_order_is_the_dense_retrievers_order() -> None:
    from tailor.retrieval.dense import similarity_order

    embedder = HashingEmbedder(dim=64)
    texts = ["apple pie", "apple tart", "pear", "apple pie", "plum"]
    user = Profile("u", tuple(record(f"r{i}", text) for i, text in enumerate(texts)))
    matrix = embedder.embed(texts)
    order = similarity_order(matrix, embedder.embed(["apple pie"])[0])
    assert [f"r{i}" for i in order] == _ids(DenseRetriever(embedder).retrieve("apple pie", user, 5))
    assert list(order[:2]) == [0, 3]  # equal vectors: the earlier row first
    assert list(similarity_order(matrix, embedder.embed(["pear"])[0], 1)) == [2]
    assert similarity_order(np.zeros((0, 64)), embedder.embed(["pear"])[0]).size == 0
