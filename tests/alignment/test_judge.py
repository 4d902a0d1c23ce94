"""The pairwise judge asks both orders, so a judge that always picks the first reply cancels out."""

from __future__ import annotations

from tailor.alignment.judge import JudgedPair, PairwiseJudge, agreement
from tailor.backends.echo import EchoBackend
from tailor.types import GenerationRequest

PAIRS = [JudgedPair("Explain rain.", "concise replies", "Rain falls.", "Rain is a long story about clouds."),
         JudgedPair("Explain snow.", "concise replies", "Snow is cold.", "Snow, in great detail, is frozen water.")]


def test_a_judge_that_always_picks_the_first_reply_calls_every_pair_a_tie() -> None:
    judge = PairwiseJudge(EchoBackend(["A"]), mode="generate")
    assert judge.judge(PAIRS) == [0.5, 0.5]
    assert agreement(judge.judge(PAIRS), [1.0, 0.0]) == [0.5, 0.5]


def shorter(request: GenerationRequest) -> str:
    """A judge that picks the shorter reply, wherever it is shown."""
    text = request.messages[-1]["content"]
    a = text.split("Reply A:\n")[1].split("\n\nReply B:")[0]
    b = text.split("Reply B:\n")[1].split("\n\nWhich")[0]
    return "A" if len(a) <= len(b) else "B"


def test_a_consistent_judge_decides_and_agrees_with_the_truth() -> None:
    judge = PairwiseJudge(EchoBackend(shorter), mode="generate")
    verdicts = judge.judge(PAIRS)
    assert verdicts == [1.0, 1.0]
    assert agreement(verdicts, [1.0, 0.0]) == [1.0, 0.0]
    prompt = judge.request(PAIRS[0], swapped=True).messages[-1]["content"]
    assert "concise replies" in prompt and prompt.index("Rain is a long story") < prompt.index("Rain falls.")


def test_likelihood_mode_scores_the_two_letters() -> None:
    backend = EchoBackend(["B"])
    PairwiseJudge(backend, mode="likelihood").judge(PAIRS[:1])
    assert all(request.candidates == ("A", "B") for request in backend.requests)
