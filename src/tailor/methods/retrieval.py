"""The ``none`` method: no records, the task input alone (the baseline every other method
is compared with). Every other retrieval method is a retriever of
:data:`tailor.retrieval.RETRIEVERS`, made a method by :data:`tailor.methods.METHODS`."""

from __future__ import annotations

from tailor.methods.method import RetrievalMethod

NONE = RetrievalMethod(name="none", help="no personalization: the task input alone (the baseline)",
                       parameters=())

__all__ = ["NONE"]
