"""Rankers: a user's candidate items put in order, by a classic recommender, by the model's
likelihood after a method's prompt, or by the model over a recommender's top N.

What a ranking task's methods build (:mod:`tailor.methods.recommenders` composes them):

- :class:`RecommenderRanker`: a classic recommender (:mod:`tailor.recommenders`) fitted on
  every user's history in the store (a cross-user read, as a recommender must), scoring
  the candidates from the user's history;
- :class:`LikelihoodRanker`: the prompt of any prompt method (``none``, ``bm25``,
  ``summary+bm25``, ``lora+bm25``...) with the user's history retrieved by similarity to
  each candidate (each candidate's own top ``k``, fused by reciprocal rank into the ``k``
  the prompt shows), then every candidate's title scored by its likelihood as the
  answer: one request per user, whose prompt the engine runs once for all its
  candidates; no text is generated or parsed. The title's likelihood after the same
  prompt without the user (its prior, cached per title) is subtracted, so that what
  ranks is how much the user's history raises each candidate;
- :class:`Reranker`: a recommender's top ``top`` reordered by a likelihood ranker, the two
  scores mixed by a weight chosen on the validation split (:data:`RERANK_WEIGHT`); below
  the top, the recommender's order.

Every ranker returns :class:`Ranked` (all candidates, best first, with scores); ties keep
the candidates' order, which the data set shuffles.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tailor.personalizers.contract import Personalizer
from tailor.tasks.spec import TaskSpec
from tailor.types import (
    Backend,
    GenerationRequest,
    Granularity,
    HistoryRecord,
    ModelSteps,
    Profile,
    TaskExample,
    answer_steps,
)

if TYPE_CHECKING:
    from tailor.recommenders.models import Interactions, Recommender
    from tailor.store.contract import ProfileStore

RankInput = tuple[str, Profile, Sequence[HistoryRecord]]
"""One ranking to make: the task's input text, the user's profile, the candidate items."""

RERANK_TOP = 20
"""How many of the first stage's items a reranker reorders (LlamaRec's 20)."""
RERANK_WEIGHT = 0.0
"""The weight of the model's standardized scores against the first stage's in a reranker
(:func:`mix`), chosen on MovieLens 100k's validation split by the rule of
``python benchmarks/recommenders.py rerank``: the grid's best weight if its paired 95%
interval against 0 lies above 0, else 0. With the default model no weight beats 0 beyond
chance there (the model orders the head at chance: docs/results-recommendation.md), so a
reranker keeps the first stage's order and its predictions keep the model's scores
(``Ranked.stages``); rerun the rule on your model and data to choose yours."""
FUSION_OFFSET = 60
"""Reciprocal-rank fusion's constant (Cormack et al. 2009), for the records retrieved per candidate."""


@dataclass(frozen=True)
class Ranked:
    """Candidates' item ids, best first, with their scores (same order), and what the
    ranking used: record ids shown to the model, granularity, notes."""

    items: tuple[str, ...]
    scores: tuple[float, ...]
    retrieved: tuple[str, ...] = ()
    granularity: Granularity = "global"
    notes: dict[str, str] = field(default_factory=dict)
    stages: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """A reranker's stage scores of the reordered head (the first ``len`` items, in that
    order): ``first`` (the recommender's) and ``model`` (the likelihood ranker's), what
    :func:`mix` combined; empty for a one-stage ranking."""


class Ranker(Protocol):
    """Orders a user's candidates. ``rank_steps`` ranks several users' at once, as steps
    (:data:`~tailor.types.ModelSteps`: the requests it asks of the model are yielded, so a
    server queues them like replies); ``rank_batch`` answers those with the ranker's model."""

    name: str

    def rank_steps(self, task: TaskSpec, inputs: Sequence[RankInput]) -> ModelSteps[list[Ranked]]: ...

    def rank_batch(self, task: TaskSpec, inputs: Sequence[RankInput]) -> list[Ranked]: ...


def item_id(record: HistoryRecord) -> str:
    """The item a record is about: its ``item`` field, else its id (a catalogue item's id)."""
    return record.fields.get("item") or record.id


def candidate_title(record: HistoryRecord) -> str:
    """What the model is asked the likelihood of: the item's title, else its text."""
    return record.fields.get("title") or record.fields.get("text") or item_id(record)


def order(candidates: Sequence[HistoryRecord], scores: Sequence[float], **used: Any) -> Ranked:
    """The candidates by score, best first; equal scores keep the candidates' order."""
    places = sorted(range(len(candidates)), key=lambda place: -scores[place])
    return Ranked(tuple(item_id(candidates[place]) for place in places),
                  tuple(float(scores[place]) for place in places), **used)


