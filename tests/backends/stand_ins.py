"""A stand-in engine for routing tests: it answers with its own label and each row's adapter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tailor.types import GenerationRequest, GenerationResult


class StandInEngine:
    """Answers ``LABEL:ADAPTER:MESSAGE`` for each request (``-`` for no adapter), and counts
    the requests of each call in :attr:`calls`."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.calls: list[int] = []

    def generate(self, requests: Sequence[GenerationRequest], **options: Any) -> list[GenerationResult]:
        self.calls.append(len(requests))
        lora = options.get("lora")
        return [GenerationResult(text=f"{self.label}:{getattr(lora[i], 'name', '-') if lora else '-'}:"
                                      f"{r.messages[-1]['content']}") for i, r in enumerate(requests)]

    def stream(self, request: GenerationRequest, **options: Any) -> Any:
        yield f"{self.label}:{getattr(options.get('lora'), 'name', '-')}"
