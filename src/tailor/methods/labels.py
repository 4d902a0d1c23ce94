"""Methods for the tasks with a label set or ratings (LaMP-1/2/3, movielens-ratings): the
user's label prior times the model's calibrated scores (``+prior``), and methods that need
no model (``profile-prior``, ``knn``, ``user-mean``, ``global-mean``, ``item-bias``, and
through scikit-surprise ``item-mean`` and ``svd``). See
:mod:`tailor.personalizers.labels` for what each computes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tailor.methods.method import BuildContext, ModifierMethod, Need, WholeMethod

if TYPE_CHECKING:
    from tailor.methods.spec import MethodSpec
    from tailor.personalizers.contract import Personalizer
    from tailor.store.contract import ProfileStore

CHAT_HAS_NO_LABELS = "scores a task's labels; a chat has none"


def _prior_rule(spec: MethodSpec) -> str | None:
    if spec.notes or len(spec.modifiers) > 1:
        return "+prior combines with a retrieval only"
    if not spec.names_retrieval:
        return "+prior needs a retrieval to build the prompt from (none+prior, bm25+prior)"
    return None


def _wrap_prior(inner: Personalizer, spec: MethodSpec, context: BuildContext) -> Personalizer:
    from tailor.personalizers.labels import PriorPersonalizer

    return PriorPersonalizer(str(spec), inner)


def _store(name: str, context: BuildContext) -> ProfileStore:
    if context.store is None:
        raise ValueError(f"method {name} needs a profile store to read the ratings from")
    return context.store


def _profile_prior() -> Personalizer:
    from tailor.personalizers.labels import ProfilePriorPersonalizer

    return ProfilePriorPersonalizer()


def _knn(context: BuildContext) -> Personalizer:
    from tailor.methods import METHODS
    from tailor.personalizers.labels import KNN_VOTERS, KNNPersonalizer

    retriever = METHODS.method("bm25").build_retriever(context)  # type: ignore[attr-defined]
    return KNNPersonalizer(retriever, k=max(context.items, KNN_VOTERS))


def _user_mean(context: BuildContext) -> Personalizer:
    from tailor.personalizers.labels import MeanRatingPersonalizer

    return MeanRatingPersonalizer("user", _store("user-mean", context))


def _global_mean(context: BuildContext) -> Personalizer:
    from tailor.personalizers.labels import MeanRatingPersonalizer

    return MeanRatingPersonalizer("global", _store("global-mean", context))


def _item_bias(context: BuildContext) -> Personalizer:
    from tailor.personalizers.labels import ItemBiasPersonalizer

    return ItemBiasPersonalizer(_store("item-bias", context))


# The hyper-parameters below are the lowest MAE on movielens-ratings' train questions (the
# validation split; `python benchmarks/recommenders.py ratings`, docs/results-recommendation.md).
def _item_mean(context: BuildContext) -> Personalizer:
    from tailor.personalizers.labels import RatingModelPersonalizer
    from tailor.recommenders.ratings import ItemMean

    return RatingModelPersonalizer("item-mean", ItemMean(shrinkage=1.0), _store("item-mean", context))


def _svd(context: BuildContext) -> Personalizer:
    from tailor.personalizers.labels import RatingModelPersonalizer
    from tailor.recommenders.ratings import SVD as SurpriseSVD

    model = SurpriseSVD(factors=10, epochs=20, learning_rate=0.05, regularization=0.1)
    return RatingModelPersonalizer("svd", model, _store("svd", context))


_LABELS: frozenset[Need] = frozenset({"labels"})
_RATINGS: frozenset[Need] = frozenset({"labels", "ratings", "store"})

PRIOR = ModifierMethod(
    name="prior", help="the model's calibrated label scores on the rest's prompt, times the user's label prior",
    needs=_LABELS, serve_refusal=CHAT_HAS_NO_LABELS, position=90, wrapper=_wrap_prior, rule=_prior_rule)
PROFILE_PRIOR = WholeMethod(
    name="profile-prior", help="the label the user's own label distribution gives, without a model",
    needs=_LABELS, parameters=(), serve_refusal=CHAT_HAS_NO_LABELS, factory=_profile_prior)
KNN = WholeMethod(
    name="knn", help="the vote of the labels of the user's bm25-retrieved items (at least 4), without a model",
    needs=_LABELS, parameters=("k",), serve_refusal=CHAT_HAS_NO_LABELS, factory=_knn)
USER_MEAN = WholeMethod(
    name="user-mean", help="the user's mean rating (ratings), without a model",
    needs=_RATINGS, parameters=(), serve_refusal=CHAT_HAS_NO_LABELS, factory=_user_mean, reads_profile=True)
GLOBAL_MEAN = WholeMethod(
    name="global-mean", help="the mean rating over every profile in the store (ratings), without a model",
    needs=_RATINGS, parameters=(), serve_refusal=CHAT_HAS_NO_LABELS, factory=_global_mean)
ITEM_BIAS = WholeMethod(
    name="item-bias", help="the user's mean plus how other users rated the same item before (ratings)",
    needs=_RATINGS, parameters=(), serve_refusal=CHAT_HAS_NO_LABELS, factory=_item_bias)
ITEM_MEAN = WholeMethod(
    name="item-mean", help="the item's mean rating over every stored profile, shrunk to the global mean "
    "(ratings; scikit-surprise)", needs=_RATINGS, parameters=(), serve_refusal=CHAT_HAS_NO_LABELS, factory=_item_mean)
SVD = WholeMethod(
    name="svd", help="biased matrix factorization of every stored rating (ratings; scikit-surprise's SVD)",
    needs=_RATINGS, parameters=(), serve_refusal=CHAT_HAS_NO_LABELS, factory=_svd)

__all__ = ["CHAT_HAS_NO_LABELS", "GLOBAL_MEAN", "ITEM_BIAS", "ITEM_MEAN", "KNN", "PRIOR", "PROFILE_PRIOR", "SVD",
           "USER_MEAN"]
