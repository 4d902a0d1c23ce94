"""Classic recommenders (popularity, item-kNN, ALS, BPR through ``implicit``; SVD for
ratings through ``scikit-surprise``): models fitted on every user's interactions that
score a user's candidate items. They know no prompts and no tasks; the ranking
personalizers (:mod:`tailor.personalizers.ranking`) and methods
(:mod:`tailor.methods.recommenders`) put them to use. Extra ``recommend``."""

from tailor.recommenders.models import ALS, BPR, Interactions, ItemKNN, Popularity, Recommender

__all__ = ["ALS", "BPR", "Interactions", "ItemKNN", "Popularity", "Recommender"]
