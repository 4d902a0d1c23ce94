"""The server's configuration: what ``tailor serve`` fills from its flags."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from tailor.logs import LOG_FORMATS, LogFormat
from tailor.methods import MethodSpec, parse_rank_method, parse_serve_method
from tailor.types import check_positive_ints


@dataclass(frozen=True)
class Limits:
    """What one request may carry. Anything over a limit is refused with a 4xx naming it."""

    max_body_bytes: int = 1_000_000
    max_messages: int = 256
    max_message_chars: int = 100_000
    max_tokens: int = 4096
    max_stop: int = 4
    max_records_per_batch: int = 1000
    max_record_chars: int = 32 * 1024
    max_fields_per_record: int = 32
    max_attributes: int = 256
    max_attribute_chars: int = 4096

    def __post_init__(self) -> None:
        check_positive_ints(self, vars(self), where="Limits")


@dataclass(frozen=True)
class ServeConfig:
    """How to serve: the store, where to listen, the model, and how to personalize.

    ``method`` is a method of the one grammar (``bm25``, ``summary+hybrid``,
    ``persona+recency+dense``...), parsed once (a string is parsed here; a method whose
    objects cannot be served is refused with their reason,
    :attr:`~tailor.methods.MethodSpec.serve_refusal`), and
    ``k`` how many records it retrieves: the task's ``k`` when ``None``, as in ``tailor
    eval`` (the chat task's is 3). ``input_tokens`` is the token budget the personalizer
    cuts the user's latest message to, ``context_tokens`` the one of the retrieved records
    together (:class:`~tailor.prompting.builder.PromptBudget`). Memories are searched as
    well when ``memory`` is on (``k_memories`` of them, hybrid BM25 + dense with
    ``embedder``; ``None`` for BM25 alone), and so are the user's earlier messages and the replies to them (episodic
    memory: ``k_episodes`` of them, within ``episode_tokens``, found by ``memory_method``,
    the :class:`~tailor.memory.episodes.EpisodeMethod` that ``tailor eval-memory``
    measures). ``embedder`` also embeds records for the ``dense`` and ``hybrid`` methods and
    for choosing a persona for users who have none. ``adapter_task`` names the task whose
    LoRA adapters (``tailor train-adapter``) the model runs with per user: ``"auto"`` takes
    the one task the store holds adapters for, if exactly one; ``None`` uses none.
    ``max_batch`` is how many replies waiting at the same time go to the model as one
    batch (streamed replies go alone). ``max_queue`` is how many replies may wait for the
    model at once: one more is answered 429 with ``Retry-After`` at once; a reply still
    waiting after ``queue_timeout`` seconds is answered 503. ``worker_threads`` is the size
    of the thread pool that runs request work (store reads and writes; never a wait for
    the model). A client gets ``header_timeout`` seconds to send a request's head and
    ``body_timeout`` seconds to send its body, else a 408 and the connection is closed.
    ``log_format`` is how ``tailor serve`` writes its logs, one line per
    request among them (``text``: ``key=value``; ``json``: one object per line; see
    :mod:`tailor.server.request_log`). ``memory_backend`` is the model that extracts
    facts (the serving backend when ``None``). ``model`` is the id reported by
    ``/v1/models`` (the backend's name when ``None``).
    """

    store: str
    host: str = "127.0.0.1"
    port: int = 8000
    backend: str = "default"
    method: MethodSpec | str = "bm25"
    k: int | None = None
    memory: bool = True
    k_memories: int = 3
    k_episodes: int = 4
    episode_tokens: int = 256
    memory_method: str = "memory"
    embedder: str | None = "hashing"
    memory_backend: str | None = None
    min_confidence: float = 0.5
    model: str | None = None
    context_tokens: int = 384
    input_tokens: int = 4096
    default_max_tokens: int = 256
    auto_create_users: bool = False
    adapter_task: str | None = "auto"
    max_batch: int = 8
    max_queue: int = 64
    queue_timeout: float = 120.0
    worker_threads: int = 40
    body_timeout: float = 30.0
    header_timeout: float = 10.0
    log_format: LogFormat = "text"
    limits: Limits = field(default_factory=Limits)
    rank_method: MethodSpec | str | None = None
    """The method ``POST /v1/users/{id}/rank`` orders candidates by (a recommender such as
    ``als``, a model method such as ``bm25``, a reranker such as ``als+bm25``); ``None``:
    the server has no rank route."""
    rank_task: str = "movielens-next"
    """The ranking task whose prompts and defaults the rank route uses."""

    @property
    def serve_method(self) -> MethodSpec:
        """:attr:`method`, parsed."""
        assert isinstance(self.method, MethodSpec)  # parsed in __post_init__
        return self.method

    def __post_init__(self) -> None:
        if not isinstance(self.store, str) or not self.store:
            raise ValueError("ServeConfig.store must name the profile store (a SQLite file path)")
        object.__setattr__(self, "method", parse_serve_method(self.method))
        if self.rank_method is not None:
            from tailor.tasks import get_task

            object.__setattr__(self, "rank_method", parse_rank_method(self.rank_method))
            if get_task(self.rank_task).kind != "ranking":
                raise ValueError(f"ServeConfig.rank_task must be a ranking task, got {self.rank_task!r}")
        if "embedder" in self.serve_method.retrieval.all_needs() and not self.embedder:
            raise ValueError(f"serving method {str(self.method)!r} searches record vectors and needs an embedder "
                             "(hashing or minilm)")
        check_positive_ints(self, ("max_batch", "max_queue", "worker_threads"), where="ServeConfig")
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"ServeConfig.log_format must be one of {', '.join(LOG_FORMATS)}, "
                             f"got {self.log_format!r}")
        for name in ("body_timeout", "header_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ServeConfig.{name} must be a positive number of seconds, got {getattr(self, name)!r}")
        if not self.queue_timeout > 0:
            raise ValueError(f"ServeConfig.queue_timeout must be a positive number of seconds, "
                             f"got {self.queue_timeout!r}")
        from tailor.memory.episodes import EpisodeMethod

        if EpisodeMethod.parse(self.memory_method).needs_embedder and not self.embedder:
            raise ValueError(f"memory method {self.memory_method!r} ranks by meaning and needs an embedder")
        for name in ("k", "k_memories", "k_episodes", "episode_tokens"):
            value = getattr(self, name)
            if name == "k" and value is None:
                continue
            least = 1 if name == "k" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"ServeConfig.{name} must be an integer of at least {least}, got {value!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"ServeConfig.port must be 0-65535, got {self.port}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"ServeConfig.min_confidence must be between 0 and 1, got {self.min_confidence}")
        if self.context_tokens < 8 or self.input_tokens < 8 or self.default_max_tokens < 1:
            raise ValueError("ServeConfig.context_tokens and input_tokens must be at least 8 and default_max_tokens "
                             "at least 1")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["Limits", "ServeConfig", "is_loopback"]
