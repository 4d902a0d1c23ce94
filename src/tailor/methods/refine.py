"""``refine``: a style note, written by the model from the user's bm25-retrieved items,
rewrites the task's instruction (prompt refinement; one more model call per input)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tailor.methods.method import BuildContext, WholeMethod

if TYPE_CHECKING:
    from tailor.personalizers.contract import Personalizer

NOTE_ITEMS = 4
"""The fewest items a style note is written from, whatever ``k`` says for pasting items: a
note needs a few examples to generalize from."""


def _refine(context: BuildContext) -> Personalizer:
    from tailor.methods import METHODS
    from tailor.personalizers.refine import RefinePersonalizer
    from tailor.prompting.refine import StyleNoteWriter

    if context.backend is None:
        raise ValueError("method refine needs a backend to write its style notes")
    retriever = METHODS.method(REFINE_RANKING).build_retriever(context)  # type: ignore[attr-defined]
    return RefinePersonalizer(retriever, StyleNoteWriter(context.backend, context.task),
                              k=max(context.items, NOTE_ITEMS), count_tokens=context.count_tokens,
                              budget=context.budget)


REFINE_RANKING = "bm25"
"""How ``refine`` ranks the items its style note is written from."""

REFINE = WholeMethod(
    name="refine", help="a style note written by the model from the user's items rewrites the instruction",
    needs=frozenset({"backend"}), parameters=("k",), factory=_refine, reads_profile=False)

__all__ = ["NOTE_ITEMS", "REFINE", "REFINE_RANKING"]
