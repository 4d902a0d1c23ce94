"""BM25's own tokenizer splits exactly as bm25s.tokenize does, and the index cache is reused."""

from __future__ import annotations

import bm25s
import pytest

from tailor.retrieval.bm25 import BM25Retriever
from tailor.types import HistoryRecord, Profile

TEXTS = [
    "Volunteers planted trees along the river",
    "The U.S. economy grew 3.5% in Q3 -- analysts' forecasts were beaten!",
    "Ünïcödé café naïve résumé Straße ÆON",
    "a I of to",  # stop words and one-letter words only
    "",
    "running runner runs ran RUN e-mail e_mail 2024-01-02",
    "Trump’s tweets: “fake news” and don't/won't",
]


@pytest.mark.parametrize("stem", [True, False])
def test_tokenize_equals_bm25s_tokenize(stem: bool) -> None:
    import Stemmer

    retriever = BM25Retriever(stem=stem)
    stemmer = Stemmer.Stemmer("english") if stem else None
    expected = bm25s.tokenize(TEXTS, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)
    assert retriever.tokenize(TEXTS) == expected
    for text, terms in zip(TEXTS, expected):
        assert retriever.query_terms(text) == terms


def test_a_reused_profile_and_an_equal_copy_share_one_index() -> None:
    retriever = BM25Retriever()
    records = tuple(HistoryRecord(f"r{i}", {"text": text}) for i, text in enumerate(TEXTS))
    profile = Profile("u", records)
    first = retriever.retrieve("river trees", profile, 2)
    index = retriever._index(profile)[0]
    copy = Profile("u", tuple(HistoryRecord(r.id, dict(r.fields), r.date) for r in records))
    assert retriever._index(copy)[0] is index  # equal records: no rebuild
    assert [h.record.id for h in retriever.retrieve("river trees", copy, 2)] == [h.record.id for h in first]
