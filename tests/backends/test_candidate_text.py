import math

from tailor.backends import openai
from tailor.backends.contract import first_token_scores, match_candidate, score_by_text


def test_score_by_text_gives_the_named_candidate_zero_and_the_rest_minus_infinity() -> None:
    result = score_by_text("I'd say Comedy.", ("sci-fi", "comedy", "action"))
    assert result.text == "comedy"
    assert result.scores == {"sci-fi": -math.inf, "comedy": 0.0, "action": -math.inf}


def test_score_by_text_keeps_the_reply_when_it_names_no_candidate() -> None:
    result = score_by_text("no idea", ("1", "2"))
    assert result.text == "no idea"
    assert result.scores == {"1": -math.inf, "2": -math.inf}


def test_openai_backend_reexports_the_shared_matching() -> None:
    assert openai.match_candidate is match_candidate
    assert openai.first_token_scores is first_token_scores
