"""Contextual calibration on a scripted backend whose label bias and evidence are known."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytest

from tailor.personalizers.calibration import (
    ContextualCalibrator,
    EvidenceFit,
    calibrated_scores,
    content_free_input,
    content_free_messages,
    fit_evidence_weight,
    weigh,
)
from tailor.personalizers.labels import normalize
from tailor.prompting.builder import build_messages
from tailor.tasks import get_task
from tailor.types import GenerationRequest, GenerationResult, HistoryRecord

TASK = get_task("movielens-ratings")
PROMPT = "What rating from 1 to 5 would this user give the following movie? Answer with a single number. movie: "
RATINGS = ("1", "2", "3", "4", "5")


def biased_model(request: GenerationRequest) -> dict[str, float]:
    """Log-likelihoods of a model that prefers "1" by a factor of e^3 whatever it reads, and
    whose only real evidence is that "Heat" makes "4" twice as likely."""
    prompt = request.messages[-1]["content"]
    scores = {label: 0.0 for label in RATINGS}
    scores["1"] = 3.0
    if "Heat" in prompt:
        scores["4"] += math.log(2.0)
    return scores


class ScoringBackend:
    """A scripted backend that scores candidates with a function of the request (or gives no
    scores when it has none) and records what it was asked."""

    name = "scripted"

    def __init__(self, score: Callable[[GenerationRequest], dict[str, float]] | None) -> None:
        self.score = score
        self.requests: list[GenerationRequest] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.requests.extend(requests)
        if self.score is None:
            return [GenerationResult(text="1") for _ in requests]
        results = []
        for request in requests:
            scores = self.score(request)
            results.append(GenerationResult(text=max(scores, key=scores.__getitem__), scores=scores))
        return results


def request_for(text: str, items: tuple[HistoryRecord, ...] = ()) -> GenerationRequest:
    messages = build_messages(TASK, text, items, count_tokens=lambda t: len(t.split()))
    return GenerationRequest(messages=messages, candidates=RATINGS, user_id="u1")


def test_content_free_input_keeps_the_template_and_drops_the_content() -> None:
    assert content_free_input(TASK, PROMPT + "Heat (1995), genres: Action", "N/A") == PROMPT + "N/A"
    assert content_free_input(TASK, PROMPT + "Heat (1995)", "") == PROMPT.rstrip()
    # A task without a query marker: the whole input is content.
    assert content_free_input(get_task("LaMP-1"), "which reference? [1] a [2] b", "N/A") == "N/A"


def test_content_free_messages_keep_the_retrieved_items() -> None:
    item = HistoryRecord("m1", {"text": "Heat (1995), genres: Action", "score": "4"})
    request = request_for(PROMPT + "Casino (1995), genres: Drama", (item,))
    free = content_free_messages(TASK, request.messages, PROMPT + "Casino (1995), genres: Drama", "N/A")
    assert free[0] == request.messages[0]
    assert "Heat (1995)" in free[-1]["content"]  # the context stays
    assert "Casino" not in free[-1]["content"]  # the content goes
    assert free[-1]["content"].endswith(PROMPT + "N/A")


def test_content_free_messages_find_a_shortened_input() -> None:
    text = PROMPT + "A  very   long title " + "word " * 50
    messages = build_messages(TASK, text, (), count_tokens=lambda t: len(t.split()))
    messages = ({**messages[0]}, {**messages[1], "content": " ".join(messages[1]["content"].split()[:25])})
    free = content_free_messages(TASK, messages, text, "N/A")
    assert free[-1]["content"] == " ".join(PROMPT.split()) + " N/A"


def test_calibration_removes_the_models_label_bias() -> None:
    backend = ScoringBackend(biased_model)
    calibrator = ContextualCalibrator(backend, TASK)
    plain = request_for(PROMPT + "Casino (1995), genres: Drama")
    evidence = request_for(PROMPT + "Heat (1995), genres: Action")
    raw = calibrator.score([plain, evidence])
    assert [r.text for r in raw] == ["1", "1"]  # uncalibrated, the bias wins everywhere
    neutral, favoured = calibrator.calibrate([plain, evidence], [PROMPT + "Casino (1995), genres: Drama",
                                                                   PROMPT + "Heat (1995), genres: Action"])
    # Without evidence every label is equally likely; with it "4" has twice the others' probability.
    assert [math.exp(v) for v in neutral.values()] == pytest.approx([0.2] * 5)
    assert math.exp(favoured["4"]) == pytest.approx(2 / 6)
    assert math.exp(favoured["1"]) == pytest.approx(1 / 6)


def test_content_free_prompts_are_scored_once_per_context() -> None:
    backend = ScoringBackend(biased_model)
    calibrator = ContextualCalibrator(backend, TASK, fillers=("N/A", "", "[MASK]"))
    texts = [PROMPT + f"Movie {i} (1990)" for i in range(4)]
    calibrator.calibrate([request_for(t) for t in texts], texts)
    # 4 real prompts, and 3 content-free ones shared by all of them (no retrieved items differ).
    assert len(backend.requests) == 4 + 3
    calibrator.calibrate([request_for(t) for t in texts], texts)
    assert len(backend.requests) == 7  # everything cached


def test_calibrated_scores_average_the_content_free_probabilities() -> None:
    real = {"a": math.log(0.5), "b": math.log(0.5)}
    free = [{"a": math.log(0.8), "b": math.log(0.2)}, {"a": math.log(0.4), "b": math.log(0.6)}]
    calibrated = calibrated_scores(real, free)  # mean content-free p = (0.6, 0.4)
    assert math.exp(calibrated["a"]) == pytest.approx((0.5 / 0.6) / (0.5 / 0.6 + 0.5 / 0.4))
    # A label no content-free input gives any probability keeps its own score.
    assert calibrated_scores({"a": 0.0, "b": 0.0}, [{"a": 0.0, "b": -math.inf}])["b"] > -math.inf


def test_a_backend_without_scores_cannot_be_calibrated() -> None:
    calibrator = ContextualCalibrator(ScoringBackend(None), TASK)
    with pytest.raises(ValueError, match="no candidate scores"):
        calibrator.calibrate([request_for(PROMPT + "x")], [PROMPT + "x"])


# -- evidence weights ----------------------------------------------------------------------------


def test_weighing_evidence_flattens_or_sharpens_it() -> None:
    evidence = normalize({"a": math.log(3.0), "b": 0.0})
    assert [math.exp(v) for v in weigh(evidence, 1.0).values()] == pytest.approx([0.75, 0.25])
    assert [math.exp(v) for v in weigh(evidence, 0.0).values()] == pytest.approx([0.5, 0.5])
    assert math.exp(weigh(evidence, 2.0)["a"]) == pytest.approx(9 / 10)
    # A label the evidence rules out stays ruled out at any positive weight, and returns at weight 0.
    assert weigh({"a": 0.0, "b": -math.inf}, 0.5)["b"] == -math.inf
    assert math.exp(weigh({"a": 0.0, "b": -math.inf}, 0.0)["b"]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="negative"):
        weigh(evidence, -0.1)


def _samples(agree: Sequence[bool], strength: float) -> list[tuple[dict[str, float], dict[str, float], str]]:
    """Evidence for "a" or "b" of the given strength (a likelihood ratio), a uniform prior,
    and the gold: "a" when the evidence is right, "b" when it is wrong."""
    uniform = normalize({"a": 0.0, "b": 0.0})
    evidence = normalize({"a": math.log(strength), "b": 0.0})
    return [(evidence, uniform, "a" if right else "b") for right in agree]


def test_evidence_that_is_right_as_often_as_it_claims_keeps_its_weight() -> None:
    # Evidence saying 3:1 for "a", right 3 times in 4: its probabilities are honest, weight 1.
    fit = fit_evidence_weight(_samples([True, True, True, False] * 10, 3.0), "train")
    assert fit.weight == pytest.approx(1.0)
    assert fit.n == 40 and fit.split == "train"
    assert fit.log_loss == pytest.approx(fit.log_loss_at_1 or 0.0)


def test_evidence_that_is_noise_gets_no_weight_and_overconfident_evidence_less() -> None:
    noise = fit_evidence_weight(_samples([True, False] * 20, 3.0), "train")
    assert noise.weight == 0.0  # right half the time: the prior alone predicts as well, and is preferred
    assert noise.log_loss is not None and noise.log_loss_at_1 is not None and noise.log_loss < noise.log_loss_at_1
    # Saying 9:1 but right 3 times in 4: weighed down to 3:1, i.e. 9 ** w = 3.
    overconfident = fit_evidence_weight(_samples([True, True, True, False] * 10, 9.0), "train")
    assert overconfident.weight == pytest.approx(0.5)
    # Saying 3:1 but always right: sharpened as far as the weights go.
    underconfident = fit_evidence_weight(_samples([True] * 10, 3.0), "train")
    assert underconfident.weight == 3.0


def test_the_prior_is_part_of_the_fit() -> None:
    # The prior already says 3:1 for "a" and is right 3 times in 4: evidence pushing the same
    # way again (3:1) overstates it, so it gets no weight.
    prior = normalize({"a": math.log(3.0), "b": 0.0})
    evidence = normalize({"a": math.log(3.0), "b": 0.0})
    samples = [(evidence, prior, "a" if right else "b") for right in [True, True, True, False] * 10]
    assert fit_evidence_weight(samples, "train").weight == 0.0


def test_fitting_needs_questions_and_an_unfitted_weight_is_bayes() -> None:
    with pytest.raises(ValueError, match="at least one question"):
        fit_evidence_weight([], "train")
    assert EvidenceFit().weight == 1.0
    assert EvidenceFit().to_json() == {"evidence_weight": 1.0, "fitted_on": None, "n": 0}
