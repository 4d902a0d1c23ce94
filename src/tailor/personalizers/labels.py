"""Labels and ratings from the user's own profile, alone or combined with the model's scores.

For the tasks whose answer is one of a fixed set (LaMP-1/2 labels, LaMP-3-style 1-5
ratings), the profile already says much: a user who gives most movies a 4 will likely
give this one a 4. These methods use that:

- ``profile-prior``: the user's own label distribution (the outputs of their profile
  items, add-one smoothed: a uniform Dirichlet prior, so an unseen label keeps some mass);
- ``knn``: a vote of the labels of the items retrieved (BM25) for this input;
- ``user-mean`` and ``global-mean`` (rating tasks): the user's mean rating, and the mean
  over every profile in the store (a cross-user read: it is the population baseline);
- ``item-bias`` (rating tasks): the user's mean plus the item's bias, how far other users'
  earlier ratings of the same item are from the population's mean (the user and item
  biases of a recommender's baseline predictor, with no constant to tune);
- ``item-mean`` and ``svd`` (rating tasks): the item's mean rating and biased matrix
  factorization, through ``scikit-surprise`` (:mod:`tailor.recommenders.ratings`), fitted
  on every rating in the store;
- ``none+prior`` and ``bm25+prior``: the model's scores for the labels on that method's
  prompt, contextually calibrated (see :mod:`tailor.personalizers.calibration`), times
  the user's prior. Calibration divides out the model's own preference for a label
  (its answer to a content-free input), leaving how much the input itself favours each
  label; multiplying by the user's prior is then Bayes' rule. How much that evidence is
  trusted is fitted on the train split, not tuned (see
  :mod:`tailor.personalizers.calibration`); the calibrated methods without a user's prior
  (``none``, ``bm25``) take the population's.

A method that needs no model answers itself (``Personalized.answer``); the backend is not
asked. A distribution becomes one answer by the Bayes decision for the task's metric:
the most probable label for classification (accuracy), the median rating for ratings
(MAE, LaMP-3's headline metric, is minimized by the median).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from tailor.personalizers.contract import Personalized, Personalizer
from tailor.retrieval.retriever import Retriever
from tailor.tasks.spec import TaskSpec
from tailor.types import HistoryRecord, Profile

if TYPE_CHECKING:
    from tailor.recommenders.ratings import RatingModel
    from tailor.store.contract import ProfileStore

LabelDistribution = Mapping[str, float]
"""Log-probabilities over a task's labels."""

KNN_VOTERS = 4
"""The fewest retrieved items ``knn`` votes with, whatever ``--k`` says for pasting items: the
4 items of LaMP's retrieval-augmented setting (Salemi et al., 2024). One item is no vote."""

# -- distributions -----------------------------------------------------------------------


def normalize(scores: Mapping[str, float]) -> dict[str, float]:
    """Scores (log-likelihoods, or any log-scale scores) -> log-probabilities over their keys."""
    if not scores:
        raise ValueError("cannot normalize an empty set of scores")
    finite = [value for value in scores.values() if value > -math.inf]
    if not finite:
        uniform = -math.log(len(scores))
        return {key: uniform for key in scores}
    peak = max(finite)
    total = peak + math.log(math.fsum(math.exp(value - peak) for value in finite))
    return {key: (value - total if value > -math.inf else -math.inf) for key, value in scores.items()}


def item_label(task: TaskSpec, record: HistoryRecord) -> str | None:
    """The label a profile item carries (its output, as the task replays it as an earlier
    answer), or ``None`` when the item has none of the task's labels (LaMP-1's papers)."""
    turn = task.item_turn(record)
    return None if turn is None else as_label(task, turn[1])


def as_label(task: TaskSpec, text: str) -> str | None:
    """``text`` as one of the task's labels ("4.0" is the rating "4", "comedy" the label
    "Comedy"), or ``None`` when it is none of them."""
    label = text.strip()
    if label in task.labels:
        return label
    for known in task.labels:
        if known.casefold() == label.casefold():
            return known
        if task.kind == "rating" and _number(label) == _number(known):
            return known
    return None


def profile_labels(task: TaskSpec, records: Iterable[HistoryRecord]) -> list[str]:
    """The labels of ``records`` that carry one, in order."""
    return [label for label in (item_label(task, r) for r in records) if label is not None]


def store_labels(task: TaskSpec, store: ProfileStore) -> list[str]:
    """The labels of every profile item in ``store``, each stored record once: a cross-user
    read, for the population's (global) prior."""
    return [label for user_id in store.list_users()
            for label in profile_labels(task, store.get_profile(user_id).records)]


def label_distribution(task: TaskSpec, labels: Sequence[str]) -> dict[str, float]:
    """Log-probabilities of the task's labels given observed ``labels``, add-one smoothed."""
    counts = Counter(labels)
    total = len(labels) + len(task.labels)
    return {label: math.log((counts[label] + 1) / total) for label in task.labels}


