"""Simulated users: a pole on every preference dimension, weights over the dimensions, and the
reward that stands for the user's judgement of a reply.

A user's reward of a reply is ``sum(weight[d] * dimension d's score at the user's pole) +
quality_weight * quality(reply)`` (:mod:`tailor.alignment.dimensions`): in ``[-1 -
quality_weight, 1]``, higher is better. Weights are drawn from a Dirichlet distribution
(PersonalLLM's mixtures of reward models), so users differ in what they care about most
as well as in which pole they hold.

:func:`population` is seeded and covers every combination of poles: with 4 dimensions of
2 poles, users 0-15 hold the 16 combinations once each (user ``i`` holds the second pole of
dimension ``d`` when bit ``d`` of ``i`` is set), users 16-31 again, and so on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailor.alignment.dimensions import DIMENSIONS, dimension, quality
from tailor.metrics.metric import Metric

__all__ = ["REWARD", "USERS_FILE", "SimulatedUser", "population", "read_users", "user_of", "write_users"]

USERS_FILE = "users.json"
"""The file ``tailor simulate users --out DIR`` writes in ``DIR``."""


@dataclass(frozen=True)
class SimulatedUser:
    """A user who holds ``poles[d]`` on each dimension ``d``, caring ``weights[d]`` about it."""

    user_id: str
    poles: Mapping[str, str]
    weights: Mapping[str, float]
    quality_weight: float = 0.5
    seed: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.user_id, str) or not self.user_id:
            raise ValueError(f"a simulated user needs a non-empty user_id, got {self.user_id!r}")
        if set(self.poles) != set(self.weights):
            raise ValueError(f"user {self.user_id}: poles and weights must name the same dimensions")
        for name, pole in self.poles.items():
            dimension(name).sign(pole)  # checks the dimension and the pole
        if any(weight < 0 for weight in self.weights.values()) or self.quality_weight < 0:
            raise ValueError(f"user {self.user_id}: weights must not be negative")

    def reward(self, text: str) -> float:
        """How much this user likes ``text`` as a reply (higher is better)."""
        total = self.quality_weight * quality(text)
        for name, pole in self.poles.items():
            total += self.weights[name] * dimension(name).score(text, pole)
        return total

    def scores(self, text: str) -> dict[str, float]:
        """Each dimension's score of ``text`` at the user's pole, and ``quality``."""
        return {**{name: dimension(name).score(text, pole) for name, pole in self.poles.items()},
                "quality": quality(text)}

    @property
    def profile(self) -> str:
        """The poles in the dimensions' order, joined: ``plain/concise/friendly/list``."""
        return "/".join(self.poles[d.name] for d in DIMENSIONS if d.name in self.poles)

    def stated_preferences(self) -> str:
        """The user's preferences in words (for a judge's prompt, or an in-context method)."""
        parts = []
        for d in DIMENSIONS:
            if d.name in self.poles:
                parts.append(f"{d.name}: {self.poles[d.name]} ({_POLE_WORDS[self.poles[d.name]]})")
        top = max(self.weights, key=lambda name: self.weights[name])
        return "; ".join(parts) + f". Cares most about {top}."

    def attributes(self) -> dict[str, str]:
        """The user's poles as profile attributes (``preference.expertise = plain``...)."""
        return {f"preference_{name}": pole for name, pole in self.poles.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "poles": dict(self.poles),
                "weights": {name: round(value, 6) for name, value in self.weights.items()},
                "quality_weight": self.quality_weight, "profile": self.profile}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimulatedUser:
        try:
            return cls(str(data["user_id"]), dict(data["poles"]), {k: float(v) for k, v in data["weights"].items()},
                       float(data.get("quality_weight", 0.5)))
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"a simulated user needs user_id, poles and weights: {error}") from None


_POLE_WORDS = {
    "plain": "everyday words and short sentences", "expert": "precise, technical vocabulary",
    "concise": "short answers", "detailed": "long, detailed answers",
    "formal": "a neutral, formal tone", "friendly": "a warm, friendly tone",
    "prose": "running prose", "list": "answers as a list of points",
}


def population(n: int = 16, *, seed: int = 0, concentration: float = 4.0, quality_weight: float = 0.5,
               dimensions: Sequence[str] | None = None) -> list[SimulatedUser]:
    """``n`` simulated users covering every combination of poles (see the module docstring),
    their weights over the dimensions drawn from ``Dirichlet(concentration)`` with ``seed``
    (a larger concentration: more even weights)."""
    import numpy as np

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not concentration > 0:
        raise ValueError(f"concentration must be positive, got {concentration!r}")
    chosen = [dimension(name) for name in dimensions] if dimensions else list(DIMENSIONS)
    generator = np.random.default_rng(seed)
    users = []
    for index in range(n):
        combination = index % (2 ** len(chosen))
        poles = {d.name: d.poles[(combination >> bit) & 1] for bit, d in enumerate(chosen)}
        drawn = generator.dirichlet([concentration] * len(chosen))
        weights = {d.name: float(w) for d, w in zip(chosen, drawn)}
        users.append(SimulatedUser(f"sim-{index:02d}", poles, weights, quality_weight, seed))
    return users


def write_users(users: Sequence[SimulatedUser], out: str | os.PathLike[str], *, seed: int | None = None) -> Path:
    """``out/users.json``: the users, and the seed they were drawn with."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / USERS_FILE
    payload = {"seed": seed, "dimensions": [{"name": d.name, "poles": list(d.poles), "help": d.help}
                                            for d in DIMENSIONS],
               "users": [user.to_dict() for user in users]}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_users(path: str | os.PathLike[str]) -> list[SimulatedUser]:
    """The users of a ``users.json`` (or of the folder holding one)."""
    source = Path(path)
    if source.is_dir():
        source = source / USERS_FILE
    if not source.is_file():
        raise FileNotFoundError(f"no simulated users at {path}: expected {USERS_FILE} (tailor simulate users)")
    data = json.loads(source.read_text(encoding="utf-8"))
    rows = data.get("users") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValueError(f"{source}: expected {{\"users\": [...]}}")  # noqa: TRY004 (a bad file, not a caller's type)
    return [SimulatedUser.from_dict(row) for row in rows]


def user_of(gold: str) -> SimulatedUser:
    """The simulated user a ``preference`` example's gold names (the user as JSON)."""
    return SimulatedUser.from_dict(json.loads(gold))


def _reward(prediction: str, gold: str) -> float:
    return user_of(gold).reward(prediction)


REWARD = Metric.per_example("reward", "a reply's reward under the simulated user it was written for (the gold: "
                            "the user as JSON)", _reward)
"""The ``reward`` metric (registered in :data:`tailor.metrics.METRICS`)."""
