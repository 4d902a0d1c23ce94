"""Deleting a user reaches the personas built from them (issue 12): a persona's
description is written from its members' records, so deleting a member empties it, on
every store; afterwards no table holds the deleted user's id or words."""

from __future__ import annotations

from typing import Any

from tailor.store import ProfileStore, SQLiteProfileStore
from tailor.types import HistoryRecord, Persona

SECRET = "zanzibar quokka heliotrope"


def _rows_of_every_table(store: ProfileStore) -> list[str]:
    """Every row of every table of a SQL store, as text."""
    with store.transaction() as connection:  # type: ignore[attr-defined]
        if isinstance(store, SQLiteProfileStore):
            tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        else:
            tables = [row[0] for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]
        assert "personas" in tables and "persona_members" in tables
        rows: list[Any] = []
        for table in tables:
            rows += [(table, row) for row in connection.execute(f'SELECT * FROM "{table}"').fetchall()]
    return [repr(row) for row in rows]


def test_deleting_a_member_empties_their_persona_and_leaves_nothing_of_them(store: ProfileStore) -> None:
    store.add_records("gone", [HistoryRecord("r1", {"text": f"my {SECRET} story"})])
    store.add_records("kept", [HistoryRecord("r1", {"text": "an ordinary note"})])
    store.add_records("other", [HistoryRecord("r1", {"text": "something else"})])
    # As `tailor personas build` with the echo backend writes them: the members' own words.
    store.put_personas([Persona("p0", f"writes about {SECRET} and an ordinary note", (1.0, 0.0), 2, {}),
                        Persona("p1", "writes about something else", (0.0, 1.0), 1, {})],
                       {"gone": "p0", "kept": "p0", "other": "p1"})
    assert store.delete_user("gone")
    personas = {p.persona_id: p for p in store.list_personas()}
    assert personas["p0"].description == ""  # written from the deleted member's records
    assert personas["p1"].description == "writes about something else"  # untouched
    assert store.persona_of("kept") == "p0"
    if isinstance(store, SQLiteProfileStore) or type(store).__name__ == "PostgresProfileStore":
        rows = _rows_of_every_table(store)
        assert not [row for row in rows if "zanzibar" in row or "'gone'" in row]
        assert any("'kept'" in row for row in rows)  # the scan does see user ids
