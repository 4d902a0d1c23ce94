"""BM25Retriever against a reference BM25 written here from the formula, plus its ranking rules.

bm25s's Lucene variant scores a document as the sum, over the query's tokens, of
``idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))`` with
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``. Like Lucene since 8.0 it drops the textbook
``(k1 + 1)`` factor in the numerator: a constant that changes no ranking, so the oracle
leaves it out too.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from tailor.retrieval.bm25 import BM25Retriever
from tailor.types import HistoryRecord, Profile

K1, B = 1.5, 0.75

CORPUS = [
    "Volunteers planted two thousand trees along the river on Saturday",
    "The city council approved a new budget for public parks",
    "River levels rose after heavy rain flooded the valley",
    "Local football team wins the regional championship final",
    "Trees in city parks lower summer temperatures, researchers say",
    "Council members debate the cost of the river flood defences",
    "A new library opens downtown with a large children's section",
    "Researchers planted sensors in the river to measure pollution",
]

QUERIES = [
    "river trees",
    "city council budget",
    "researchers planted sensors in the river river",
    "football championship",
    "library opens downtown for children",
]


def record(id: str, text: str, **fields: str) -> HistoryRecord:
    return HistoryRecord(id=id, fields={"text": text, **fields})


def profile(*texts: str, user_id: str = "u1") -> Profile:
    return Profile(user_id=user_id, records=tuple(record(f"d{i}", t) for i, t in enumerate(texts)))


def reference_bm25(corpus: list[list[str]], query: list[str], k1: float = K1, b: float = B) -> list[float]:
    """Lucene-variant BM25 (as bm25s computes it), term by term, straight from the formula."""
    n = len(corpus)
    avgdl = sum(len(doc) for doc in corpus) / n
    df = Counter(term for doc in corpus for term in set(doc))
    scores = []
    for doc in corpus:
        tf = Counter(doc)
        total = 0.0
        for term in query:
            if tf[term] == 0:
                continue
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            total += idf * tf[term] / (tf[term] + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(total)
    return scores


@pytest.mark.parametrize("query", QUERIES)
def test_scores_match_the_reference_implementation(query: str) -> None:
    retriever = BM25Retriever()
    tokens = retriever.tokenize(CORPUS)
    assert all(tokens), "the oracle corpus must not contain token-less documents"
    expected = reference_bm25(tokens, retriever.tokenize([query])[0])
    assert any(score > 0 for score in expected)
    assert np.allclose(retriever.scores(query, profile(*CORPUS)), expected, rtol=1e-4, atol=1e-9)


def test_scores_match_the_reference_with_other_parameters() -> None:
    retriever = BM25Retriever(k1=0.9, b=0.4)
    query = "river flood defences budget"
    expected = reference_bm25(retriever.tokenize(CORPUS), retriever.tokenize([query])[0], k1=0.9, b=0.4)
    assert np.allclose(retriever.scores(query, profile(*CORPUS)), expected, rtol=1e-4, atol=1e-9)


def test_scores_match_the_reference_when_some_records_have_no_tokens() -> None:
    # A stop-word-only record has length 0 and so shortens the average document length.
    retriever = BM25Retriever()
    corpus = [*CORPUS[:4], "the and of it", "", *CORPUS[4:]]
    tokens = retriever.tokenize(corpus)
    assert tokens[4] == tokens[5] == []
    for query in QUERIES:
        expected = reference_bm25(tokens, retriever.tokenize([query])[0])
        assert np.allclose(retriever.scores(query, profile(*corpus)), expected, rtol=1e-4, atol=1e-9)


def test_tokens_are_lowercased_stemmed_and_free_of_stop_words() -> None:
    retriever = BM25Retriever()
    tokens = retriever.tokenize(["The Volunteers are PLANTING trees"])[0]
    assert "the" not in tokens and "are" not in tokens
    assert tokens == retriever.tokenize(["volunteer planted tree"])[0]
    assert retriever.tokenize(["I a x"])[0] == []  # single letters are not words


def test_the_obviously_relevant_record_ranks_first() -> None:
    hits = BM25Retriever().retrieve("football team championship", profile(*CORPUS), 3)
    assert hits[0].record.id == "d3"
    assert hits[0].score > hits[1].score


def test_ties_are_broken_by_profile_order() -> None:
    # d1 and d3 are the same text: equal scores, so the earlier one ranks first.
    user = profile("cats and dogs", "river trees", "budget vote", "river trees", "river")
    hits = BM25Retriever().retrieve("trees", user, 5)
    assert [hit.record.id for hit in hits[:2]] == ["d1", "d3"]
    assert hits[0].score == hits[1].score > 0


def test_query_without_known_words_scores_zero_and_keeps_profile_order() -> None:
    user = profile(*CORPUS)
    retriever = BM25Retriever()
    for query in ["quantum chromodynamics", "the and of", ""]:
        assert np.array_equal(retriever.scores(query, user), np.zeros(len(CORPUS)))
        hits = retriever.retrieve(query, user, 4)
        assert [hit.record.id for hit in hits] == ["d0", "d1", "d2", "d3"]
        assert all(hit.score == 0.0 for hit in hits)


def test_stop_word_only_and_empty_records_do_not_crash() -> None:
    retriever = BM25Retriever()
    user = profile("the and of it", "", "river trees planted", "a")
    scores = retriever.scores("river trees", user)
    assert scores.shape == (4,)
    assert scores[0] == scores[1] == scores[3] == 0.0
    assert scores[2] > 0
    assert [hit.record.id for hit in retriever.retrieve("river trees", user, 2)] == ["d2", "d0"]


def test_profile_of_only_token_less_records_is_searchable() -> None:
    user = profile("the and", "", "of it")
    hits = BM25Retriever().retrieve("the river", user, 5)
    assert [hit.record.id for hit in hits] == ["d0", "d1", "d2"]
    assert all(hit.score == 0.0 for hit in hits)


def test_empty_profile_scores_nothing() -> None:
    assert BM25Retriever().scores("river", Profile(user_id="u1")).shape == (0,)


def test_a_record_added_to_the_profile_is_retrievable() -> None:
    retriever = BM25Retriever()
    before = profile(*CORPUS[:4])
    assert retriever.retrieve("library downtown", before, 1)[0].score == 0.0  # index now cached
    after = Profile(user_id="u1", records=(*before.records, record("new", "The library opens downtown")))
    best = retriever.retrieve("library downtown", after, 1)[0]
    assert best.record.id == "new"
    assert best.score > 0


def test_a_record_replaced_under_the_same_id_is_reindexed() -> None:
    # A profile store replaces a record whose id the user already holds: same ids, new text.
    retriever = BM25Retriever()
    before = profile("river trees", "city budget", "football final")
    assert retriever.retrieve("library", before, 1)[0].score == 0.0  # index now cached
    after = profile("river trees", "new library downtown", "football final")
    best = retriever.retrieve("library", after, 1)[0]
    assert best.record.id == "d1"
    assert best.score > 0
    assert np.allclose(retriever.scores("river", after), BM25Retriever().scores("river", after))


def test_users_with_the_same_record_ids_get_their_own_index() -> None:
    retriever = BM25Retriever()
    alice = profile("river trees", "city budget", user_id="alice")
    bob = profile("football final", "library downtown", user_id="bob")
    assert retriever.retrieve("library", alice, 1)[0].score == 0.0
    assert retriever.retrieve("library", bob, 1)[0].record is bob.records[1]


def test_document_function_chooses_what_is_indexed() -> None:
    user = Profile(user_id="u1", records=(
        record("a", "An article about rivers and trees", title="Budget vote"),
        record("b", "An article about the city budget", title="River trees"),
    ))
    titles_only = BM25Retriever(document=lambda r: r.fields["title"])
    assert titles_only.retrieve("river trees", user, 1)[0].record.id == "b"
    assert titles_only.retrieve("budget", user, 1)[0].record.id == "a"
    everything = BM25Retriever()
    assert everything.scores("article", user).min() > 0
    assert np.array_equal(titles_only.scores("article", user), np.zeros(2))


def test_ranking_agrees_with_rank_bm25() -> None:
    rank_bm25 = pytest.importorskip("rank_bm25")
    retriever = BM25Retriever()
    tokens = retriever.tokenize(CORPUS)
    reference = rank_bm25.BM25Okapi(tokens, k1=K1, b=B)
    for query in QUERIES:
        ours = retriever.scores(query, profile(*CORPUS))
        theirs = reference.get_scores(retriever.tokenize([query])[0])
        assert int(np.argmax(ours)) == int(np.argmax(theirs))
