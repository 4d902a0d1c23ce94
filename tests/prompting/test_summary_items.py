"""The items a summary is written from follow the one recency rule."""

from __future__ import annotations

from tailor.prompting.summary import latest_records
from tailor.retrieval.simple import RecencyRetriever
from tailor.types import HistoryRecord, Profile


def test_latest_records_are_the_recency_retrievers_oldest_first() -> None:
    dates = ["2024-01-02", None, "2024-03-01", "2024-01-02", None, "2023-12-31"]
    profile = Profile("u", tuple(HistoryRecord(f"r{i}", {"text": "x"}, date) for i, date in enumerate(dates)))
    for n in range(len(dates) + 2):
        recent = [hit.record.id for hit in RecencyRetriever().retrieve("", profile, n)]
        assert [r.id for r in latest_records(profile, n)] == recent[::-1]
    assert [r.id for r in latest_records(profile, 3)] == ["r0", "r3", "r2"]
    assert latest_records(profile, 0) == [] and latest_records(profile, -1) == []
