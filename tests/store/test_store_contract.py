"""The contract every ProfileStore keeps, run over every implementation.

Written against the ProfileStore protocol only: a new store joins by adding a parameter to
the ``make_store`` fixture (conftest.py), and must pass unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tailor.store import ProfileStore, UnknownUserError
from tailor.types import HistoryRecord, Profile

StoreFactory = Callable[[], ProfileStore]

# The fixtures ``make_store`` and ``store``, parametrized over every implementation
# (SQLite file and memory, in-memory, PostgreSQL), live in conftest.py.


def record(record_id: str, text: str = "", date: str | None = None, **fields: str) -> HistoryRecord:
    return HistoryRecord(record_id, {"text": text or f"text of {record_id}", **fields}, date)


def test_every_implementation_satisfies_the_protocol(store: ProfileStore) -> None:
    assert isinstance(store, ProfileStore)


# -- round trip ---------------------------------------------------------------------------


def test_records_round_trip_with_fields_dates_and_order(store: ProfileStore) -> None:
    records = [
        record("r3", "third", "2020-03-01", title="Zebra"),
        record("r1", "first", None),
        record("r2", 'ünïcödé ✓ and "quotes"\nnewline', "2019-12-31", title=""),
    ]
    assert store.add_records("alice", records) == 3
    profile = store.get_profile("alice")
    assert profile.user_id == "alice"
    assert profile.records == tuple(records)  # insertion order, not id or date order
    assert [r.date for r in profile.records] == ["2020-03-01", None, "2019-12-31"]
    assert list(profile.records[0].fields) == ["text", "title"]  # field order survives


def test_later_batches_append_after_earlier_ones(store: ProfileStore) -> None:
    store.add_records("alice", [record("b"), record("a")])
    store.add_records("alice", [record("c")])
    assert [r.id for r in store.get_profile("alice").records] == ["b", "a", "c"]


def test_attributes_round_trip_and_merge(store: ProfileStore) -> None:
    store.set_attributes("alice", {"age": "31", "occupation": "writer"})
    store.set_attributes("alice", {"age": "32", "city": "Lyon"})
    profile = store.get_profile("alice")
    assert dict(profile.attributes) == {"age": "32", "occupation": "writer", "city": "Lyon"}
    assert profile.records == ()


def test_add_profiles_stores_records_and_attributes_of_many_users(store: ProfileStore) -> None:
    new = store.add_profiles(
        [
            Profile("u1", (record("a"), record("b")), {"gender": "F"}),
            Profile("u2", (record("a"),)),
            Profile("u3"),
        ]
    )
    assert new == 3
    assert store.list_users() == ["u1", "u2", "u3"]
    assert [r.id for r in store.get_profile("u1").records] == ["a", "b"]
    assert dict(store.get_profile("u1").attributes) == {"gender": "F"}
    assert store.get_profile("u3").records == ()


def test_add_profiles_merges_profiles_of_the_same_user(store: ProfileStore) -> None:
    new = store.add_profiles([Profile("u1", (record("a"),), {"k": "1"}), Profile("u1", (record("b"),), {"k": "2"})])
    assert new == 2
    profile = store.get_profile("u1")
    assert [r.id for r in profile.records] == ["a", "b"]
    assert dict(profile.attributes) == {"k": "2"}


def test_adding_no_records_still_creates_the_user(store: ProfileStore) -> None:
    assert store.add_records("alice", []) == 0
    assert store.has_user("alice")
    assert store.count_records("alice") == 0


def test_returned_profiles_are_snapshots(store: ProfileStore) -> None:
    fields = {"text": "original"}
    store.add_records("alice", [HistoryRecord("r1", fields)])
    fields["text"] = "changed by the caller afterwards"
    assert store.get_profile("alice").records[0].fields == {"text": "original"}


# -- user isolation -------------------------------------------------------------------------


def test_records_of_one_user_never_appear_in_another(store: ProfileStore) -> None:
    store.add_records("alice", [record("a1"), record("a2")])
    store.add_records("bob", [record("b1")])
    assert [r.id for r in store.get_profile("alice").records] == ["a1", "a2"]
    assert [r.id for r in store.get_profile("bob").records] == ["b1"]


def test_same_record_id_under_two_users_is_independent(store: ProfileStore) -> None:
    store.add_records("alice", [record("shared", "alice's version")])
    assert store.add_records("bob", [record("shared", "bob's version")]) == 1
    store.add_records("bob", [record("shared", "bob's second version")])
    assert store.get_profile("alice").records[0].fields["text"] == "alice's version"
    assert store.get_profile("bob").records[0].fields["text"] == "bob's second version"
    store.delete_user("bob")
    assert store.get_profile("alice").records[0].fields["text"] == "alice's version"


def test_attributes_are_per_user(store: ProfileStore) -> None:
    store.set_attributes("alice", {"age": "30"})
    store.set_attributes("bob", {"age": "40"})
    assert dict(store.get_profile("alice").attributes) == {"age": "30"}
    assert dict(store.get_profile("bob").attributes) == {"age": "40"}


# -- deletion -------------------------------------------------------------------------------


def test_delete_user_removes_everything_and_only_that_user(store: ProfileStore) -> None:
    store.add_profiles([Profile("alice", (record("a"),), {"age": "30"}), Profile("bob", (record("b"),), {"age": "40"})])
    assert store.delete_user("alice") is True
    assert not store.has_user("alice")
    assert store.list_users() == ["bob"]
    with pytest.raises(UnknownUserError):
        store.get_profile("alice")
    with pytest.raises(UnknownUserError):
        store.count_records("alice")
    with pytest.raises(UnknownUserError):
        store.export_user("alice")
    assert store.delete_user("alice") is False
    bob = store.get_profile("bob")
    assert [r.id for r in bob.records] == ["b"]
    assert dict(bob.attributes) == {"age": "40"}


def test_a_deleted_user_added_again_starts_empty(store: ProfileStore) -> None:
    store.add_profiles([Profile("alice", (record("a"), record("b")), {"age": "30"})])
    store.delete_user("alice")
    assert store.add_records("alice", [record("c")]) == 1
    profile = store.get_profile("alice")
    assert [r.id for r in profile.records] == ["c"]
    assert dict(profile.attributes) == {}


def test_unknown_user(store: ProfileStore) -> None:
    with pytest.raises(UnknownUserError) as raised:
        store.get_profile("nobody")
    assert raised.value.user_id == "nobody"
    assert "nobody" in str(raised.value)
    assert isinstance(raised.value, KeyError)
    assert store.has_user("nobody") is False
    assert store.delete_user("nobody") is False


# -- idempotent re-ingestion -----------------------------------------------------------------


def test_adding_the_same_batch_twice_changes_nothing(store: ProfileStore) -> None:
    batch = [record("a", date="2020-01-01"), record("b"), record("c", title="t")]
    assert store.add_records("alice", batch) == 3
    before = store.get_profile("alice")
    assert store.add_records("alice", batch) == 0
    assert store.get_profile("alice") == before
    assert store.add_profiles([Profile("alice", tuple(batch))]) == 0
    assert store.get_profile("alice") == before


def test_re_adding_a_record_replaces_it_in_place(store: ProfileStore) -> None:
    store.add_records("alice", [record("a"), record("b", "old", "2000-01-01"), record("c")])
    assert store.add_records("alice", [record("b", "new", None), record("d")]) == 1
    records = store.get_profile("alice").records
    assert [r.id for r in records] == ["a", "b", "c", "d"]
    assert records[1] == record("b", "new", None)


def test_a_repeated_id_within_one_batch_counts_once(store: ProfileStore) -> None:
    assert store.add_records("alice", [record("a", "first"), record("b"), record("a", "second")]) == 2
    records = store.get_profile("alice").records
    assert [r.id for r in records] == ["a", "b"]
    assert records[0].fields["text"] == "second"


# -- atomic batches ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [{"id": "x", "text": "a dict"}, "a string", None])
def test_a_batch_with_a_bad_record_stores_nothing(store: ProfileStore, bad: object) -> None:
    store.add_records("alice", [record("kept")])
    with pytest.raises(TypeError, match=r"records\[1\]"):
        store.add_records("alice", [record("new1"), bad, record("new2")])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        store.add_records("bob", [record("b1"), bad])  # type: ignore[list-item]
    assert [r.id for r in store.get_profile("alice").records] == ["kept"]
    assert not store.has_user("bob")


def test_a_profile_batch_with_a_bad_record_stores_nothing(store: ProfileStore) -> None:
    store.add_profiles([Profile("alice", (record("kept"),), {"age": "30"})])
    batch = [
        Profile("alice", (record("new"),), {"age": "99"}),
        Profile("bob", (record("b1"),)),
        Profile("carol", (record("c1"), object())),  # type: ignore[arg-type]
    ]
    with pytest.raises(TypeError, match="carol"):
        store.add_profiles(batch)
    assert store.list_users() == ["alice"]
    alice = store.get_profile("alice")
    assert [r.id for r in alice.records] == ["kept"]
    assert dict(alice.attributes) == {"age": "30"}


def test_a_failing_iterator_stores_nothing(store: ProfileStore) -> None:
    def records() -> Iterator[HistoryRecord]:
        yield record("a")
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        store.add_records("alice", records())
    assert not store.has_user("alice")


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.add_records("", [record("a")]),
        lambda s: s.add_records(3, [record("a")]),
        lambda s: s.add_records("alice", record("a")),
        lambda s: s.add_profiles([("alice", [])]),
        lambda s: s.set_attributes("alice", {"age": 30}),
        lambda s: s.set_attributes("alice", {"": "x"}),
        lambda s: s.set_attributes("alice", ["age"]),
    ],
    ids=["empty-user", "int-user", "lone-record", "not-a-profile", "int-value", "empty-key", "not-a-mapping"],
)
def test_bad_arguments_raise_and_store_nothing(store: ProfileStore, call: Callable[[ProfileStore], object]) -> None:
    with pytest.raises((TypeError, ValueError)):
        call(store)
    assert store.list_users() == []


# -- export, counts, listing ----------------------------------------------------------------


def test_export_user(store: ProfileStore) -> None:
    store.add_records("alice", [record("a", "hello", "2021-05-06", title="T"), record("b", "bye")])
    store.set_attributes("alice", {"age": "30"})
    assert store.export_user("alice") == {
        "user_id": "alice",
        "attributes": {"age": "30"},
        "records": [
            {"id": "a", "text": "hello", "title": "T", "date": "2021-05-06"},
            {"id": "b", "text": "bye"},
        ],
    }


def test_count_records(store: ProfileStore) -> None:
    store.add_records("alice", [record("a"), record("b")])
    store.add_records("alice", [record("b"), record("c")])
    store.add_records("bob", [record("a")])
    assert store.count_records("alice") == 3
    assert store.count_records("bob") == 1


def test_list_users_is_sorted(store: ProfileStore) -> None:
    for user_id in ["zoe", "Bob", "alice", "10", "2", "émile"]:
        store.add_records(user_id, [record("r")])
    assert store.list_users() == sorted(["zoe", "Bob", "alice", "10", "2", "émile"])


# -- lifecycle -------------------------------------------------------------------------------


def test_close_is_idempotent_and_a_closed_store_refuses_work(store: ProfileStore) -> None:
    store.close()
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.list_users()
    with pytest.raises(RuntimeError, match="closed"):
        store.add_records("alice", [record("a")])


def test_context_manager_closes(make_store: StoreFactory) -> None:
    with make_store() as opened:  # type: ignore[attr-defined]
        opened.add_records("alice", [record("a")])
    with pytest.raises(RuntimeError, match="closed"):
        opened.has_user("alice")
