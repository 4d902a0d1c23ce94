"""The persistent record index: same ranking as BM25Retriever, fresh after any write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tailor.retrieval.bm25 import BM25Retriever
from tailor.retrieval.record_index import RecordIndex
from tailor.retrieval.simple import RecencyRetriever
from tailor.store.sqlite import SQLiteProfileStore
from tailor.types import HistoryRecord

TEXTS = ["Hiking the Alps with my dog", "Tomato sauce recipe", "Learning the cello", "The dog ate my cello notes",
         "Summer tomato salad", "Marathon training in summer"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteProfileStore]:
    with SQLiteProfileStore(tmp_path / "store.db") as opened:
        yield opened


def records(texts: list[str], dates: list[str | None] | None = None) -> list[HistoryRecord]:
    dates = dates or [None] * len(texts)
    return [HistoryRecord(f"r{i}", {"text": t}, d) for i, (t, d) in enumerate(zip(texts, dates))]


@pytest.mark.parametrize("query", ["dog", "tomato summer", "cello notes dog", "zebra"])
def test_ranking_matches_the_bm25_retriever(store: SQLiteProfileStore, query: str) -> None:
    store.add_records("u", records(TEXTS))
    index = RecordIndex(store)
    profile = store.get_profile("u")
    scores = BM25Retriever().scores(query, profile)
    expected = [h.record for h in BM25Retriever().retrieve(query, profile, 3) if scores[int(h.record.id[1:])] > 0]
    assert index.search("u", query, 3) == expected


def test_records_written_outside_the_server_are_indexed_on_the_next_search(store: SQLiteProfileStore) -> None:
    index = RecordIndex(store)
    store.add_records("u", records(TEXTS[:2]))
    assert [r.id for r in index.search("u", "tomato", 3) or []] == ["r1"]
    store.add_records("u", [HistoryRecord("new", {"text": "tomato soup"})])  # through the store's API, not the server
    assert [r.id for r in index.search("u", "tomato soup", 3) or []] == ["new", "r1"]
    store.add_records("u", [HistoryRecord("r1", {"text": "bread"})])  # replaced: its old words are gone
    assert [r.id for r in index.search("u", "tomato", 3) or []] == ["new"]
    with store.transaction() as connection:
        assert connection.execute("SELECT terms FROM serve_record_terms WHERE record_id = 'r1'").fetchone() == ("bread",)


def test_an_index_refreshed_in_a_transaction_commits_with_it(store: SQLiteProfileStore) -> None:
    index = RecordIndex(store)
    store.set_attributes("u", {})
    with pytest.raises(RuntimeError), store.transaction():
        store.add_records("u", records(["walrus facts"]))
        assert index.refresh("u")
        raise RuntimeError("the batch fails")
    assert index.search("u", "walrus", 3) == []
    assert not index.refresh("u")  # nothing stale


def test_unknown_users_and_recency(store: SQLiteProfileStore) -> None:
    index = RecordIndex(store)
    assert index.search("ghost", "x", 3) is None
    assert index.recent("ghost", 3) is None
    store.add_records("u", records(TEXTS, ["2020-01-01", None, "2022-05-05", "2022-05-05", None, "2019-01-01"]))
    expected = [h.record for h in RecencyRetriever().retrieve("", store.get_profile("u"), 4)]
    assert index.recent("u", 4) == expected


def test_a_deleted_and_recreated_user_never_sees_the_old_index(store: SQLiteProfileStore) -> None:
    index = RecordIndex(store)
    store.add_records("u", records(["old secret words"]))
    assert index.search("u", "secret", 3)
    store.delete_user("u")
    store.add_records("u", records(["fresh text"]))  # same ids, same profile version as before
    assert index.search("u", "secret", 3) == []
    assert [r.fields["text"] for r in index.search("u", "fresh", 3) or []] == ["fresh text"]
