"""Core types shared by every layer of tailor.

Every plug point (stores, retrievers, backends, tasks, metrics) speaks in these types.
They are frozen so that a value handed to a plug-in cannot be changed behind the
caller's back, and plain so that they serialize to JSON without ceremony.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

__all__ = [
    "Backend",
    "GenerationRequest",
    "GenerationResult",
    "HistoryRecord",
    "ModelSteps",
    "Persona",
    "Profile",
    "RetrievalHit",
    "TaskExample",
    "TextStream",
    "advance_steps",
    "answer_steps",
    "check_positive_ints",
]

Granularity = Literal["user", "persona", "global"]


@dataclass(frozen=True)
class HistoryRecord:
    """One item of a user's history: a paper they wrote, a review, a tweet, an email.

    ``fields`` holds the task-specific fields exactly as the data set names them
    (LaMP-4: ``title`` and ``text``; LaMP-3: ``text`` and ``score``). ``date`` is the
    item's date as the data set writes it (ISO ``YYYY-MM-DD`` where known), used by
    recency retrieval; ``None`` when the data set has none.
    """

    id: str
    fields: Mapping[str, str]
    date: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"HistoryRecord.id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.fields, Mapping):
            raise TypeError(f"HistoryRecord {self.id!r}: fields must be a mapping, got {type(self.fields).__name__}")
        for key, value in self.fields.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(
                    f"HistoryRecord {self.id!r}: field {key!r} must map a string to a string, "
                    f"got {type(value).__name__}"
                )

    def text(self, names: tuple[str, ...] | None = None) -> str:
        """The record's fields joined by spaces: ``names`` in that order, or all of them."""
        keys = names if names is not None else tuple(self.fields)
        return " ".join(self.fields[k] for k in keys if self.fields.get(k))

    def to_dict(self) -> dict[str, Any]:
        """The record in LaMP's profile-item layout: ``id``, the fields, ``date`` if any."""
        out: dict[str, Any] = {"id": self.id, **self.fields}
        if self.date is not None:
            out["date"] = self.date
        return out


@dataclass(frozen=True)
class Profile:
    """Everything tailor holds about one user: their history records and attributes."""

    user_id: str
    records: tuple[HistoryRecord, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.user_id, str) or not self.user_id:
            raise ValueError(f"Profile.user_id must be a non-empty string, got {self.user_id!r}")

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class TaskExample:
    """One evaluation example: an input for a user, with that user's profile and the gold output.

    A ranking task's example also holds the ``candidates`` to rank (items as records: id
    and fields); its gold is the id of the item the user chose."""

    id: str
    user_id: str
    input: str
    profile: Profile
    gold: str | None = None
    candidates: tuple[HistoryRecord, ...] = ()


@dataclass(frozen=True)
class GenerationRequest:
    """A prompt for a backend.

    ``messages`` are chat turns (``{"role", "content"}``); the backend applies its own chat
    template. ``candidates``, when given, asks the backend to score those outputs by
    likelihood instead of generating free text. ``stop`` lists strings at which
    generated text is cut. ``user_id`` lets a backend pick that user's adapter.
    ``temperature`` above 0 asks for a sampled reply (``seed`` makes it reproducible), where
    the backend samples (``samples = True``: transformers, the OpenAI-compatible servers);
    every backend decodes greedily at 0, the default.
    """

    messages: tuple[Mapping[str, str], ...]
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()
    candidates: tuple[str, ...] | None = None
    user_id: str | None = None
    temperature: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("GenerationRequest.messages must hold at least one message")
        for i, message in enumerate(self.messages):
            if message.get("role") not in ("system", "user", "assistant"):
                raise ValueError(f"message {i}: role must be system, user or assistant, got {message.get('role')!r}")
            if not isinstance(message.get("content"), str):
                raise ValueError(f"message {i}: content must be a string")  # noqa: TRY004 (bad input, as above)
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.candidates is not None and not self.candidates:
            raise ValueError("candidates, when given, must not be empty")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be between 0 and 2, got {self.temperature}")


@dataclass(frozen=True)
class GenerationResult:
    """A backend's answer to one request.

    ``text`` is the generated text after stop rules (or the best candidate when the
    request had candidates); ``scores`` maps each candidate to its log-likelihood.
    """

    text: str
    scores: Mapping[str, float] | None = None
    tokens: int = 0


