"""Rating predictors through ``scikit-surprise`` (extra ``recommend``): the item's mean
rating and SVD (biased matrix factorization, Funk's, as in the Netflix prize), fitted on
every rating of every user, predicting the rating a user gives an item.

They know no prompts and no tasks: the rating personalizers
(:class:`tailor.personalizers.labels.RatingModelPersonalizer`) hand them ``(user, item,
rating)`` triples, an item being whatever key the task names it by. A user or an item
the fit never saw gets what surprise predicts for it (the parts it knows: the item's bias
without the user's, the global mean for neither), clipped to the scale.

Default hyper-parameters are the ones chosen on the validation split (the ``train``
questions of ``movielens-ratings``) by ``python benchmarks/recommenders.py ratings``; the
dev split never chooses anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from tailor.registry import require

Rating = tuple[str, str, float]
"""``(user, item, rating)``."""


class RatingModel(Protocol):
    """A rating predictor: fitted once on everyone's ratings, then asked for one user's
    rating of one item."""

    name: str

    def fit(self, ratings: Iterable[Rating], scale: tuple[float, float]) -> None: ...

    def predict(self, user: str, item: str) -> tuple[float, bool]:
        """The predicted rating, clipped to the scale, and whether the fit knew the user."""
        ...


class _Surprise:
    """What the surprise models share: the trainset built from triples, and prediction."""

    name: str
    algorithm: Any

    def fit(self, ratings: Iterable[Rating], scale: tuple[float, float]) -> None:
        surprise = require("surprise", "recommend")
        pandas = require("pandas", "recommend")
        frame = pandas.DataFrame(list(ratings), columns=["user", "item", "rating"])
        if frame.empty:
            raise ValueError(f"{self.name} needs at least one rating to fit on")
        trainset = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=scale)).build_full_trainset()
        self.algorithm = self._algorithm(surprise)
        self.algorithm.fit(trainset)

    def _algorithm(self, surprise: Any) -> Any:
        raise NotImplementedError

    def predict(self, user: str, item: str) -> tuple[float, bool]:
        prediction = self.algorithm.predict(user, item, clip=True)
        try:
            self.algorithm.trainset.to_inner_uid(user)
        except ValueError:
            return float(prediction.est), False
        return float(prediction.est), True


@dataclass
class ItemMean(_Surprise):
    """The item's mean rating, shrunk toward the mean of all ratings by ``shrinkage``
    pseudo-ratings (``(sum + shrinkage * mu) / (count + shrinkage)``): surprise's
    ``BaselineOnly`` fitted by one ALS pass with the user's bias held at 0 (an unbounded
    regularization), so only the item's bias is learnt. An item nobody rated gets ``mu``."""

    shrinkage: float = 1.0
    name: str = "item-mean"

    def _algorithm(self, surprise: Any) -> Any:
        return surprise.BaselineOnly(bsl_options={"method": "als", "n_epochs": 1, "reg_i": self.shrinkage,
                                                  "reg_u": 1e15}, verbose=False)


@dataclass
class SVD(_Surprise):
    """Biased matrix factorization trained by SGD (surprise's ``SVD``): the global mean,
    the user's and the item's biases and the dot product of their factors."""

    factors: int = 10
    epochs: int = 20
    learning_rate: float = 0.05
    regularization: float = 0.1
    seed: int = 0
    name: str = "svd"

    def _algorithm(self, surprise: Any) -> Any:
        return surprise.SVD(n_factors=self.factors, n_epochs=self.epochs, lr_all=self.learning_rate,
                            reg_all=self.regularization, random_state=self.seed)


__all__ = ["SVD", "ItemMean", "Rating", "RatingModel"]
