"""tailor: personalize large language models for each of their users, and measure how much that helps.

``import tailor`` stays light: it never imports torch, transformers, fastapi or ray.
"""

from tailor.about import __version__
from tailor.types import GenerationRequest, GenerationResult, HistoryRecord, Profile, RetrievalHit, TaskExample

__all__ = [
    "GenerationRequest",
    "GenerationResult",
    "HistoryRecord",
    "Profile",
    "RetrievalHit",
    "TaskExample",
    "__version__",
]