class RecommenderRanker:
    """A classic recommender, fitted once on every user's history in ``store`` (on first
    use, or in ``prepare``), scoring the candidates from the user's history; an item the
    fit never saw scores below every item it saw."""

    model_free = True

    def __init__(self, name: str, model: Recommender, store: ProfileStore) -> None:
        self.name, self.model, self.store = name, model, store
        self.interactions: Interactions | None = None
        self._lock = threading.Lock()

    def prepare(self, task: TaskSpec, examples: Sequence[TaskExample], progress: object | None = None) -> None:
        self.fit()

    def fit(self) -> Interactions:
        """Fit the model on the store's histories, once; the fitted interactions."""
        with self._lock:
            if self.interactions is None:
                from tailor.recommenders.models import Interactions

                histories = {user: [item_id(record) for record in self.store.get_profile(user).records]
                             for user in self.store.list_users()}
                interactions = Interactions.from_histories(histories)
                self.model.fit(interactions)
                self.interactions = interactions
            return self.interactions

    def rank_steps(self, task: TaskSpec, inputs: Sequence[RankInput]) -> ModelSteps[list[Ranked]]:
        return self.rank_batch(task, inputs)
        yield []  # a generator that asks the model nothing

    def rank_batch(self, task: TaskSpec, inputs: Sequence[RankInput]) -> list[Ranked]:
        interactions = self.fit()
        ranked = []
        for _, profile, candidates in inputs:
            history = [item_id(record) for record in profile.records]
            columns = [interactions.item_index.get(item_id(candidate)) for candidate in candidates]
            known = [column for column in columns if column is not None]
            values = iter(self.model.scores(profile.user_id, history, known).tolist())
            scores = [next(values) if column is not None else -math.inf for column in columns]
            ranked.append(order(candidates, scores, granularity="user" if history else "global"))
        return ranked


class LikelihoodRanker:
    """The candidates' titles ranked by their likelihood after ``personalizer``'s prompt
    (see the module), on ``backend`` (the user's adapter's view when the personalizer
    binds one, as ``lora+bm25``'s does)."""

    def __init__(self, name: str, personalizer: Personalizer, backend: Backend, *, calibrate: bool = True) -> None:
        self.name, self.personalizer, self.backend, self.calibrate = name, personalizer, backend, calibrate
        bind: Callable[[Backend], Backend] | None = getattr(personalizer, "bind", None)
        self.model = bind(backend) if callable(bind) else backend
        self.training = getattr(personalizer, "training", None)
        self._priors: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def prepare(self) -> Callable[[TaskSpec, Sequence[TaskExample], object | None], None] | None:
        return getattr(self.personalizer, "prepare", None)

    def prompt(self, task: TaskSpec, text: str, profile: Profile, candidates: Sequence[HistoryRecord]) -> Any:
        """The personalizer's prompt for ``text``, showing the records retrieved for the
        candidates: each candidate's own top ``k`` (its text the query), fused by
        reciprocal rank, the best ``k`` kept (``k``: as many as the personalizer shows)."""
        fused: dict[str, float] = {}
        shown = 0
        for candidate in candidates:
            retrieved = self.personalizer.personalize(task, task.document(candidate), profile).retrieved
            if not retrieved:
                break  # the method retrieves nothing (none, summary alone): no per-candidate query
            shown = max(shown, len(retrieved))
            for rank, record in enumerate(retrieved):
                fused[record] = fused.get(record, 0.0) + 1.0 / (FUSION_OFFSET + rank)
        if fused:
            best = set(sorted(fused, key=lambda record: -fused[record])[:shown])
            profile = Profile(profile.user_id, tuple(r for r in profile.records if r.id in best), profile.attributes)
        return self.personalizer.personalize(task, text, profile)

    def rank_batch(self, task: TaskSpec, inputs: Sequence[RankInput]) -> list[Ranked]:
        return answer_steps(self.rank_steps(task, inputs), self.model.generate)

    def rank_steps(self, task: TaskSpec, inputs: Sequence[RankInput]) -> ModelSteps[list[Ranked]]:
        """The prompts, then one request per user with its candidates' titles (and one for
        the titles whose prior is not known yet), then the order."""
        decided = [self.prompt(task, text, profile, candidates) for text, profile, candidates in inputs]
        requests = [GenerationRequest(d.messages, max_new_tokens=1,
                                      candidates=tuple(dict.fromkeys(candidate_title(c) for c in candidates)),
                                      user_id=profile.user_id)
                    for d, (_, profile, candidates) in zip(decided, inputs)]
        prior_request = self._prior_request(task, inputs) if self.calibrate else None
        results = yield requests + ([prior_request] if prior_request is not None else [])
        if prior_request is not None:
            with self._lock:
                self._priors.update(results[-1].scores or {})
        priors = self._known_priors(inputs) if self.calibrate else {}
        ranked = []
        for d, result, (_, _, candidates) in zip(decided, results, inputs):
            scores = dict(result.scores or {})
            values = [scores.get(candidate_title(c), -math.inf) - priors.get(candidate_title(c), 0.0)
                      for c in candidates]
            ranked.append(order(candidates, values, retrieved=d.retrieved, granularity=d.granularity,
                                notes=dict(d.notes)))
        return ranked

    def _prior_request(self, task: TaskSpec, inputs: Sequence[RankInput]) -> GenerationRequest | None:
        """The request for the titles whose prior is not known yet: their likelihood after
        the prompt without the user (the task's input alone), on the model without
        adapters (no user id), once per title."""
        with self._lock:
            titles = dict.fromkeys(candidate_title(c) for _, _, candidates in inputs for c in candidates)
            missing = tuple(title for title in titles if title not in self._priors)
        if not missing:
            return None
        from tailor.prompting.builder import build_messages

        count = getattr(self.personalizer, "count_tokens", None) or self.backend.count_tokens
        messages = build_messages(task, inputs[0][0], [], layout="lamp", count_tokens=count)
        return GenerationRequest(messages, max_new_tokens=1, candidates=missing)

    def _known_priors(self, inputs: Sequence[RankInput]) -> dict[str, float]:
        with self._lock:
            return {title: self._priors[title] for _, _, candidates in inputs for c in candidates
                    if (title := candidate_title(c)) in self._priors}


