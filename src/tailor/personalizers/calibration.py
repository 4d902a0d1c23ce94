"""Contextual calibration of label scores (Zhao et al., "Calibrate Before Use", ICML 2021).

A small model scored on a label set prefers some labels whatever the input says (the
default model answers "1" for every movie). Calibration asks the model the same prompt
with the input's content replaced by a content-free text ("N/A"; several may be given,
their label probabilities are averaged), and divides the real probabilities by those:
what remains is how much this input moves the model towards each label. The retrieved
items, the instruction and the template stay as they were, so the content-free prompt
is scored once per distinct context (once in all for ``none``) and cached.

What calibration leaves is evidence, not an answer. The answer is decided on
``prior(y) * evidence(y) ** w``: the prior is the user's label distribution for the
``+prior`` methods and the population's (every stored profile's labels) for the others,
which Zhao et al.'s uniform prior stands in for; ``w`` says how much the evidence is
worth, fitted by :func:`fit_evidence_weight` on the train split's questions (their golds
are known) whenever the data folder holds one. A 135M model's evidence about a movie
rating is close to noise (fitted ``w`` 0 to 0.1 on movielens-ratings): at ``w = 1`` it
made the answers worse than the prior alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tailor.personalizers.labels import combine, normalize
from tailor.tasks.spec import TaskSpec
from tailor.types import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from tailor.backends.contract import Backend

CONTENT_FREE = ("N/A",)
"""The content-free input of Zhao et al. (2021). Their average over ``("N/A", "", "[MASK]")``
helps a little more, at one more model call each per distinct context."""

Message = Mapping[str, str]


def content_free_input(task: TaskSpec, text: str, filler: str) -> str:
    """``text`` with its content (what follows the task's query marker, or all of it when
    the task has none) replaced by ``filler``: the template stays, the content goes."""
    marker = task.query_marker
    position = text.find(marker) if marker else -1
    if position == -1:
        return filler
    head = text[:position + len(marker)]
    return f"{head} {filler}" if filler else head


def content_free_messages(task: TaskSpec, messages: Sequence[Message], text: str,
                          filler: str) -> tuple[dict[str, str], ...]:
    """``messages`` with the task input ``text`` (at the end of the last user message, where
    :func:`tailor.prompting.builder.build_messages` puts it) made content-free."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    if last == -1:
        raise ValueError("the messages hold no user message to calibrate")
    content = messages[last]["content"]
    start = _input_start(task, content, text)
    replaced = content[:start] + content_free_input(task, text, filler)
    return tuple({**m} if i != last else {**m, "content": replaced} for i, m in enumerate(messages))


def _input_start(task: TaskSpec, content: str, text: str) -> int:
    """Where the (possibly shortened) input begins in the last user message."""
    if content.endswith(text):
        return len(content) - len(text)
    # The input was cut to its token budget (and its words rejoined by single spaces): find its opening.
    marker = task.query_marker
    position = text.find(marker) if marker else -1
    opening = " ".join(text[:position + len(marker)].split()) if position != -1 else " ".join(text.split()[:8])
    start = content.rfind(opening)
    if not opening or start == -1:
        raise ValueError("cannot find the task input in the prompt to replace it by a content-free input")
    return start