def decide(task: TaskSpec, log_probs: LabelDistribution) -> str:
    """The answer a distribution over the task's labels gives: the most probable label
    (the first in the task's order on a tie), or for a rating task the median rating."""
    if task.kind == "rating":
        ordered = sorted(task.labels, key=_number)
        probabilities = [math.exp(log_probs.get(label, -math.inf)) for label in ordered]
        total = math.fsum(probabilities)
        if total <= 0:
            raise ValueError("a distribution over the ratings needs some mass")
        cumulative = 0.0
        for label, probability in zip(ordered, probabilities):
            cumulative += probability / total
            if cumulative >= 0.5 - 1e-12:
                return label
        return ordered[-1]
    return max(task.labels, key=lambda label: (log_probs.get(label, -math.inf), -task.labels.index(label)))


def combine(*distributions: LabelDistribution) -> dict[str, float]:
    """The normalized product of distributions over the same labels (a sum of log-probabilities)."""
    keys = list(distributions[0])
    return normalize({key: math.fsum(d.get(key, -math.inf) for d in distributions) for key in keys})


def _number(label: str) -> float:
    try:
        return float(label)
    except ValueError:
        return math.nan


def _ratings(task: TaskSpec, records: Iterable[HistoryRecord]) -> list[float]:
    return [_number(label) for label in profile_labels(task, records)]


def _scale(task: TaskSpec) -> tuple[float, float]:
    """The lowest and the highest rating of a rating task."""
    numbers = [_number(label) for label in task.labels]
    return min(numbers), max(numbers)


