"""The contract every ProfileStore keeps for derived data: profile versions, record
embeddings, artifacts and personas, run over every implementation.

Written against the ProfileStore protocol only, in the style of test_store_contract.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tailor.store import Artifact, ProfileStore, SQLiteProfileStore, UnknownUserError
from tailor.store.migrations import MIGRATIONS, run_sqlite_steps
from tailor.store.sqlite import SCHEMA_VERSION
from tailor.types import HistoryRecord, Persona, Profile

StoreFactory = Callable[[], ProfileStore]

# The fixtures ``make_store`` and ``store``, parametrized over every implementation
# (SQLite file and memory, in-memory, PostgreSQL), live in conftest.py.


def record(record_id: str, text: str = "", date: str | None = None) -> HistoryRecord:
    return HistoryRecord(record_id, {"text": text or f"text of {record_id}"}, date)


def vector(*values: float) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


# -- profile version ------------------------------------------------------------------------


def test_profile_version_grows_when_records_change(store: ProfileStore) -> None:
    store.set_attributes("alice", {"age": "30"})
    start = store.profile_version("alice")
    store.add_records("alice", [record("a"), record("b")])
    added = store.profile_version("alice")
    assert added > start
    store.add_records("alice", [record("a", "new text")])
    replaced = store.profile_version("alice")
    assert replaced > added
    store.add_records("alice", [record("a", "new text", "2024-01-01")])  # only the date changes
    redated = store.profile_version("alice")
    assert redated > replaced
    store.add_profiles([Profile("alice", (record("c"),))])
    assert store.profile_version("alice") > redated


def test_profile_version_ignores_identical_re_adds_and_attributes(store: ProfileStore) -> None:
    store.add_records("alice", [record("a"), record("b", date="2020-01-01")])
    before = store.profile_version("alice")
    store.add_records("alice", [record("b", date="2020-01-01"), record("a")])  # re-ingesting the same data
    store.add_records("alice", [])
    store.set_attributes("alice", {"age": "31"})
    assert store.profile_version("alice") == before


def test_profile_versions_are_per_user(store: ProfileStore) -> None:
    store.add_records("alice", [record("a")])
    store.add_records("bob", [record("a")])
    bob = store.profile_version("bob")
    store.add_records("alice", [record("b")])
    assert store.profile_version("bob") == bob


def test_profile_version_of_an_unknown_user_raises(store: ProfileStore) -> None:
    with pytest.raises(UnknownUserError):
        store.profile_version("nobody")


# -- record embeddings ----------------------------------------------------------------------


def test_embeddings_round_trip_in_profile_order(store: ProfileStore) -> None:
    store.add_records("alice", [record("c"), record("a"), record("b")])
    store.put_embeddings("alice", "m1", {"a": vector(1, 0, 0), "c": np.array([0.25, 0.5, -1.0])})
    ids, matrix = store.get_embeddings("alice", "m1")
    assert ids == ["c", "a"]  # profile order; b has no vector and is left out
    assert matrix.dtype == np.float32 and matrix.shape == (2, 3)
    np.testing.assert_array_equal(matrix, [[0.25, 0.5, -1.0], [1, 0, 0]])
    store.put_embeddings("alice", "m1", {"b": vector(0, 1, 0), "a": vector(0, 0, 1)})  # a replaced
    ids, matrix = store.get_embeddings("alice", "m1")
    assert ids == ["c", "a", "b"]
    np.testing.assert_array_equal(matrix[1:], [[0, 0, 1], [0, 1, 0]])


def test_embeddings_are_kept_per_model(store: ProfileStore) -> None:
    store.add_records("alice", [record("a")])
    store.put_embeddings("alice", "small", {"a": vector(1, 2)})
    store.put_embeddings("alice", "large", {"a": vector(1, 2, 3, 4)})
    assert store.get_embeddings("alice", "small")[1].shape == (1, 2)
    assert store.get_embeddings("alice", "large")[1].shape == (1, 4)
    ids, matrix = store.get_embeddings("alice", "none-yet")
    assert ids == [] and matrix.shape == (0, 0)


def test_embeddings_are_isolated_between_users(store: ProfileStore) -> None:
    store.add_records("alice", [record("r1"), record("r2")])
    store.add_records("bob", [record("r1")])
    store.put_embeddings("alice", "m", {"r1": vector(1, 0), "r2": vector(0, 1)})
    store.put_embeddings("bob", "m", {"r1": vector(5, 5)})
    assert store.get_embeddings("alice", "m")[0] == ["r1", "r2"]
    np.testing.assert_array_equal(store.get_embeddings("bob", "m")[1], [[5, 5]])
    store.delete_embeddings("bob")
    assert store.get_embeddings("alice", "m")[0] == ["r1", "r2"]


def test_put_embeddings_rejects_ids_not_in_the_users_profile(store: ProfileStore) -> None:
    store.add_records("alice", [record("a")])
    store.add_records("bob", [record("theirs")])
    with pytest.raises(ValueError, match="'theirs'"):
        store.put_embeddings("alice", "m", {"a": vector(1, 0), "theirs": vector(0, 1)})
    assert store.get_embeddings("alice", "m")[0] == []  # all or nothing
    with pytest.raises(UnknownUserError):
        store.put_embeddings("nobody", "m", {"a": vector(1, 0)})


@pytest.mark.parametrize("bad", [np.zeros((2, 2)), np.zeros(0), np.array([1.0, np.nan]), "text"])
def test_put_embeddings_rejects_malformed_vectors(store: ProfileStore, bad: object) -> None:
    store.add_records("alice", [record("a")])
    with pytest.raises((ValueError, TypeError)):
        store.put_embeddings("alice", "m", {"a": bad})  # type: ignore[dict-item]


def test_put_embeddings_keeps_one_dimension_per_user_and_model(store: ProfileStore) -> None:
    store.add_records("alice", [record("a"), record("b")])
    with pytest.raises(ValueError, match="dimension"):
        store.put_embeddings("alice", "m", {"a": vector(1, 0), "b": vector(1, 0, 0)})
    store.put_embeddings("alice", "m", {"a": vector(1, 0)})
    with pytest.raises(ValueError, match="dimension"):
        store.put_embeddings("alice", "m", {"b": vector(1, 0, 0)})
    store.delete_embeddings("alice", "m")
    store.put_embeddings("alice", "m", {"b": vector(1, 0, 0)})
    assert store.get_embeddings("alice", "m")[1].shape == (1, 3)


def test_replacing_a_records_fields_invalidates_its_embeddings(store: ProfileStore) -> None:
    store.add_records("alice", [record("a", "old"), record("b", "kept", "2020-01-01")])
    store.put_embeddings("alice", "m1", {"a": vector(1, 0), "b": vector(0, 1)})
    store.put_embeddings("alice", "m2", {"a": vector(1, 1, 1)})
    store.add_records("alice", [record("a", "old"), record("b", "kept", "2020-01-01")])  # unchanged: kept
    assert store.get_embeddings("alice", "m1")[0] == ["a", "b"]
    store.add_records("alice", [record("b", "kept", "2021-06-01")])  # a date is not embedded text: kept
    assert store.get_embeddings("alice", "m1")[0] == ["a", "b"]
    store.add_records("alice", [record("a", "new text")])
    assert store.get_embeddings("alice", "m1")[0] == ["b"]
    assert store.get_embeddings("alice", "m2")[0] == []


def test_delete_embeddings_by_model_or_all(store: ProfileStore) -> None:
    store.add_records("alice", [record("a"), record("b")])
    store.put_embeddings("alice", "m1", {"a": vector(1), "b": vector(2)})
    store.put_embeddings("alice", "m2", {"a": vector(3)})
    assert store.delete_embeddings("alice", "m1") == 2
    assert store.get_embeddings("alice", "m1")[0] == []
    assert store.get_embeddings("alice", "m2")[0] == ["a"]
    assert store.delete_embeddings("alice") == 1
    assert store.delete_embeddings("alice") == 0
    assert store.delete_embeddings("nobody") == 0
    assert store.count_records("alice") == 2  # records stay


def test_get_embeddings_of_an_unknown_user_raises(store: ProfileStore) -> None:
    with pytest.raises(UnknownUserError):
        store.get_embeddings("nobody", "m")


def test_returned_matrices_are_copies(store: ProfileStore) -> None:
    store.add_records("alice", [record("a")])
    given = vector(1, 2)
    store.put_embeddings("alice", "m", {"a": given})
    given[0] = 99
    matrix = store.get_embeddings("alice", "m")[1]
    matrix[0, 1] = 99
    np.testing.assert_array_equal(store.get_embeddings("alice", "m")[1], [[1, 2]])


# -- artifacts -----------------------------------------------------------------------------


def test_artifacts_round_trip_and_replace(store: ProfileStore) -> None:
    store.add_records("alice", [record("a")])
    version = store.profile_version("alice")
    value = {"text": "Alice writes about rivers.", "model": "smollm2", "scores": [1, 2.5], "nested": {"ok": True}}
    stored = store.put_artifact("alice", "summary", "smollm2/v1", value, version)
    got = store.get_artifact("alice", "summary", "smollm2/v1")
    assert got == stored
    assert isinstance(got, Artifact)
    assert (got.kind, got.key, dict(got.value), got.profile_version) == ("summary", "smollm2/v1", value, version)
    assert got.created_at.endswith("+00:00")
    store.put_artifact("alice", "summary", "smollm2/v1", {"text": "newer"}, version + 1)
    got = store.get_artifact("alice", "summary", "smollm2/v1")
    assert got is not None and dict(got.value) == {"text": "newer"} and got.profile_version == version + 1
    assert store.get_artifact("alice", "summary", "other") is None


def test_list_and_delete_artifacts(store: ProfileStore) -> None:
    store.add_records("alice", [record("a")])
    store.put_artifact("alice", "summary", "b", {}, 1)
    store.put_artifact("alice", "style", "z", {}, 1)
    store.put_artifact("alice", "summary", "a", {}, 1)
    assert [(a.kind, a.key) for a in store.list_artifacts("alice")] == [("style", "z"), ("summary", "a"),
                                                                        ("summary", "b")]
    assert store.delete_artifacts("alice", "summary") == 2
    assert [(a.kind, a.key) for a in store.list_artifacts("alice")] == [("style", "z")]
    assert store.delete_artifacts("alice") == 1
    assert store.list_artifacts("alice") == []
    assert store.delete_artifacts("nobody") == 0


def test_artifacts_are_isolated_between_users(store: ProfileStore) -> None:
    store.add_records("alice", [record("a")])
    store.add_records("bob", [record("a")])
    store.put_artifact("alice", "summary", "k", {"text": "alice"}, 1)
    assert store.get_artifact("bob", "summary", "k") is None
    assert store.list_artifacts("bob") == []


def test_artifacts_are_snapshots(store: ProfileStore) -> None:
    store.add_records("alice", [record("a")])
    value = {"items": [1]}
    store.put_artifact("alice", "summary", "k", value, 1)
    value["items"].append(2)
    got = store.get_artifact("alice", "summary", "k")
    assert got is not None and dict(got.value) == {"items": [1]}


def test_put_artifact_checks_its_arguments(store: ProfileStore) -> None:
    store.add_records("alice", [record("a")])
    with pytest.raises(UnknownUserError):
        store.put_artifact("nobody", "summary", "k", {}, 0)
    with pytest.raises(ValueError, match="JSON"):
        store.put_artifact("alice", "summary", "k", {"bad": object()}, 0)
    with pytest.raises(ValueError, match="kind"):
        store.put_artifact("alice", "", "k", {}, 0)
    with pytest.raises(ValueError, match="profile_version"):
        store.put_artifact("alice", "summary", "k", {}, -1)
    with pytest.raises(UnknownUserError):
        store.get_artifact("nobody", "summary", "k")
    assert store.list_artifacts("alice") == []


# -- personas -------------------------------------------------------------------------------


def _personas() -> list[Persona]:
    return [
        Persona("p-rivers", "Writes about rivers and volunteering.", (0.5, -0.25, 1e-7), 2, {"model": "m"}),
        Persona("p-finance", "Writes about markets.", np.array([1.0, 0.0, 0.0]), 1),
    ]


def test_personas_round_trip_in_the_order_given(store: ProfileStore) -> None:
    for user_id in ("alice", "bob", "carol"):
        store.add_records(user_id, [record("a")])
    store.put_personas(_personas(), {"alice": "p-rivers", "bob": "p-rivers", "carol": "p-finance"})
    assert store.list_personas() == _personas()
    assert store.list_personas()[1].centroid == (1.0, 0.0, 0.0)
    assert store.persona_of("alice") == "p-rivers"
    assert store.persona_of("carol") == "p-finance"
    assert store.persona_of("nobody") is None


def test_put_personas_replaces_everything(store: ProfileStore) -> None:
    for user_id in ("alice", "bob"):
        store.add_records(user_id, [record("a")])
    store.put_personas(_personas(), {"alice": "p-rivers", "bob": "p-finance"})
    store.put_personas([Persona("p-new", "Everyone.")], {"bob": "p-new"})
    assert [p.persona_id for p in store.list_personas()] == ["p-new"]
    assert store.persona_of("alice") is None
    assert store.persona_of("bob") == "p-new"
    store.put_personas([], {})
    assert store.list_personas() == [] and store.persona_of("bob") is None


def test_put_personas_is_all_or_nothing(store: ProfileStore) -> None:
    store.add_records("alice", [record("a")])
    store.put_personas(_personas(), {"alice": "p-rivers"})
    with pytest.raises(ValueError, match="unknown persona 'p-ghost'"):
        store.put_personas([Persona("p-x", "x")], {"alice": "p-ghost"})
    with pytest.raises(ValueError, match="twice"):
        store.put_personas([Persona("p-x", "x"), Persona("p-x", "y")], {})
    with pytest.raises(UnknownUserError):
        store.put_personas([Persona("p-x", "x")], {"alice": "p-x", "nobody": "p-x"})
    assert store.list_personas() == _personas()
    assert store.persona_of("alice") == "p-rivers"


# -- deleting a user deletes what was derived from them ---------------------------------------


def test_delete_user_removes_embeddings_artifacts_and_membership(store: ProfileStore) -> None:
    for user_id in ("alice", "bob"):
        store.add_records(user_id, [record("r1"), record("r2")])
        store.put_embeddings(user_id, "m", {"r1": vector(1, 0), "r2": vector(0, 1)})
        store.put_artifact(user_id, "summary", "k", {"text": user_id}, store.profile_version(user_id))
    store.put_personas(_personas(), {"alice": "p-rivers", "bob": "p-rivers"})

    assert store.delete_user("alice") is True
    assert store.persona_of("alice") is None
    # Added again, alice starts with nothing derived from her old profile.
    store.add_records("alice", [record("r1"), record("r2")])
    assert store.get_embeddings("alice", "m")[0] == []
    assert store.list_artifacts("alice") == []
    assert store.persona_of("alice") is None
    assert store.export_user("alice") == {
        "user_id": "alice", "attributes": {}, "records": [record("r1").to_dict(), record("r2").to_dict()]}
    # bob keeps everything; the personas themselves stay (they describe a group, not one user).
    assert store.get_embeddings("bob", "m")[0] == ["r1", "r2"]
    assert [a.key for a in store.list_artifacts("bob")] == ["k"]
    assert store.persona_of("bob") == "p-rivers"
    assert [p.persona_id for p in store.list_personas()] == ["p-rivers", "p-finance"]


def test_delete_user_leaves_no_derived_rows_in_the_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "profiles.db"
    with SQLiteProfileStore(path) as store:
        assert store.tables_missing_cascade() == []
        store.add_records("alice", [record("r1")])
        store.put_embeddings("alice", "m", {"r1": vector(1, 0)})
        store.put_artifact("alice", "summary", "k", {}, 1)
        store.put_personas(_personas(), {"alice": "p-rivers"})
        store.delete_user("alice")
    raw = sqlite3.connect(path)
    try:
        for table in ("records", "record_embeddings", "artifacts", "persona_members"):
            assert raw.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = 'alice'").fetchone()[0] == 0, table
    finally:
        raw.close()


# -- export -----------------------------------------------------------------------------------


def test_export_user_includes_derived_data(store: ProfileStore) -> None:
    store.add_records("alice", [record("a"), record("b")])
    store.put_embeddings("alice", "m1", {"a": vector(1, 0), "b": vector(0, 1)})
    store.put_embeddings("alice", "m2", {"a": vector(1)})
    artifact = store.put_artifact("alice", "summary", "k", {"text": "hi"}, 1)
    store.put_personas(_personas(), {"alice": "p-finance"})
    exported = store.export_user("alice")
    assert exported["embeddings"] == {"m1": 2, "m2": 1}
    assert exported["artifacts"] == [artifact.to_dict()]
    assert exported["persona_id"] == "p-finance"
    assert [r["id"] for r in exported["records"]] == ["a", "b"]


# -- migration ----------------------------------------------------------------------------------

def test_a_version_1_file_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    raw = sqlite3.connect(path)
    with raw:
        run_sqlite_steps(raw, MIGRATIONS[0].sqlite_steps())  # exactly what tailor wrote as version 1
        raw.executemany("INSERT INTO users VALUES (?, ?)", [("alice", "2024-01-01T00:00:00+00:00"),
                                                            ("empty", "2024-01-01T00:00:00+00:00")])
        raw.execute("INSERT INTO attributes VALUES ('alice', 'age', '30')")
        raw.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", [
            ("alice", "b", 0, '{"text": "second"}', "2020-01-02"),
            ("alice", "a", 1, '{"text": "first", "title": "T"}', None),
        ])
        raw.execute("PRAGMA user_version = 1")
    raw.close()

    with SQLiteProfileStore(path) as store:
        profile = store.get_profile("alice")
        assert [r.id for r in profile.records] == ["b", "a"]
        assert profile.records[1].fields == {"text": "first", "title": "T"}
        assert dict(profile.attributes) == {"age": "30"}
        assert store.list_users() == ["alice", "empty"]
        assert store.profile_version("alice") == 1 and store.profile_version("empty") == 0
        store.put_embeddings("alice", "m", {"a": vector(1, 0)})
        store.put_artifact("alice", "summary", "k", {"text": "x"}, 1)
        assert store.tables_missing_cascade() == []
        store.add_records("alice", [record("a", "changed")])
        assert store.get_embeddings("alice", "m")[0] == []  # the trigger came with the migration
        assert store.profile_version("alice") == 2
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    finally:
        raw.close()


@pytest.mark.parametrize("method", ["delete_embeddings", "delete_artifacts"])
def test_deletes_name_themselves_when_the_user_id_is_bad(store: ProfileStore, method: str) -> None:
    # Every store words it the same way (the SQL stores share one implementation).
    with pytest.raises(ValueError, match=rf"^{method}: user_id must be a non-empty string, got ''$"):
        getattr(store, method)("")
    assert getattr(store, method)("nobody") == 0
