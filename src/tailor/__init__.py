"""tailor: personalize large language models for each of their users, and measure how much that helps.

``import tailor`` stays light: it never imports torch, transformers, fastapi or ray.
"""

from tailor.types import GenerationRequest, GenerationResult, HistoryRecord, Profile, RetrievalHit, TaskExample

__version__ = "0.1.0"

__all__ = [
    "GenerationRequest",
    "GenerationResult",
    "HistoryRecord",
    "Profile",
    "RetrievalHit",
    "TaskExample",
    "__version__",
]
