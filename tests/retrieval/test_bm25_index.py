"""The stored form of the one BM25: bm25s's scores as bytes, the blobs the server stored
before (numpy postings) read back, and memory's hybrid search over it."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from tailor.memory.search import hybrid_rank
from tailor.retrieval.bm25 import BM25Index, BM25Retriever, tokenize
from tailor.types import HistoryRecord, Profile

TEXTS = [
    "Hiking the Alps with my dog every summer",
    "My grandmother's tomato sauce recipe, with basil",
    "Notes on learning the cello, and on cello teachers",
    "The dog ate my cello notes",
    "",
    "Summer recipes: tomato salad, grilled fish",
]
QUERIES = ["dog summer", "tomato recipe", "cello cello teacher", "nothing matches xyz", "the and of", "summer"]


@pytest.mark.parametrize("query", QUERIES)
def test_an_index_scores_as_the_retriever_does(query: str) -> None:
    profile = Profile("u", tuple(HistoryRecord(str(i), {"text": t}) for i, t in enumerate(TEXTS)))
    index = BM25Index.build([r.id for r in profile.records], tokenize(TEXTS))
    np.testing.assert_array_equal(index.scores(tokenize([query])[0]), BM25Retriever().scores(query, profile))
    positive = [h.record.id for h in BM25Retriever().retrieve(query, profile, 3) if h.score > 0]
    assert [index.ids[i] for i, _ in index.top(tokenize([query])[0], 3)] == positive


def test_an_index_survives_bytes() -> None:
    index = BM25Index.build(["a", "b", "c"], tokenize(TEXTS[:3]))
    again = BM25Index.from_parts(index.ids, index.vocabulary, index.arrays_bytes())
    query = tokenize(["dog cello summer"])[0]
    np.testing.assert_array_equal(again.scores(query), index.scores(query))
    with pytest.raises(ValueError, match="does not match"):
        BM25Index.from_parts(index.ids[:2], index.vocabulary, index.arrays_bytes())


def test_a_blob_of_the_earlier_numpy_postings_is_read_and_compiled_again() -> None:
    # Before one BM25, the server stored postings: documents, terms, postings counts, then
    # int32 document lengths, term offsets, posting documents and term frequencies.
    token_lists = [["dog", "summer", "dog"], ["tomato"], ["dog", "tomato"]]
    vocabulary = ["dog", "summer", "tomato"]
    lengths, offsets = [3, 1, 2], [0, 2, 3, 5]
    documents, frequencies = [0, 2, 0, 1, 2], [2, 1, 1, 1, 1]
    blob = struct.pack("<iii", 3, 3, 5) + np.asarray(lengths + offsets + documents + frequencies, "<i4").tobytes()
    old = BM25Index.from_parts(["a", "b", "c"], vocabulary, blob)
    new = BM25Index.build(["a", "b", "c"], token_lists)
    for query in (["dog"], ["tomato", "summer"], ["cat"]):
        np.testing.assert_allclose(old.scores(query), new.scores(query))


def test_empty_corpora_score_nothing() -> None:
    assert BM25Index.build([], []).top(["dog"], 3) == []
    assert BM25Index.build(["a"], [[]]).top(["dog"], 3) == []
    empty = BM25Index.build([], [])
    assert BM25Index.from_parts((), (), empty.arrays_bytes()).top(["dog"], 1) == []
    with pytest.raises(ValueError):
        BM25Index.build(["a"], [])


def test_memory_search_fills_k_with_the_dense_ranking() -> None:
    tokens = tokenize(["user.city = Lisbon", "user.likes += jazz", "user.diet = vegetarian"])
    vectors = np.eye(3, dtype=np.float32)
    ranked = hybrid_rank(tokenize(["what food"])[0], tokens, k=2, query_vector=np.array([0, 0.2, 1.0]),
                         vectors=vectors)
    assert [i for i, _ in ranked] == [2, 1]
    lexical_only = hybrid_rank(tokenize(["jazz"])[0], tokens, k=3)
    assert [i for i, _ in lexical_only] == [1]
