"""The one reciprocal-rank fusion, checked against hand-computed scores."""

from __future__ import annotations

import pytest

from tailor.retrieval.fusion import RRF_CONSTANT, fuse, reciprocal_rank_fusion


def test_scores_are_the_papers_sum_of_reciprocal_ranks() -> None:
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "a"]]))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 62)
    assert RRF_CONSTANT == 60


def test_agreement_beats_a_single_first_place() -> None:
    assert fuse([[0, 1, 2], [2, 1, 0], [1]], 3)[0] == 1
    assert fuse([["a", "b", "c"], ["b", "c", "a"]], 2) == ["b", "a"]


def test_depth_cuts_every_ranking_before_fusing() -> None:
    rankings = [["a", "b", "c", "d"], ["d", "c", "b", "a"]]
    whole = dict(reciprocal_rank_fusion(rankings))
    cut = dict(reciprocal_rank_fusion(rankings, depth=2))
    assert set(whole) == {"a", "b", "c", "d"}
    assert cut == pytest.approx({"a": 1 / 61, "b": 1 / 62, "d": 1 / 61, "c": 1 / 62})
    assert reciprocal_rank_fusion(rankings, depth=0) == []


def test_ties_keep_the_order_items_were_first_seen() -> None:
    assert fuse([["x", "y"], ["y", "x"]], 2) == ["x", "y"]
    assert fuse([["y", "x"], ["x", "y"]], 2) == ["y", "x"]


def test_empty_rankings_and_k() -> None:
    assert reciprocal_rank_fusion([[], []]) == []
    assert fuse([[], ["x"]], 3) == ["x"]
    assert fuse([["a", "b"]], 0) == []


@pytest.mark.parametrize("kwargs", [{"depth": -1}, {"depth": 1.5}, {"constant": -1.0}])
def test_bad_arguments_say_what_is_allowed(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], **kwargs)
    with pytest.raises(ValueError):
        fuse([["a"]], -1)
