"""Classic recommenders through a maintained library (``implicit``; extra ``recommend``):
popularity, item-kNN, ALS and BPR, each fitted on every user's history and scoring any
candidate items for one user from that user's history.

``implicit`` was chosen by measurement on the validation split (docs/results-recommendation.md):
its item-kNN, ALS and BPR match or beat the same models in ``cornac`` at a fraction of the
fit time, it needs only numpy and scipy, and it scores a user from their history (ALS
recomputes the user's factors from it), which a served user whose history has grown needs.
Popularity is the count of users who chose an item: no model to fit.

Default hyper-parameters are the ones chosen on MovieLens 100k's validation split (the
``dev`` questions) by ``python benchmarks/recommenders.py ranking --data DIR``; the test
split never chooses anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tailor.registry import require

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Interactions:
    """Who chose what: users by id, items by id, and the binary user x item matrix (CSR)."""

    users: list[str]
    items: list[str]
    matrix: Any
    user_index: dict[str, int] = field(init=False)
    item_index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.user_index = {user: row for row, user in enumerate(self.users)}
        self.item_index = {item: column for column, item in enumerate(self.items)}

    @classmethod
    def from_histories(cls, histories: Mapping[str, Sequence[str]]) -> Interactions:
        """Users' histories (user id -> item ids), in the mapping's order; items sorted."""
        np = require("numpy", "recommend")
        sparse = require("scipy.sparse", "recommend")
        items = sorted({item for chosen in histories.values() for item in chosen},
                       key=lambda item: (0, int(item), item) if item.isdigit() else (1, 0, item))
        index = {item: column for column, item in enumerate(items)}
        rows, columns = [], []
        for row, chosen in enumerate(histories.values()):
            for column in sorted({index[item] for item in chosen}):
                rows.append(row)
                columns.append(column)
        matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, columns)),
                                   shape=(len(histories), len(items)))
        return cls(list(histories), items, matrix)

    def row(self, history: Sequence[str]) -> Any:
        """A history as a 1 x items CSR row (items the fit never saw are left out)."""
        np = require("numpy", "recommend")
        sparse = require("scipy.sparse", "recommend")
        columns = sorted({self.item_index[item] for item in history if item in self.item_index})
        return sparse.csr_matrix((np.ones(len(columns), dtype=np.float32), ([0] * len(columns), columns)),
                                 shape=(1, len(self.items)))


class Recommender(Protocol):
    """A classic recommender: fitted once on everyone's interactions, then scores the
    items a user may choose next from the user's own history."""

    name: str

    def fit(self, interactions: Interactions) -> None: ...

    def scores(self, user_id: str, history: Sequence[str], items: Sequence[int]) -> np.ndarray:
        """Scores of ``items`` (column indices of the fitted interactions) for the user."""
        ...


def _implicit(module: str) -> Any:
    return require(f"implicit.{module}", "recommend")


class Popularity:
    """How many users chose each item (the same for every user)."""

    name = "popular"

    def fit(self, interactions: Interactions) -> None:
        np = require("numpy", "recommend")
        self.counts = np.asarray(interactions.matrix.sum(axis=0), dtype=np.float64).ravel()

    def scores(self, user_id: str, history: Sequence[str], items: Sequence[int]) -> np.ndarray:
        return self.counts[list(items)]  # type: ignore[no-any-return]


class _Implicit:
    """What the ``implicit`` models share: the library's own ``recommend`` over the given
    items, the user known by the fit or else described by their history."""

    name: str
    model: Any
    interactions: Interactions
    recalculates = False

    def fit(self, interactions: Interactions) -> None:
        import warnings

        threadpoolctl = require("threadpoolctl", "recommend")
        self.interactions = interactions
        # implicit asks for BLAS on one thread (its own loops are the parallel part), and
        # warns that its BM25 weighting hands itself a COO matrix.
        with threadpoolctl.threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            self.model = self._model()
            self.model.fit(interactions.matrix, show_progress=False)

    def _model(self) -> Any:
        raise NotImplementedError

    def scores(self, user_id: str, history: Sequence[str], items: Sequence[int]) -> np.ndarray:
        np = require("numpy", "recommend")
        items = list(items)
        if not items:
            return np.zeros(0)
        row = self.interactions.row(history)
        known = self.interactions.user_index.get(user_id)
        fitted = known is not None and (self.interactions.matrix[known] != row).nnz == 0
        if not fitted and not self.recalculates:
            return self._unfitted(row, items)
        userid = known if fitted else 0
        ids, values = self.model.recommend(userid, row, N=len(items), filter_already_liked_items=False,
                                           items=np.asarray(items), recalculate_user=not fitted)
        out = np.empty(len(items))
        position = {item: place for place, item in enumerate(items)}
        for item, value in zip(ids.tolist(), values.tolist()):
            out[position[item]] = value
        return out

    def _unfitted(self, row: Any, items: list[int]) -> np.ndarray:
        raise ValueError(f"{self.name} cannot score a user the fit did not see with this history")


@dataclass
class ItemKNN(_Implicit):
    """Item-based k nearest neighbours: an item scores by its similarity to the items of
    the user's history (``implicit``'s ``BM25Recommender`` or ``CosineRecommender``)."""

    neighbours: int = 100
    similarity: Literal["bm25", "cosine"] = "bm25"
    name: str = "item-knn"
    recalculates = True

    def _model(self) -> Any:
        neighbours = _implicit("nearest_neighbours")
        if self.similarity == "bm25":
            return neighbours.BM25Recommender(K=self.neighbours, num_threads=1)
        return neighbours.CosineRecommender(K=self.neighbours, num_threads=1)


@dataclass
class ALS(_Implicit):
    """Matrix factorization by alternating least squares on implicit feedback (Hu, Koren
    and Volinsky 2008); a user unseen by the fit gets factors solved from their history."""

    factors: int = 32
    regularization: float = 0.1
    alpha: float = 5.0
    iterations: int = 15
    seed: int = 0
    name: str = "als"
    recalculates = True

    def _model(self) -> Any:
        return _implicit("cpu.als").AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=self.alpha, iterations=self.iterations,
            random_state=self.seed, num_threads=1, calculate_training_loss=False)


@dataclass
class BPR(_Implicit):
    """Bayesian personalized ranking (Rendle et al. 2009): factors trained so that a user's
    items outrank sampled others; a user unseen by the fit gets the mean of their history's
    item factors (BPR has no closed form for a new user)."""

    factors: int = 16
    learning_rate: float = 0.01
    regularization: float = 0.01
    iterations: int = 100
    seed: int = 0
    name: str = "bpr"

    def _model(self) -> Any:
        return _implicit("cpu.bpr").BayesianPersonalizedRanking(
            factors=self.factors, learning_rate=self.learning_rate, regularization=self.regularization,
            iterations=self.iterations, random_state=self.seed, num_threads=1)

    def _unfitted(self, row: Any, items: list[int]) -> np.ndarray:
        np = require("numpy", "recommend")
        factors = self.model.item_factors
        user = factors[row.indices].mean(axis=0) if row.nnz else np.zeros(factors.shape[1], dtype=factors.dtype)
        return factors[items] @ user  # type: ignore[no-any-return]


__all__ = ["ALS", "BPR", "Interactions", "ItemKNN", "Popularity", "Recommender"]