@runtime_checkable
class Backend(Protocol):
    """Generates text for a batch of requests, or scores their candidate outputs.

    A request with ``candidates`` gets the candidate of highest likelihood as its text
    and every candidate's score in ``scores``; a request without them gets free text,
    cut at its stop strings. The backends (:mod:`tailor.backends`) are the
    implementations; the contract lives here so that the layers below them (prompting,
    adapters) can take a model without importing one.
    """

    name: str

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]: ...

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` takes for this backend's model (for prompt budgets)."""
        ...


TextStream = Generator[str, None, GenerationResult]
"""A reply as it is generated: text pieces, then, as the generator's return value, the
whole :class:`GenerationResult` (its ``text`` the pieces joined, ``tokens`` those generated)."""

Done = TypeVar("Done")

ModelSteps = Generator[list[GenerationRequest], list[GenerationResult], Done]
"""Work that asks the model partway (a style note before the prompt it shapes): it yields
the requests it needs answered, is sent their results in the same order, and returns what
it made. Whoever runs it chooses how the requests reach the model: :func:`answer_steps`
with a backend (``tailor eval``), or a server's queue awaited without holding a thread."""


def answer_steps(steps: ModelSteps[Done], generate: Callable[[list[GenerationRequest]], list[GenerationResult]]) -> Done:
    """Run ``steps`` to their end, answering each batch of requests with ``generate``
    (a backend's ``generate``), and return what they made."""
    try:
        requests = next(steps)
        while True:
            requests = steps.send(generate(requests))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def advance_steps(steps: ModelSteps[Done], answers: list[GenerationResult] | None) -> Done | list[GenerationRequest]:
    """The next requests ``steps`` make of the model, or what they made once they end
    (``answers``: the results of the requests they made last; ``None`` to start them). For
    a caller that answers each batch itself (a server, awaiting its queue between steps)."""
    try:
        return next(steps) if answers is None else steps.send(answers)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class RetrievalHit:
    """A record retrieved from one user's profile, with its score and rank (0 = best)."""

    record: HistoryRecord
    score: float
    rank: int


@dataclass(frozen=True)
class Persona:
    """A group of users who write or behave alike, and the text that describes them.

    Personas are the survey's persona-level granularity: built across users (clustered
    from their profile embeddings, or given), they condition a model for a user whose own
    profile is empty or too small. ``centroid`` is the group's mean embedding (empty when
    the persona was given rather than clustered); ``size`` is how many users it was built
    from; ``metadata`` holds JSON-ready extras (the model and prompt that wrote the
    description, the clustering settings).
    """

    persona_id: str
    description: str
    centroid: tuple[float, ...] = ()
    size: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.persona_id, str) or not self.persona_id:
            raise ValueError(f"Persona.persona_id must be a non-empty string, got {self.persona_id!r}")
        if not isinstance(self.description, str):
            raise TypeError(f"Persona {self.persona_id!r}: description must be a string")
        if isinstance(self.centroid, (str, bytes)):
            raise TypeError(f"Persona {self.persona_id!r}: centroid must be a sequence of numbers")
        try:
            centroid = tuple(float(value) for value in self.centroid)
        except (TypeError, ValueError) as error:
            raise TypeError(f"Persona {self.persona_id!r}: centroid must be a sequence of numbers ({error})") from None
        # Accept a numpy vector or a list; keep plain floats so a persona compares equal after a round trip.
        object.__setattr__(self, "centroid", centroid)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ValueError(f"Persona {self.persona_id!r}: size must be a non-negative integer, got {self.size!r}")
        if not isinstance(self.metadata, Mapping):
            raise TypeError(f"Persona {self.persona_id!r}: metadata must be a mapping")


def check_positive_ints(config: object, names: Iterable[str], *, where: str = "") -> None:
    """Raise :class:`ValueError` unless each attribute of ``config`` named in ``names`` is an
    integer of at least 1 (a bool is refused). ``where`` (a class name) prefixes the field's
    name in the message: ``"LoRATrainConfig.rank must be a positive integer, got 0"``."""
    prefix = f"{where}." if where else ""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{prefix}{name} must be a positive integer, got {value!r}")
