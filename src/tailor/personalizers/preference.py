"""The preference methods' personalizer: the prompt of the rest of the method, answered with
the user's preference adapter (``tailor train-preference``), their soup of pole adapters,
their persona's or the global one, as the method's levels say.

Like the LoRA methods (:mod:`tailor.personalizers.adapters`), it personalizes the model, so
besides ``personalize`` it has ``bind(backend)``: the backend view that applies each
request's adapter. Each prediction records where it landed (``notes["adapter"]``: ``user``,
``soup``, ``persona:ID``, ``global`` or ``none``) and its granularity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tailor.adapters.runtime import AdapterResolver, Level
from tailor.adapters.soups import PREFERENCE_PROMPT, PREFERENCE_TASK
from tailor.adapters.store import AdapterStore
from tailor.personalizers.contract import Personalized, Personalizer
from tailor.tasks.spec import TaskSpec
from tailor.types import Granularity, Profile

__all__ = ["PreferencePersonalizer"]

_FINEST: tuple[Granularity, ...] = ("user", "persona", "global")


class PreferencePersonalizer:
    """``inner``'s prompt on the adapter ``levels`` resolve for the user (see the module docstring)."""

    def __init__(self, name: str, inner: Personalizer, store: AdapterStore, levels: Sequence[Level]) -> None:
        self.name = name
        self.inner = inner
        self.resolver = AdapterResolver(store, PREFERENCE_TASK, prompt=PREFERENCE_PROMPT, levels=levels)
        held = [info for info in store.list(task=PREFERENCE_TASK)]
        self.training = {"adapters": len(held), "levels": list(levels)}

    def personalize(self, task: TaskSpec, text: str, profile: Profile) -> Personalized:
        decided = self.inner.personalize(task, text, profile)
        resolution = self.resolver.resolve(profile.user_id)
        level = resolution.granularity if resolution.choice is not None else "global"
        levels = (level, decided.granularity) if decided.retrieved else (level,)
        return Personalized(messages=decided.messages, retrieved=decided.retrieved,
                            granularity=min(levels, key=_FINEST.index),
                            notes={**decided.notes, "adapter": resolution.label})

    def bind(self, backend: Any) -> Any:
        """``backend`` as a view that applies each request's preference adapter."""
        from tailor.adapters.runtime import AdaptedBackend

        target = backend.fallback() if hasattr(backend, "fallback") else backend
        if not hasattr(target, "with_adapters"):
            raise ValueError(f"method {self.name} needs a backend that runs the model in-process "
                             f"(default-fp32 or transformers:PATH), not {getattr(backend, 'name', backend)!r}")
        self.resolver.identity = dict(backend.identity)
        return AdaptedBackend(backend, self.resolver)
