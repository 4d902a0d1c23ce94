import math

import pytest

from tailor.metrics import generation_scores


def single(prediction: str, gold: str) -> dict[str, float]:
    return generation_scores([prediction], [gold]).aggregate()


def test_unigram_overlap_by_hand() -> None:
    metrics = single("the cat sat", "the cat sat on the mat")
    # 3 of 3 predicted unigrams in the gold, 3 of its 6 covered: P=1, R=1/2, F=2*(1/2)/(3/2)=2/3
    assert metrics["rouge-1"] == pytest.approx(2 / 3)
    # the whole prediction is a subsequence of the gold: LCS=3, same P and R -> 2/3
    assert metrics["rouge-L"] == pytest.approx(2 / 3)


def test_rouge_l_uses_the_longest_common_subsequence() -> None:
    metrics = single("a b c d", "a c b d")
    assert metrics["rouge-1"] == pytest.approx(1.0)  # same bag of words
    # LCS is "a b d" (or "a c d"), length 3: P=R=3/4 -> F=3/4
    assert metrics["rouge-L"] == pytest.approx(3 / 4)
    metrics = single("cat the", "the cat")
    # LCS 1 of 2 tokens on both sides -> 1/2
    assert metrics["rouge-L"] == pytest.approx(1 / 2)


def test_repeated_unigrams_are_clipped() -> None:
    # overlap min(3, 1) = 1 "the": P=1/3, R=1/2 -> F=2*(1/6)/(5/6)=2/5
    assert single("the the the", "the cat")["rouge-1"] == pytest.approx(2 / 5)


def test_tokenizer_lowercases_and_splits_on_punctuation() -> None:
    # rouge_score lowercases and treats every non [a-z0-9] run as a separator
    assert single("The CAT, sat!", "the cat sat")["rouge-1"] == pytest.approx(1.0)
    assert single("don't", "don t")["rouge-1"] == pytest.approx(1.0)
    # so "naïve" becomes "na ve": 2 tokens, of which "na" overlaps with "na": P=1/2, R=1 -> 2/3
    assert single("naïve", "na")["rouge-1"] == pytest.approx(2 / 3)


def test_no_stemming() -> None:
    assert single("cats", "cat")["rouge-1"] == 0.0


def test_empty_prediction_scores_zero() -> None:
    metrics = single("", "the cat")
    assert metrics == {"rouge-1": 0.0, "rouge-L": 0.0, "bleu": 0.0}


def test_plain_mean_over_examples() -> None:
    scores = generation_scores(["the cat sat", "  hello world  "], ["the cat sat on the mat", "hello world"])
    # (2/3 + 1) / 2 = 5/6
    assert scores.aggregate()["rouge-1"] == pytest.approx(5 / 6)
    assert scores.columns["rouge-L"].tolist() == pytest.approx([2 / 3, 1.0])


def test_bleu_is_sentence_level_sacrebleu_on_a_unit_scale() -> None:
    assert single("the cat sat on the mat", "the cat sat on the mat")["bleu"] == pytest.approx(1.0)
    # sentence BLEU uses the effective order: the 2-token hypothesis has only 1- and 2-grams,
    # both fully matched (precision 1), so BLEU is the brevity penalty exp(1 - 6/2) = e^-2
    assert single("the cat", "the cat sat on the mat")["bleu"] == pytest.approx(math.exp(-2))


def test_bleu_equals_sacrebleu_sentence_bleu() -> None:
    import sacrebleu

    pairs = [("a cat sat on the mat", "the cat sat on the mat"), ("Hello, World!", "hello world"), ("x", "y z")]
    scores = generation_scores([p for p, _ in pairs], [g for _, g in pairs])
    expected = [sacrebleu.sentence_bleu(p, [g]).score / 100 for p, g in pairs]
    assert scores.columns["bleu"].tolist() == pytest.approx(expected, abs=1e-15)


def test_bleu_can_be_left_out() -> None:
    scores = generation_scores(["a"], ["a"], bleu=False)
    assert scores.names() == ("rouge-1", "rouge-L")
    assert set(scores.aggregate()) == {"rouge-1", "rouge-L"}
    assert generation_scores(["a"], ["a"]).names() == ("rouge-1", "rouge-L", "bleu")


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="1 predictions but 0 golds"):
        generation_scores(["a"], [])