class ContextualCalibrator:
    """Scores candidate requests and calibrates them by content-free versions of each.

    Scores are cached by request for the calibrator's life, so methods that build the
    same prompt (``bm25`` and ``bm25+prior``) ask the model once. ``per_user`` says whether
    the backend answers each user differently (a view that applies the user's adapter);
    when it does not, users with the same prompt share its scores.
    """

    def __init__(self, backend: Backend, task: TaskSpec, fillers: Sequence[str] = CONTENT_FREE, *,
                 per_user: bool = False) -> None:
        if not fillers:
            raise ValueError("at least one content-free input is needed")
        self.backend = backend
        self.task = task
        self.fillers = tuple(fillers)
        self.per_user = per_user
        self._cache: dict[tuple[object, ...], GenerationResult] = {}

    def score(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """The backend's results for ``requests`` (candidate requests), each scored once."""
        keys = [_key(r, self.per_user) for r in requests]
        todo = {key: r for key, r in zip(keys, requests) if key not in self._cache}
        if todo:
            for key, result in zip(todo, self.backend.generate(list(todo.values()))):
                if result.scores is None:
                    raise ValueError(f"backend {self.backend.name!r} gave no candidate scores to calibrate")
                self._cache[key] = result
        return [self._cache[key] for key in keys]

    def calibrate(self, requests: Sequence[GenerationRequest], texts: Sequence[str]) -> list[dict[str, float]]:
        """Calibrated log-probabilities over each request's candidates; ``texts`` are the task
        inputs the requests' prompts were built from."""
        if len(requests) != len(texts):
            raise ValueError(f"{len(requests)} requests but {len(texts)} inputs")
        if any(r.candidates is None for r in requests):
            raise ValueError("only requests with candidates can be calibrated")
        free = [[GenerationRequest(messages=content_free_messages(self.task, r.messages, text, filler),
                                   max_new_tokens=r.max_new_tokens, stop=r.stop, candidates=r.candidates,
                                   user_id=r.user_id) for filler in self.fillers]
                for r, text in zip(requests, texts)]
        scored = self.score([*requests, *(f for group in free for f in group)])
        real, rest = scored[:len(requests)], scored[len(requests):]
        width = len(self.fillers)
        return [calibrated_scores(result.scores or {}, [g.scores or {} for g in rest[i * width:(i + 1) * width]])
                for i, result in enumerate(real)]


def calibrated_scores(scores: Mapping[str, float], content_free: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Log-probabilities ``p(y | input) / mean_f p(y | content-free f)``, renormalized.

    Scores are normalized over the candidates first. A label the content-free inputs give
    no probability at all keeps its uncalibrated score rather than an infinite one.
    """
    real = normalize(scores)
    if not content_free:
        return real
    free = [normalize({key: group.get(key, -math.inf) for key in scores}) for group in content_free]
    adjusted = {}
    for key, value in real.items():
        mean = math.fsum(math.exp(group[key]) for group in free) / len(free)
        adjusted[key] = value - math.log(mean) if mean > 0 else value
    return normalize(adjusted)


EVIDENCE_WEIGHTS = tuple(step / 20 for step in range(61))
"""The evidence weights a fit chooses among: 0 (the prior alone) to 3 (the model's
calibrated evidence sharpened threefold), by steps of 0.05."""


def weigh(evidence: Mapping[str, float], weight: float) -> dict[str, float]:
    """Calibrated log-probabilities raised to the power ``weight``, renormalized: at 0 they say
    nothing (uniform), at 1 they are as they were."""
    if weight < 0:
        raise ValueError(f"an evidence weight cannot be negative, got {weight}")
    return normalize({key: (weight * value if weight else 0.0) for key, value in evidence.items()})


def posterior(evidence: Mapping[str, float], prior: Mapping[str, float] | None, weight: float) -> dict[str, float]:
    """The distribution a calibrated label is decided on: ``prior(y) * evidence(y) ** weight``,
    normalized (the evidence weighed alone when there is no prior)."""
    weighed = weigh(evidence, weight)
    return combine(weighed, prior) if prior is not None else weighed


@dataclass(frozen=True)
class EvidenceFit:
    """How much a method's calibrated label scores are trusted: the answer is decided on
    ``prior(y) * evidence(y) ** weight`` (normalized), with ``weight`` fitted on ``n``
    questions of ``split`` (``None``: not fitted, Bayes' rule as it is, weight 1)."""

    weight: float = 1.0
    n: int = 0
    split: str | None = None
    log_loss: float | None = None
    """The fitted weight's mean negative log-likelihood of the golds on the fitting questions."""
    log_loss_at_1: float | None = None
    """The same at weight 1 (Bayes' rule trusting the model fully), for comparison."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvidenceFit:
        """The fit :meth:`to_json` wrote."""
        return cls(weight=float(data["evidence_weight"]), n=int(data.get("n", 0)), split=data.get("fitted_on"),
                   log_loss=data.get("log_loss"), log_loss_at_1=data.get("log_loss_at_1"))

    def to_json(self) -> dict[str, Any]:
        return {"evidence_weight": self.weight, "fitted_on": self.split, "n": self.n,
                **({"log_loss": round(self.log_loss, 4)} if self.log_loss is not None else {}),
                **({"log_loss_at_1": round(self.log_loss_at_1, 4)} if self.log_loss_at_1 is not None else {})}


def fit_evidence_weight(samples: Sequence[tuple[Mapping[str, float], Mapping[str, float], str]],
                        split: str, weights: Sequence[float] = EVIDENCE_WEIGHTS) -> EvidenceFit:
    """The weight (among ``weights``) that best predicts the golds of ``samples`` (each:
    calibrated evidence, prior, gold label), by mean negative log-likelihood, a proper
    scoring rule; a tie goes to the smaller weight (the less the model is trusted).

    A 135M model's calibrated evidence about a movie rating is mostly noise: multiplied into
    the prior at full weight it makes the answers worse than the prior alone. Fitted on
    questions whose answers are known, the weight says how much that evidence is worth.
    """
    if not samples:
        raise ValueError("fitting an evidence weight needs at least one question with a gold label")

    def loss(weight: float) -> float:
        total = 0.0
        for evidence, prior, gold in samples:
            total -= max(posterior(evidence, prior, weight).get(gold, -math.inf), _FLOOR)
        return total / len(samples)

    losses = [(loss(weight), weight) for weight in weights]
    best_loss, best = min(losses, key=lambda pair: (round(pair[0], 12), pair[1]))
    return EvidenceFit(weight=best, n=len(samples), split=split, log_loss=best_loss, log_loss_at_1=loss(1.0))


_FLOOR = math.log(1e-12)
"""A gold the distribution gives no mass costs as much as one given 1e-12, not infinitely."""


def _key(request: GenerationRequest, per_user: bool) -> tuple[object, ...]:
    messages = tuple((m["role"], m["content"]) for m in request.messages)
    return messages, request.candidates, request.user_id if per_user else None


__all__ = ["CONTENT_FREE", "EVIDENCE_WEIGHTS", "ContextualCalibrator", "EvidenceFit", "calibrated_scores",
           "content_free_input", "content_free_messages", "fit_evidence_weight", "posterior", "weigh"]
