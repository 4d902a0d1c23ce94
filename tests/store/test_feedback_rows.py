"""Served replies and feedback in both SQL stores: scoped per user, a row held once, read
since a time, and gone with their user."""

from __future__ import annotations

from typing import Any

import pytest

from tailor.store import SQLProfileStore
from tailor.store.contract import UnknownUserError


@pytest.fixture
def sql(store: Any) -> SQLProfileStore:
    if not isinstance(store, SQLProfileStore):
        pytest.skip("served replies and feedback live in the SQL stores")
    return store


def row(feedback_id: str, at: str) -> tuple[Any, ...]:
    return (feedback_id, "pair", None, '[{"role": "user", "content": "q"}]', "yes", "no", None, "api", at)


def test_replies_and_feedback_are_the_user_s_own(sql: SQLProfileStore) -> None:
    sql.set_attributes("ana", {})
    sql.set_attributes("bob", {})
    sql.keep_served_reply("ana", "chatcmpl-1", "[]", "Hello.", "user", "2025-01-01T00:00:00.000000+00:00")
    assert sql.served_reply("ana", "chatcmpl-1") == ("[]", "Hello.", "user", "2025-01-01T00:00:00.000000+00:00")
    assert sql.served_reply("bob", "chatcmpl-1") is None
    with pytest.raises(UnknownUserError):
        sql.keep_served_reply("nobody", "chatcmpl-2", "[]", "Hi.", None, "2025-01-01T00:00:00.000000+00:00")
    assert sql.add_feedback("ana", [row("fb1", "2025-01-01T00:00:00.000000+00:00"),
                                    row("fb2", "2025-01-02T00:00:00.000000+00:00")]) == 2
    assert sql.add_feedback("ana", [row("fb1", "2025-01-03T00:00:00.000000+00:00")]) == 0  # held already
    assert sql.add_feedback("bob", [row("fb3", "2025-01-03T00:00:00.000000+00:00")]) == 1
    assert [r[0] for r in sql.feedback_rows("ana")] == ["fb1", "fb2"]
    assert [r[0] for r in sql.feedback_rows("ana", since="2025-01-02T00:00:00.000000+00:00")] == ["fb2"]
    assert sql.users_with_feedback() == ["ana", "bob"]
    assert sql.users_with_feedback(since="2025-01-03T00:00:00.000000+00:00") == ["bob"]
    sql.delete_user("ana")
    assert sql.feedback_rows("ana") == [] and sql.served_replies("ana") == []
    assert sql.users_with_feedback() == ["bob"]
