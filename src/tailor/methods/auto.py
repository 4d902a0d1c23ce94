"""``auto``: a learned choice per input among ``none`` and the retrieval methods (RSPG-style;
:mod:`tailor.personalizers.selector`).

The selector is a file made by ``tailor train-selector`` on a data set's train split. The
method carries its path (:func:`with_selector`: ``tailor eval --selector``, ``tailor serve
--selector``); ``tailor eval`` trains one on the data's train split on first use when none
is given (:func:`tailor.evaluation.selection.attach_selectors`). Each option is built as the
method of that name in the same context, so what ``auto`` shows for an input is what that
method shows, in eval and in serve alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tailor.methods.method import BuildContext, RetrievalMethod, WholeMethod

if TYPE_CHECKING:
    from tailor.methods.spec import MethodSpec
    from tailor.personalizers.contract import Personalizer
    from tailor.personalizers.selector import FeatureRankers
    from tailor.retrieval.retriever import Retriever

DENSE_OPTIONS = frozenset({"dense", "hybrid", "recency+dense"})
"""Options that rank by embeddings: the dense features are computed when one is among them."""


@dataclass(frozen=True)
class SelectorFactory:
    """Builds ``auto``'s personalizer from the selector at ``selector``."""

    selector: str | None = None

    def __call__(self, context: BuildContext) -> Personalizer:
        from tailor.methods import parse_method
        from tailor.personalizers.selector import AutoPersonalizer, Selector

        if self.selector is None:
            raise ValueError("method auto needs a selector: make one with tailor train-selector and pass it with "
                             "--selector PATH (tailor eval trains one on the data's train split when none is given)")
        selector = Selector.load(self.selector)
        options = {option: parse_method(option).build(context) for option in selector.options}
        return AutoPersonalizer(selector, options, feature_rankers(context, selector.options))


def feature_rankers(context: BuildContext, options: Sequence[str]) -> FeatureRankers:
    """The rankings the selector's features read in ``context`` (dense only when an option
    ranks by embeddings), each over the profile handed to it: serve hands ``auto`` the
    whole stored profile, so eval and serve compute the same features."""
    from tailor.methods import METHODS
    from tailor.personalizers.selector import FeatureRankers

    plain = replace(context, indexes=None)

    def ranker(name: str) -> Retriever:
        method = METHODS.method(name)
        assert isinstance(method, RetrievalMethod)  # registered as one
        retriever = method.build_retriever(plain)
        assert retriever is not None  # a retriever's method
        return retriever

    dense = any(option in DENSE_OPTIONS for option in options)
    return FeatureRankers(bm25=ranker("bm25"), recency=ranker("recency"), dense=ranker("dense") if dense else None)


AUTO = WholeMethod(
    name="auto", help="a learned choice per input: none or a retrieval method (bm25, recency, dense, hybrid), "
    "by a selector trained on the train split (tailor train-selector; --selector)",
    needs=frozenset({"embedder"}), parameters=("k",), factory=SelectorFactory())


def is_auto(part: object) -> bool:
    """Whether ``part`` is ``auto`` (with or without a selector)."""
    return isinstance(part, WholeMethod) and isinstance(part.factory, SelectorFactory)


def selector_of(spec: MethodSpec) -> str | None:
    """The selector path ``spec``'s ``auto`` carries (``None``: none yet, or no ``auto``)."""
    for part in spec.parts:
        if isinstance(part, WholeMethod) and isinstance(part.factory, SelectorFactory):
            return part.factory.selector
    return None


def with_selector(spec: MethodSpec, selector: str | None) -> MethodSpec:
    """``spec`` with its ``auto`` built from the selector at ``selector`` (unchanged when it has no ``auto``)."""
    factory = SelectorFactory(str(selector) if selector is not None else None)
    parts = tuple(replace(part, factory=factory) if isinstance(part, WholeMethod) and is_auto(part) else part
                  for part in spec.parts)
    return replace(spec, parts=parts)


__all__ = ["AUTO", "SelectorFactory", "feature_rankers", "is_auto", "selector_of", "with_selector"]
