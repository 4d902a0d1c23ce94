"""The contract every retriever keeps, run over every implementation.

Written against the Retriever protocol only: a new retriever joins by adding a factory to
``_FACTORIES`` (a test below fails until every registered retriever is listed). The
embedding-based ones run with the shipped hashing embedder, with and without a profile
store of vectors; what each of them promises beyond the contract is in
test_dense_contract.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tailor.embeddings.hashing import HashingEmbedder
from tailor.retrieval import RETRIEVERS, Retriever
from tailor.retrieval.bm25 import BM25Retriever
from tailor.retrieval.dense import DenseRetriever, RecencyDenseRetriever
from tailor.retrieval.hybrid import HybridRetriever
from tailor.retrieval.simple import RandomRetriever, RecencyRetriever
from tailor.store import InMemoryProfileStore
from tailor.types import HistoryRecord, Profile, RetrievalHit

_QUERY = "river trees planted by volunteers"


def record(id: str, text: str, date: str | None = None, **fields: str) -> HistoryRecord:
    return HistoryRecord(id=id, fields={"text": text, **fields}, date=date)


def profile(user_id: str, *records: HistoryRecord) -> Profile:
    return Profile(user_id=user_id, records=tuple(records))


def _alice() -> Profile:
    return profile(
        "alice",
        record("r1", "Volunteers planted trees along the river", "2020-03-01"),
        record("r2", "The city council passed the budget", "2021-07-15"),
        record("r3", "River cleanup drew hundreds of volunteers", "2019-11-30"),
        record("r4", "Local team wins the football final", None),
        record("r5", "New library opens downtown", "2022-01-02"),
        record("r6", "Trees and parks make cities cooler", "2018-05-20"),
    )


def _bob() -> Profile:
    # The same record ids as alice's, and overlapping texts: only object identity tells them apart.
    return profile(
        "bob",
        record("r1", "Volunteers planted trees along the river", "2020-03-01"),
        record("r2", "Stock markets fell sharply on Monday", "2023-02-02"),
        record("r3", "River trees volunteers river trees", "2017-01-01"),
        record("r7", "Quarterly earnings beat expectations", None),
    )


def _with_store(factory: Callable[..., Retriever]) -> Callable[[], Retriever]:
    def make() -> Retriever:
        store = InMemoryProfileStore()
        store.add_profiles([_alice(), _bob()])
        return factory(HashingEmbedder(), store)
    return make


# Retrievers that rank by what the records say (the others rank by date or at random).
_BY_CONTENT: dict[str, Callable[[], Retriever]] = {
    "bm25": BM25Retriever,
    "dense": lambda: DenseRetriever(HashingEmbedder()),
    "dense+store": _with_store(DenseRetriever),
    "hybrid": lambda: HybridRetriever(HashingEmbedder()),
    "hybrid+store": _with_store(HybridRetriever),
    "recency+dense": lambda: RecencyDenseRetriever(HashingEmbedder()),
    "recency+dense+store": _with_store(RecencyDenseRetriever),
}
_FACTORIES: dict[str, Callable[[], Retriever]] = {
    **_BY_CONTENT,
    "recency": RecencyRetriever,
    "random": lambda: RandomRetriever(seed=7),
}


@pytest.fixture(params=list(_FACTORIES.values()), ids=list(_FACTORIES))
def make_retriever(request: pytest.FixtureRequest) -> Callable[[], Retriever]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=list(_BY_CONTENT.values()), ids=list(_BY_CONTENT))
def make_content_retriever(request: pytest.FixtureRequest) -> Callable[[], Retriever]:
    return request.param  # type: ignore[no-any-return]


def _ids(hits: list[RetrievalHit]) -> list[str]:
    return [hit.record.id for hit in hits]


def test_every_registered_retriever_is_under_contract() -> None:
    assert sorted({factory().name for factory in _FACTORIES.values()}) == RETRIEVERS.names()


def test_implements_the_protocol_under_its_registry_name(make_retriever: Callable[[], Retriever]) -> None:
    retriever = make_retriever()
    assert isinstance(retriever, Retriever)
    assert RETRIEVERS.load(retriever.name) is type(retriever)


@pytest.mark.parametrize("k", [1, 2, 5, 6, 7, 50])
def test_k_is_honoured(make_retriever: Callable[[], Retriever], k: int) -> None:
    user = _alice()
    hits = make_retriever().retrieve(_QUERY, user, k)
    assert len(hits) == min(k, len(user))
    assert [hit.rank for hit in hits] == list(range(len(hits)))
    assert all(isinstance(hit, RetrievalHit) for hit in hits)


def test_k_zero_gives_nothing(make_retriever: Callable[[], Retriever]) -> None:
    assert make_retriever().retrieve(_QUERY, _alice(), 0) == []


@pytest.mark.parametrize("k", [-1, -10, 1.5])
def test_invalid_k_is_rejected(make_retriever: Callable[[], Retriever], k: float) -> None:
    with pytest.raises(ValueError, match="k must be"):
        make_retriever().retrieve(_QUERY, _alice(), k)  # type: ignore[arg-type]


def test_empty_profile_gives_nothing(make_retriever: Callable[[], Retriever]) -> None:
    assert make_retriever().retrieve(_QUERY, profile("carol"), 3) == []


def test_order_is_deterministic_across_calls_and_instances(make_retriever: Callable[[], Retriever]) -> None:
    retriever = make_retriever()
    first = retriever.retrieve(_QUERY, _alice(), 4)
    again = retriever.retrieve(_QUERY, _alice(), 4)
    fresh = make_retriever().retrieve(_QUERY, _alice(), 4)
    assert _ids(first) == _ids(again) == _ids(fresh)
    assert [hit.score for hit in first] == [hit.score for hit in fresh]


def test_scores_do_not_increase_with_rank(make_retriever: Callable[[], Retriever]) -> None:
    hits = make_retriever().retrieve(_QUERY, _alice(), 6)
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)


def test_hits_are_the_records_of_the_profile_passed_in(make_retriever: Callable[[], Retriever]) -> None:
    retriever = make_retriever()
    alice, bob = _alice(), _bob()
    # Interleave users so that any state kept between calls (an index cache) is exercised.
    for user, other in [(alice, bob), (bob, alice), (alice, bob), (bob, alice)]:
        hits = retriever.retrieve(_QUERY, user, 10)
        assert len(hits) == len(user) and len(set(_ids(hits))) == len(hits)
        for hit in hits:
            assert any(hit.record is mine for mine in user.records)
            assert not any(hit.record is theirs for theirs in other.records)


def test_no_record_is_returned_twice(make_retriever: Callable[[], Retriever]) -> None:
    hits = make_retriever().retrieve(_QUERY, _alice(), 6)
    assert len(set(_ids(hits))) == len(hits) == 6
    assert len({id(hit.record) for hit in hits}) == 6


def test_the_relevant_record_ranks_first(make_content_retriever: Callable[[], Retriever]) -> None:
    assert _ids(make_content_retriever().retrieve(_QUERY, _alice(), 1)) == ["r1"]


def test_users_sharing_record_ids_are_ranked_on_their_own_texts(
        make_content_retriever: Callable[[], Retriever]) -> None:
    retriever = make_content_retriever()
    retriever.retrieve(_QUERY, _alice(), 3)  # fill any cache with alice's records first
    assert _ids(retriever.retrieve("stock markets fell", _bob(), 1)) == ["r2"]
    assert _ids(retriever.retrieve("city council budget", _alice(), 1)) == ["r2"]
