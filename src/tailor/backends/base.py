"""The backend contract: a model that answers batches of generation requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from tailor.types import GenerationRequest, GenerationResult


@runtime_checkable
class Backend(Protocol):
    """Generates text for a batch of requests, or scores their candidate outputs.

    A request with ``candidates`` gets the candidate of highest likelihood as its text
    and every candidate's score in ``scores``; a request without them gets free text,
    cut at its stop strings.
    """

    name: str

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]: ...

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` takes for this backend's model (for prompt budgets)."""
        ...


class BackendError(RuntimeError):
    """A backend could not answer (a server error after retries, a model that failed to run)."""


def apply_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` cut before the first occurrence of any stop string."""
    cut = len(text)
    for marker in stop:
        if marker:
            position = text.find(marker)
            if position != -1:
                cut = min(cut, position)
    return text[:cut]


def approximate_token_count(text: str) -> int:
    """A tokenizer-free estimate (about 1.3 tokens per word) for backends without a tokenizer."""
    words = len(text.split())
    return (words * 4 + 2) // 3
