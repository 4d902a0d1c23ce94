"""The personalizer contract: for one user's input, decide what the model sees.

A personalizer reads the user's profile (handed to it, already scoped to that user),
retrieves, and builds the chat messages. The same personalizer serves an offline
evaluation and a live request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tailor.tasks.spec import TaskSpec
from tailor.types import Granularity, ModelSteps, Profile

if TYPE_CHECKING:
    from tailor.store.contract import ProfileStore


@dataclass(frozen=True)
class Personalized:
    """What a personalizer decided for one input: the messages, the record ids it used,
    and the granularity it worked at (``global`` = no personalization).

    A method that needs no model (``profile-prior``, ``knn``) gives its ``answer`` itself
    and no messages. ``label_prior`` (log-probabilities over the task's labels) asks for
    the model's calibrated label scores to be multiplied by it (``bm25+prior``).
    """

    messages: tuple[dict[str, str], ...]
    retrieved: tuple[str, ...] = ()
    granularity: Granularity = "global"
    notes: dict[str, str] = field(default_factory=dict)
    answer: str | None = None
    label_prior: Mapping[str, float] | None = None


@runtime_checkable
class Personalizer(Protocol):
    name: str

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized: ...


def personalize_steps(personalizer: Personalizer, task: TaskSpec, text: str,
                      profile: Profile) -> ModelSteps[Personalized]:
    """``personalizer.personalize(task, text, profile)`` as steps
    (:data:`~tailor.types.ModelSteps`): a personalizer that asks the model before its
    prompt (``refine``'s style note) has a ``personalize_steps`` method that yields those
    requests to the caller; any other decides at once, yielding nothing."""
    steps = getattr(personalizer, "personalize_steps", None)
    if steps is None:
        return personalizer.personalize(task, text, profile)
    decided: Personalized = yield from steps(task, text, profile)
    return decided


class ProfileFromStore:
    """``personalizer`` handed the user's whole profile, read from ``store`` (``tailor
    serve`` hands personalizers a profile holding only the user's id)."""

    def __init__(self, personalizer: Personalizer, store: ProfileStore) -> None:
        self.name, self.personalizer, self.store = personalizer.name, personalizer, store

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        return self.personalizer.personalize(task, text, self.store.get_profile(profile.user_id))