def _answer(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


# -- personalizers -----------------------------------------------------------------------


class ProfilePriorPersonalizer:
    """``profile-prior``: the answer the user's own label distribution gives, without a model."""

    name = "profile-prior"
    model_free = True

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        labels = profile_labels(task, profile.records)
        distribution = label_distribution(task, labels)
        return Personalized(messages=(), answer=decide(task, distribution),
                            granularity="user" if labels else "global")


class KNNPersonalizer:
    """``knn``: the vote of the labels of the ``k`` items retrieved for the input.

    A tie (or no labelled item retrieved) is settled by the user's whole profile.
    """

    name = "knn"
    model_free = True

    def __init__(self, retriever: Retriever, *, k: int) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.retriever = retriever
        self.k = k

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        hits = self.retriever.retrieve(task.query(text), profile, self.k)
        records = [hit.record for hit in hits]
        votes = profile_labels(task, records)
        labels = profile_labels(task, profile.records)
        prior = label_distribution(task, labels)
        if not votes:
            answer = decide(task, prior)
        elif task.kind == "rating":
            answer = _median_vote(task, votes, prior)
        else:
            counts = Counter(votes)
            answer = max(task.labels, key=lambda label: (counts[label], prior[label], -task.labels.index(label)))
        return Personalized(messages=(), retrieved=tuple(r.id for r in records), answer=answer,
                            granularity="user" if votes or labels else "global")


def _median_vote(task: TaskSpec, votes: Sequence[str], prior: LabelDistribution) -> str:
    """The median of rating votes; of the two middle votes of an even count, the one the
    user's profile holds more often (the lower on a tie)."""
    ordered = sorted(votes, key=_number)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    low, high = ordered[middle - 1], ordered[middle]
    return high if prior[high] > prior[low] else low


class MeanRatingPersonalizer:
    """``user-mean`` and ``global-mean``: the mean rating of the user's profile, or of every
    profile in the store (read once, across users: it is the population baseline). A user
    without rated items gets the global mean."""

    model_free = True

    def __init__(self, scope: Literal["user", "global"], store: ProfileStore) -> None:
        if scope not in ("user", "global"):
            raise ValueError(f"scope must be 'user' or 'global', got {scope!r}")
        self.scope = scope
        self.name = f"{scope}-mean"
        self.store = store
        self._global: float | None = None

    def global_mean(self, task: TaskSpec) -> float:
        """The mean rating over every profile in the store (each stored record once)."""
        if self._global is None:
            ratings = [_number(label) for label in store_labels(task, self.store)]
            if ratings:
                self._global = math.fsum(ratings) / len(ratings)
            else:  # no rating anywhere: the middle of the scale
                low, high = _scale(task)
                self._global = (low + high) / 2
        return self._global

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        ratings = _ratings(task, profile.records) if self.scope == "user" else []
        if ratings:
            return Personalized(messages=(), answer=_answer(math.fsum(ratings) / len(ratings)), granularity="user")
        return Personalized(messages=(), answer=_answer(self.global_mean(task)), granularity="global")


class ItemBiasPersonalizer:
    """``item-bias``: the user's mean rating plus the item's bias, clipped to the scale.

    An item is its text as the task retrieves it (:meth:`TaskSpec.document`; the query is
    :meth:`TaskSpec.query` of the input), so two ratings are of the same item when they
    name the same movie with the same genres; a task whose items never repeat (LaMP-3's
    reviews) gets the user's mean. The item's bias is the mean of ``r - mu`` over the
    other users' ratings of it, and ``mu`` the mean of all stored ratings, both counting
    only ratings dated strictly before the day of the user's latest rated item, so strictly
    before the question's (undated ratings count; an undated profile reads them all). A
    cross-user read, like ``global-mean``: the population's ratings of the item, never their
    texts.
    """

    name = "item-bias"
    model_free = True

    def __init__(self, store: ProfileStore) -> None:
        self.store = store
        self._index: _RatingIndex | None = None

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        if self._index is None:
            self._index = _RatingIndex(task, self.store)
        ratings = _ratings(task, profile.records)
        dates = [r.date for r in profile.records if r.date]
        cutoff = max(dates) if dates and len(dates) == len(profile.records) else None
        low, high = _scale(task)
        population = self._index.mean(cutoff, (low + high) / 2)
        user = math.fsum(ratings) / len(ratings) if ratings else population
        others = self._index.item_ratings(_item_key(task.query(text)), cutoff, exclude=profile.user_id)
        bias = math.fsum(r - population for r in others) / len(others) if others else 0.0
        answer = min(max(user + bias, low), high)
        return Personalized(messages=(), answer=_answer(answer), granularity="user" if ratings else "global")


class RatingModelPersonalizer:
    """``item-mean``, ``svd``: a rating model of :mod:`tailor.recommenders.ratings`, fitted
    once (at the first question) on every rating in the store, an item keyed by its text as
    ``item-bias`` keys it, answering the user's rating of the question's item.

    A cross-user read, like ``item-bias``, but without its date cut: as for the ranking
    task's recommenders, other users' ratings later than the question are in the fit (the
    usual leave-out protocol); nothing of the question's user at or after it is."""

    model_free = True

    def __init__(self, name: str, model: RatingModel, store: ProfileStore) -> None:
        self.name, self.model, self.store = name, model, store
        self._fitted = False

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        if not self._fitted:
            ratings = [(user_id, _item_key(task.document(record)), _number(label))
                       for user_id in self.store.list_users() for record in self.store.get_profile(user_id).records
                       if (label := item_label(task, record)) is not None]
            self.model.fit(ratings, _scale(task))
            self._fitted = True
        value, known = self.model.predict(profile.user_id, _item_key(task.query(text)))
        return Personalized(messages=(), answer=_answer(value), granularity="user" if known else "global")


def _item_key(text: str) -> str:
    return " ".join(text.split()).casefold()


class _RatingIndex:
    """Every stored rating, by date (for the population's mean up to a date) and by item."""

    def __init__(self, task: TaskSpec, store: ProfileStore) -> None:
        dated: list[tuple[str, float]] = []
        self.undated: list[float] = []
        self.items: dict[str, list[tuple[str | None, str, float]]] = {}
        for user_id in store.list_users():
            for record in store.get_profile(user_id).records:
                label = item_label(task, record)
                if label is None:
                    continue
                rating = _number(label)
                if record.date:
                    dated.append((record.date, rating))
                else:
                    self.undated.append(rating)
                self.items.setdefault(_item_key(task.document(record)), []).append((record.date, user_id, rating))
        dated.sort()
        self.undated_sum = math.fsum(self.undated)
        self.dates = [date for date, _ in dated]
        self.sums = [0.0]
        for _, rating in dated:
            self.sums.append(self.sums[-1] + rating)

    def mean(self, cutoff: str | None, default: float) -> float:
        """The mean of the ratings dated before ``cutoff`` (all, for ``None``), undated ones
        included; with none that early, of all; with none at all, ``default``."""
        count = len(self.dates) if cutoff is None else bisect.bisect_left(self.dates, cutoff)
        n = count + len(self.undated)
        if n:
            return (self.sums[count] + self.undated_sum) / n
        return self.sums[-1] / len(self.dates) if self.dates else default

    def item_ratings(self, key: str, cutoff: str | None, *, exclude: str) -> list[float]:
        return [rating for date, user_id, rating in self.items.get(key, ())
                if user_id != exclude and (cutoff is None or date is None or date < cutoff)]


class PriorPersonalizer:
    """``none+prior``, ``bm25+prior``: another method's prompt, whose label scores the runner
    calibrates and multiplies by the user's prior (``Personalized.label_prior``)."""

    calibrated = True
    """The model's scores are always calibrated here: Bayes' rule needs the model's evidence
    for a label without its own prior for that label."""

    def __init__(self, name: str, inner: Personalizer) -> None:
        self.name = name
        self.inner = inner

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        decided = self.inner.personalize(task, text, profile)
        labels = profile_labels(task, profile.records)
        return Personalized(messages=decided.messages, retrieved=decided.retrieved,
                            granularity="user" if labels or decided.retrieved else decided.granularity,
                            notes=decided.notes, label_prior=label_distribution(task, labels))


__all__ = [
    "KNN_VOTERS",
    "ItemBiasPersonalizer",
    "KNNPersonalizer",
    "LabelDistribution",
    "MeanRatingPersonalizer",
    "PriorPersonalizer",
    "ProfilePriorPersonalizer",
    "RatingModelPersonalizer",
    "as_label",
    "combine",
    "decide",
    "item_label",
    "label_distribution",
    "normalize",
    "profile_labels",
    "store_labels",
]
