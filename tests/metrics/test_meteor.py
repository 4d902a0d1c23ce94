"""METEOR as LongLaMP scores it: hand-computed cases from the formula, the reference values
of nltk and ``evaluate``, WordNet from an offline database, and a clear error without one.

Without a WordNet database the tests that score skip, saying so, unless
``TAILOR_TEST_REQUIRE_WORDNET=1`` (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tailor.metrics import meteor as meteor_module
from tailor.metrics import score_metrics
from tailor.metrics.meteor import (
    LEXNAMES,
    WordNetMissingError,
    load_wordnet,
    meteor,
    meteor_tokens,
    wordnet_folder,
)


def _wordnet_or_skip() -> None:
    try:
        found = wordnet_folder()
    except WordNetMissingError as error:
        found, reason = None, str(error)
    else:
        reason = "no WordNet database (apt-get install wordnet-base)"
    if found is None:
        if os.environ.get("TAILOR_TEST_REQUIRE_WORDNET", "") not in ("", "0"):
            pytest.fail(f"{reason}, and TAILOR_TEST_REQUIRE_WORDNET is set", pytrace=False)
        pytest.skip(reason)


@pytest.fixture()
def wordnet() -> None:
    _wordnet_or_skip()


def by_hand(matches: int, prediction_words: int, gold_words: int, chunks: int) -> float:
    """METEOR from its definition: precision and recall of matched words, their harmonic mean
    weighted by alpha = 0.9, and the fragmentation penalty gamma * (chunks / matches) ** beta
    with gamma = 0.5, beta = 3."""
    precision, recall = matches / prediction_words, matches / gold_words
    fmean = precision * recall / (0.9 * precision + 0.1 * recall)
    return (1 - 0.5 * (chunks / matches) ** 3) * fmean


# Words with exact matches only: none is a stem or a WordNet synonym of another word here.
@pytest.mark.parametrize(("prediction", "gold", "expected"), [
    # Identical: every word matched in one chunk; 1 - 0.5 * (1/6)^3.
    ("the cat sat on the mat", "the cat sat on the mat", by_hand(6, 6, 6, 1)),
    # The same words in two runs of two: penalty 0.5 * (2/4)^3 = 0.0625.
    ("gamma delta alpha beta", "alpha beta gamma delta", 0.9375),
    # Two of three predicted words match two of four gold words, adjacent in both:
    # P = 2/3, R = 1/2, Fmean = (1/3) / 0.65, penalty 0.0625.
    ("red green purple", "red green blue yellow", (1 - 0.0625) * (1 / 3) / 0.65),
    # Case is ignored.
    ("The Cat", "the cat", by_hand(2, 2, 2, 1)),
    # No word matches, and an empty prediction: 0.
    ("purple", "red green", 0.0),
    ("", "red green", 0.0),
])
def test_meteor_of_exact_matches_is_the_formula(wordnet: None, prediction: str, gold: str, expected: float) -> None:
    assert meteor(prediction, gold) == pytest.approx(expected, abs=1e-12)


def test_hand_computed_values() -> None:
    assert by_hand(6, 6, 6, 1) == pytest.approx(1 - 0.5 / 216)
    assert by_hand(2, 3, 4, 1) == pytest.approx(0.4807692307692308)


def test_wordnet_synonyms_and_stems_match(wordnet: None) -> None:
    # "car" is a lemma of auto's synset car.n.01: three matches in one chunk, as for identical
    # texts. (nltk looks synonyms up for the Porter stems left after the stem stage, so a word
    # the stemmer changes, "automobile", finds none: LongLaMP's scores have the same quirk.)
    assert meteor("the big auto", "the big car") == pytest.approx(by_hand(3, 3, 3, 1))
    assert meteor("the big automobile", "the big car") == pytest.approx(by_hand(2, 3, 3, 1))
    # Porter stems: "walked" and "walks" both stem to "walk".
    assert meteor("she walked home", "she walks home") == pytest.approx(by_hand(3, 3, 3, 1))


def test_the_reference_value_of_nltk_and_evaluate(wordnet: None) -> None:
    # The example in nltk's meteor_score docstring and in evaluate's "meteor" card: 0.6944.
    prediction = "It is a guide to action which ensures that the military always obeys the commands of the party"
    gold = "It is a guide to action that ensures that the military will forever heed Party commands"
    assert round(meteor(prediction, gold), 4) == 0.6944


# Long-form pairs of one sentence each: there nltk's word_tokenize needs no sentence model
# (preserve_line), so its tokens are LongLaMP's exactly.
PAIRS = [
    ("We compress an inverted index with variable byte codes, and queries take milliseconds.",
     "An inverted index compressed with variable byte codes answers queries in a few milliseconds."),
    ("The lid doesn't leak and the tea stays hot until noon, which I love.",
     "I fill it at seven and the tea is still too hot to drink at noon; the lid does not leak."),
    ("Studded tyres made riding in the snow easy (nobody else was out).",
     "Rode to work in snow for the first time today with studded tyres, and nobody else was on the path."),
]


@pytest.mark.parametrize(("prediction", "gold"), PAIRS)
def test_meteor_is_nltks_meteor_score_with_word_tokenize(wordnet: None, prediction: str, gold: str) -> None:
    from nltk.tokenize import word_tokenize
    from nltk.translate.meteor_score import meteor_score

    assert meteor_tokens(gold) == word_tokenize(gold, preserve_line=True)
    expected = meteor_score([word_tokenize(gold, preserve_line=True)], word_tokenize(prediction, preserve_line=True),
                            wordnet=load_wordnet(), alpha=0.9, beta=3, gamma=0.5)
    assert meteor(prediction, gold) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < expected < 1.0


def test_sentences_are_split_before_words_are_tokenized() -> None:
    # A period inside the text ends a sentence: it is a token of its own, as word_tokenize makes it.
    assert meteor_tokens("Rates rose. Prices fell.") == ["Rates", "rose", ".", "Prices", "fell", "."]


def test_the_metric_averages_over_examples(wordnet: None) -> None:
    scores = score_metrics(["rouge-1", "rouge-L", "meteor"], ["gamma delta alpha beta", "purple"],
                           ["alpha beta gamma delta", "red green"])
    assert scores.names() == ("rouge-1", "rouge-L", "meteor")
    assert list(scores.columns["meteor"]) == pytest.approx([0.9375, 0.0])
    assert scores.aggregate()["meteor"] == pytest.approx(0.9375 / 2)


def test_lexnames_is_wordnet_30s_list() -> None:
    lines = LEXNAMES.splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1" and lines[-1] == "44\tadj.ppl\t3"
    assert [int(line.split("\t")[0]) for line in lines] == list(range(45))


def test_debian_wordnet_reads_without_a_lexnames_file(wordnet: None) -> None:
    reader = load_wordnet()
    assert reader.get_version() == "3.0"
    assert reader.synsets("dog")[0].lexname() == "noun.animal"


def test_without_wordnet_meteor_fails_saying_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    import nltk.data

    monkeypatch.delenv("TAILOR_WORDNET", raising=False)
    monkeypatch.setattr(meteor_module, "DEBIAN_WORDNET", tmp_path / "absent")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    load_wordnet.cache_clear()
    try:
        with pytest.raises(WordNetMissingError, match="apt-get install wordnet-base"):
            meteor("a", "a")
        with pytest.raises(WordNetMissingError, match="TAILOR_WORDNET"):
            score_metrics(["meteor"], ["a"], ["a"])
    finally:
        load_wordnet.cache_clear()


def test_a_configured_folder_without_wordnet_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAILOR_WORDNET", str(tmp_path))
    with pytest.raises(WordNetMissingError, match="lacks the WordNet files index.noun"):
        wordnet_folder()
