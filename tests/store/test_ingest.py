"""ingest_examples: task examples' profiles into a store, merged per user, in one batch."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from tailor.store import IngestReport, InMemoryProfileStore, SQLiteProfileStore, ingest_examples
from tailor.types import HistoryRecord, Profile, TaskExample


def record(record_id: str, text: str = "") -> HistoryRecord:
    return HistoryRecord(record_id, {"text": text or f"text of {record_id}"})


def example(example_id: str, user_id: str, *records: HistoryRecord, **attributes: str) -> TaskExample:
    return TaskExample(example_id, user_id, f"input {example_id}", Profile(user_id, records, attributes))


class CountingStore(InMemoryProfileStore):
    """Records how the store was called: ingestion promises one add_profiles call."""

    def __init__(self) -> None:
        super().__init__()
        self.add_profiles_calls = 0

    def add_profiles(self, profiles: Iterable[Profile]) -> int:
        self.add_profiles_calls += 1
        return super().add_profiles(profiles)


def test_profiles_are_stored_under_each_examples_user() -> None:
    store = CountingStore()
    report = ingest_examples(
        store,
        [example("e1", "alice", record("a1"), record("a2"), age="30"), example("e2", "bob", record("b1"))],
    )
    assert report == IngestReport(users=2, records_new=3, records_total=3)
    assert store.add_profiles_calls == 1
    assert [r.id for r in store.get_profile("alice").records] == ["a1", "a2"]
    assert dict(store.get_profile("alice").attributes) == {"age": "30"}
    assert [r.id for r in store.get_profile("bob").records] == ["b1"]


def test_examples_of_one_user_are_merged_by_record_id() -> None:
    store = CountingStore()
    report = ingest_examples(
        store,
        [
            example("e1", "alice", record("a1"), record("a2", "old")),
            example("e2", "bob", record("a1")),
            example("e3", "alice", record("a2", "new"), record("a3"), city="Lyon"),
        ],
    )
    assert report == IngestReport(users=2, records_new=4, records_total=4)
    assert store.add_profiles_calls == 1
    alice = store.get_profile("alice")
    assert [r.id for r in alice.records] == ["a1", "a2", "a3"]
    assert alice.records[1].fields["text"] == "new"
    assert dict(alice.attributes) == {"city": "Lyon"}


def test_the_examples_user_id_wins_over_the_profiles() -> None:
    store = InMemoryProfileStore()
    stray = TaskExample("e1", "alice", "input", Profile("profile-owner", (record("a1"),)))
    ingest_examples(store, [stray])
    assert store.list_users() == ["alice"]


def test_ingesting_again_reports_nothing_new() -> None:
    examples = [example("e1", "alice", record("a1"), record("a2")), example("e2", "bob", record("b1"))]
    with SQLiteProfileStore(":memory:") as store:
        assert ingest_examples(store, examples).records_new == 3
        before = store.get_profile("alice")
        report = ingest_examples(store, iter(examples))
        assert report == IngestReport(users=2, records_new=0, records_total=3)
        assert store.get_profile("alice") == before


def test_no_examples_store_nothing() -> None:
    store = InMemoryProfileStore()
    assert ingest_examples(store, []) == IngestReport(users=0, records_new=0, records_total=0)
    assert store.list_users() == []


@pytest.mark.parametrize(
    ("examples", "error", "message"),
    [
        ([example("e1", "alice", record("a1")), {"id": "e2"}], TypeError, r"examples\[1\]"),
        ([TaskExample("e9", "", "input", Profile("x"))], ValueError, "e9"),
        (
            [example("e1", "alice", record("a1")), TaskExample("e2", "bob", "in", Profile("bob", ("oops",)))],  # type: ignore[arg-type]
            TypeError,
            "e2",
        ),
    ],
    ids=["not-an-example", "empty-user-id", "bad-record"],
)
def test_bad_examples_raise_and_store_nothing(examples: list[object], error: type[Exception], message: str) -> None:
    store = InMemoryProfileStore()
    with pytest.raises(error, match=message):
        ingest_examples(store, examples)  # type: ignore[arg-type]
    assert store.list_users() == []
