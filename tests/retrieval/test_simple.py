"""The LaMP paper's non-semantic baselines: recency and random retrieval."""

from __future__ import annotations

from tailor.retrieval.simple import RandomRetriever, RecencyRetriever
from tailor.types import HistoryRecord, Profile, RetrievalHit


def record(id: str, date: str | None = None, text: str = "some text") -> HistoryRecord:
    return HistoryRecord(id=id, fields={"text": text}, date=date)


def profile(*records: HistoryRecord, user_id: str = "u1") -> Profile:
    return Profile(user_id=user_id, records=tuple(records))


def ids(hits: list[RetrievalHit]) -> list[str]:
    return [hit.record.id for hit in hits]


def big_profile(user_id: str = "u1", size: int = 50) -> Profile:
    return profile(*(record(f"r{i}", text=f"item {i}") for i in range(size)), user_id=user_id)


# -- recency -------------------------------------------------------------------------------------


def test_recency_orders_by_date_latest_first() -> None:
    user = profile(record("a", "2019-05-01"), record("b", "2021-01-31"), record("c", "2020-12-01"),
                   record("d", "2021-02-01"))
    assert ids(RecencyRetriever().retrieve("ignored", user, 4)) == ["d", "b", "c", "a"]


def test_recency_puts_undated_records_last() -> None:
    user = profile(record("undated-1"), record("old", "1999-01-01"), record("undated-2"), record("new", "2024-06-30"))
    assert ids(RecencyRetriever().retrieve("", user, 4)) == ["new", "old", "undated-2", "undated-1"]


def test_recency_breaks_ties_by_later_insertion_first() -> None:
    user = profile(record("first", "2020-01-01"), record("other", "2019-01-01"), record("second", "2020-01-01"),
                   record("third", "2020-01-01"))
    assert ids(RecencyRetriever().retrieve("", user, 4)) == ["third", "second", "first", "other"]


def test_recency_ignores_the_query_and_keeps_the_k_most_recent() -> None:
    user = profile(*(record(f"r{i}", f"2020-01-{i + 1:02d}") for i in range(10)))
    retriever = RecencyRetriever()
    assert ids(retriever.retrieve("river", user, 3)) == ["r9", "r8", "r7"]
    assert ids(retriever.retrieve("something else", user, 3)) == ["r9", "r8", "r7"]


def test_recency_scores_fall_with_rank() -> None:
    hits = RecencyRetriever().retrieve("", profile(record("a", "2020-01-01"), record("b", "2021-01-01")), 2)
    assert hits[0].score > hits[1].score


# -- random --------------------------------------------------------------------------------------


def test_random_repeats_its_picks_for_the_same_seed_user_and_query() -> None:
    user = big_profile()
    first = RandomRetriever(seed=3).retrieve("a query", user, 5)
    assert ids(first) == ids(RandomRetriever(seed=3).retrieve("a query", user, 5))
    assert ids(first) == ids(RandomRetriever(seed=3).retrieve("a query", big_profile(), 5))


def test_random_picks_change_with_the_seed() -> None:
    user = big_profile()
    picks = {tuple(ids(RandomRetriever(seed=seed).retrieve("a query", user, 5))) for seed in range(4)}
    assert len(picks) == 4


def test_random_picks_change_with_the_user_and_the_query() -> None:
    retriever = RandomRetriever(seed=0)
    base = ids(retriever.retrieve("a query", big_profile("u1"), 5))
    assert ids(retriever.retrieve("a query", big_profile("u2"), 5)) != base
    assert ids(retriever.retrieve("another query", big_profile("u1"), 5)) != base


def test_random_does_not_always_pick_the_first_records() -> None:
    hits = RandomRetriever(seed=0).retrieve("a query", big_profile(), 5)
    assert ids(hits) != [f"r{i}" for i in range(5)]


def test_random_never_returns_more_than_the_profile() -> None:
    user = big_profile(size=4)
    hits = RandomRetriever(seed=1).retrieve("q", user, 10)
    assert sorted(ids(hits)) == ["r0", "r1", "r2", "r3"]