class Reranker:
    """``first``'s top ``top`` items reordered by ``second``: each one's standardized first
    score plus ``weight`` times its standardized model score (``weight`` ``None``: the
    model's order alone); the rest keep ``first``'s order below them."""

    def __init__(self, name: str, first: RecommenderRanker, second: LikelihoodRanker, *, top: int = RERANK_TOP,
                 weight: float | None = RERANK_WEIGHT) -> None:
        if top < 1:
            raise ValueError(f"top must be at least 1, got {top}")
        self.name, self.first, self.second, self.top, self.weight = name, first, second, top, weight
        self.training = second.training

    def prepare(self, task: TaskSpec, examples: Sequence[TaskExample], progress: object | None = None) -> None:
        self.first.fit()
        prepare = self.second.prepare
        if prepare is not None:
            prepare(task, examples, progress)

    def rank_batch(self, task: TaskSpec, inputs: Sequence[RankInput]) -> list[Ranked]:
        return answer_steps(self.rank_steps(task, inputs), self.second.model.generate)

    def rank_steps(self, task: TaskSpec, inputs: Sequence[RankInput]) -> ModelSteps[list[Ranked]]:
        firsts = self.first.rank_batch(task, inputs)
        tops = []
        for ranked, (text, profile, candidates) in zip(firsts, inputs):
            by_id = {item_id(candidate): candidate for candidate in candidates}
            tops.append((text, profile, [by_id[item] for item in ranked.items[:self.top]]))
        seconds = yield from self.second.rank_steps(task, tops)
        reranked = []
        for first, second, (_, _, top) in zip(firsts, seconds, tops):
            model = dict(zip(second.items, second.scores))
            first_scores = list(first.scores[:len(top)])
            model_scores = [model[item_id(c)] for c in top]
            head = order(top, mix(first_scores, model_scores, self.weight))
            position = {item_id(c): p for p, c in enumerate(top)}
            stages = {"first": tuple(first_scores[position[i]] for i in head.items),
                      "model": tuple(model_scores[position[i]] for i in head.items)}
            # Below the reordered top, the first stage's order, its scores shifted under the head's.
            floor = min(head.scores, default=0.0)
            tail = [floor - 1.0 - place for place in range(len(first.items) - len(top))]
            reranked.append(Ranked(head.items + first.items[len(top):], head.scores + tuple(tail),
                                   retrieved=second.retrieved, granularity=second.granularity, notes=second.notes,
                                   stages=stages))
        return reranked


def mix(first: Sequence[float], model: Sequence[float], weight: float | None) -> list[float]:
    """A reranker's score of each head item: its standardized first-stage score plus
    ``weight`` times its standardized model score (``None``: the model's score alone)."""
    model_part = _standardized(list(model))
    if weight is None:
        return model_part
    return [a + weight * b for a, b in zip(_standardized(list(first)), model_part)]


def _standardized(values: list[float]) -> list[float]:
    """``values`` less their mean, over their standard deviation (finite values; others the lowest)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return [0.0] * len(values)
    mean = math.fsum(finite) / len(finite)
    spread = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / len(finite)) or 1.0
    low = min((v - mean) / spread for v in finite) - 1.0
    return [(v - mean) / spread if math.isfinite(v) else low for v in values]


__all__ = ["FUSION_OFFSET", "RERANK_TOP", "RERANK_WEIGHT", "LikelihoodRanker", "RankInput", "Ranked", "Ranker",
           "RecommenderRanker", "Reranker", "candidate_title", "item_id", "mix", "order"]
