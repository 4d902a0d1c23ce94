"""Reading a backend's stream in tests: every piece, and the result it returns."""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

Ending = TypeVar("Ending")


def drain(stream: Generator[str, None, Ending]) -> tuple[list[str], Ending]:
    """Every piece of ``stream``, and the result it returns."""
    pieces = []
    while True:
        try:
            pieces.append(next(stream))
        except StopIteration as end:
            return pieces, end.value
