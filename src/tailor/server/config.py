"""The server's configuration: what ``tailor serve`` fills from its flags."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

ServeMethod = Literal["none", "bm25", "recency"]
SERVE_METHODS: tuple[ServeMethod, ...] = ("none", "bm25", "recency")


@dataclass(frozen=True)
class Limits:
    """What one request may carry. Anything over a limit is refused with a 4xx naming it."""

    max_body_bytes: int = 1_000_000
    max_messages: int = 256
    max_message_chars: int = 100_000
    max_tokens: int = 4096
    max_stop: int = 4
    max_records_per_batch: int = 1000
    max_record_chars: int = 32_768
    max_fields_per_record: int = 32
    max_attributes: int = 256
    max_attribute_chars: int = 4096

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class ServeConfig:
    """How to serve: the store, where to listen, the model, and how to personalize.

    ``method`` picks the records retrieval (``bm25``: the user's records that share words
    with their last message; ``recency``: their latest; ``none``: no records). Memories are
    searched as well when ``memory`` is on (``k_memories`` of them, hybrid BM25 + dense with
    ``embedder``; ``None`` for BM25 alone). ``memory_backend`` is the model that extracts
    facts (the serving backend when ``None``). ``model`` is the id reported by
    ``/v1/models`` (the backend's name when ``None``).
    """

    store: str
    host: str = "127.0.0.1"
    port: int = 8000
    backend: str = "default"
    method: ServeMethod = "bm25"
    k: int = 3
    memory: bool = True
    k_memories: int = 3
    embedder: str | None = "hashing"
    memory_backend: str | None = None
    min_confidence: float = 0.5
    model: str | None = None
    context_tokens: int = 384
    default_max_tokens: int = 256
    auto_create_users: bool = False
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if not isinstance(self.store, str) or not self.store:
            raise ValueError("ServeConfig.store must name the profile store (a SQLite file path)")
        if self.method not in SERVE_METHODS:
            raise ValueError(f"unknown serving method {self.method!r}; valid methods: {', '.join(SERVE_METHODS)}")
        for name in ("k", "k_memories"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"ServeConfig.{name} must be a non-negative integer, got {value!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"ServeConfig.port must be 0-65535, got {self.port}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"ServeConfig.min_confidence must be between 0 and 1, got {self.min_confidence}")
        if self.context_tokens < 8 or self.default_max_tokens < 1:
            raise ValueError("ServeConfig.context_tokens must be at least 8 and default_max_tokens at least 1")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["SERVE_METHODS", "Limits", "ServeConfig", "ServeMethod", "is_loopback"]
