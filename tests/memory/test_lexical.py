"""Compiled BM25 against the retriever it must agree with, and rank fusion."""

from __future__ import annotations

import numpy as np
import pytest

from tailor.memory.lexical import LexicalIndex, compile_index, tokenize
from tailor.memory.search import hybrid_rank, reciprocal_rank_fusion
from tailor.retrieval.bm25 import BM25Retriever
from tailor.types import HistoryRecord, Profile

TEXTS = [
    "Hiking the Alps with my dog every summer",
    "My grandmother's tomato sauce recipe, with basil",
    "Notes on learning the cello, and on cello teachers",
    "The dog ate my cello notes",
    "",
    "Summer recipes: tomato salad, grilled fish",
    "Running a marathon in the summer heat",
]
QUERIES = ["dog summer", "tomato recipe", "cello cello teacher", "nothing matches xyz", "the and of", "summer"]


@pytest.mark.parametrize("query", QUERIES)
def test_scores_match_the_bm25_retriever(query: str) -> None:
    profile = Profile("u", tuple(HistoryRecord(str(i), {"text": t}) for i, t in enumerate(TEXTS)))
    expected = BM25Retriever().scores(query, profile)
    index = compile_index([r.id for r in profile.records], tokenize(TEXTS))
    np.testing.assert_allclose(index.scores(tokenize([query])[0]), expected, rtol=1e-5, atol=1e-6)
    ranked = [h.record.id for h in BM25Retriever().retrieve(query, profile, 3) if expected[int(h.record.id)] > 0]
    assert [index.ids[i] for i, _ in index.top(tokenize([query])[0], 3)] == ranked


def test_tokens_match_bm25s() -> None:
    bm25s = pytest.importorskip("bm25s")
    import Stemmer

    texts = [*TEXTS, "Café, naïve déjà-vu; it's THE end... of 2024's résumés", "a an I x 42 _under_score"]
    expected = bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=False,
                              show_progress=False)
    assert tokenize(texts) == [list(row) for row in expected]
    assert tokenize([]) == []


def test_an_index_survives_bytes() -> None:
    index = compile_index(["a", "b", "c"], tokenize(TEXTS[:3]))
    again = LexicalIndex.from_parts(index.ids, index.vocabulary, index.arrays_bytes())
    query = tokenize(["dog cello summer"])[0]
    np.testing.assert_array_equal(again.scores(query), index.scores(query))
    with pytest.raises(ValueError, match="does not match"):
        LexicalIndex.from_parts(index.ids[:2], index.vocabulary, index.arrays_bytes())


def test_empty_corpora_score_nothing() -> None:
    assert compile_index([], []).top(["dog"], 3) == []
    assert compile_index(["a"], [[]]).top(["dog"], 3) == []
    with pytest.raises(ValueError):
        compile_index(["a"], [])


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion([[0, 1, 2], [2, 1, 0], [1]])
    assert fused[0][0] == 1
    assert {item for item, _ in fused} == {0, 1, 2}
    assert reciprocal_rank_fusion([[], []]) == []


def test_hybrid_rank_fills_k_with_the_dense_ranking() -> None:
    tokens = tokenize(["user.city = Lisbon", "user.likes += jazz", "user.diet = vegetarian"])
    vectors = np.eye(3, dtype=np.float32)
    ranked = hybrid_rank(tokenize(["what food"])[0], tokens, k=2, query_vector=np.array([0, 0.2, 1.0]),
                         vectors=vectors)
    assert [i for i, _ in ranked] == [2, 1]
    lexical_only = hybrid_rank(tokenize(["jazz"])[0], tokens, k=3)
    assert [i for i, _ in lexical_only] == [1]
