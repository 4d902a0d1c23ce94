"""The classic recommenders of ranking tasks (``popular``, ``item-knn``, ``als``, ``bpr``;
:mod:`tailor.recommenders`), as methods: alone, one ranks the candidates; first in a method
(``als+bm25``, ``als+summary+bm25``), its top 20 are reranked by the model on the rest's
prompt (:class:`~tailor.personalizers.ranking.Reranker`). Each is fitted on every history in
the store: eval's store holds every user of the split, a server's its users.

Their hyper-parameters are the ones chosen on MovieLens 100k's validation split, each the
best sampled NDCG@10 of its grid (``python benchmarks/recommenders.py ranking --data DIR``,
docs/results-recommendation.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tailor.methods.method import Need, RecommenderMethod

if TYPE_CHECKING:
    from tailor.recommenders.models import Recommender


def _popular() -> Recommender:
    from tailor.recommenders.models import Popularity

    return Popularity()


def _item_knn() -> Recommender:
    from tailor.recommenders.models import ItemKNN

    return ItemKNN(neighbours=100, similarity="bm25")


def _als() -> Recommender:
    from tailor.recommenders.models import ALS

    return ALS(factors=32, regularization=0.1, alpha=5.0, iterations=15)


def _bpr() -> Recommender:
    from tailor.recommenders.models import BPR

    return BPR(factors=16, learning_rate=0.01, regularization=0.01, iterations=100)


_STORE: frozenset[Need] = frozenset({"store"})

POPULAR = RecommenderMethod(name="popular", help="the items most users chose (popularity), the same for everyone",
                            needs=_STORE, model=_popular)
ITEM_KNN = RecommenderMethod(name="item-knn", help="items like the user's, by co-occurrence (item-kNN, BM25-weighted; "
                             "implicit)", needs=_STORE, model=_item_knn)
ALS = RecommenderMethod(name="als", help="implicit-feedback matrix factorization by alternating least squares "
                        "(implicit)", needs=_STORE, model=_als)
BPR = RecommenderMethod(name="bpr", help="matrix factorization trained to rank (Bayesian personalized ranking; "
                        "implicit)", needs=_STORE, model=_bpr)

__all__ = ["ALS", "BPR", "ITEM_KNN", "POPULAR"]
