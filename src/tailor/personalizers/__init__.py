"""Personalizers: for one user's input, decide what the model sees (or answer without it).

What each method builds (:mod:`tailor.methods` composes them): the prompt of a retrieval
with notes about the user (:class:`~tailor.personalizers.prompt.PromptPersonalizer`, with
:mod:`tailor.personalizers.notes`), prompt refinement (:mod:`tailor.personalizers.refine`),
per-user adapters and soft prompts (:mod:`tailor.personalizers.adapters`), and the label
and rating methods (:mod:`tailor.personalizers.labels`, calibrated by
:mod:`tailor.personalizers.calibration`).
"""

from tailor.personalizers.contract import Personalized, Personalizer, personalize_steps
from tailor.personalizers.prompt import NoPersonalization, PromptPersonalizer, RetrievalPersonalizer

__all__ = [
    "NoPersonalization",
    "Personalized",
    "Personalizer",
    "PromptPersonalizer",
    "RetrievalPersonalizer",
    "personalize_steps",
]
