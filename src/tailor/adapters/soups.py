"""Preference adapters' keys, and personalized soups: one adapter per preference pole, merged
per user by the user's weights at load time.

Preference adapters (``tailor train-preference``) serve chats, so they are kept under the
chat task with the prompt key ``preference``: ``user/ana/chat/lora/preference``,
``persona/P/chat/...``, ``global/all/chat/...``. A pole's adapter is a global adapter whose
prompt key names the pole: ``global/all/chat/lora/pole:style=friendly``.

Personalized Soups (Jang et al. 2023) trains one policy per preference pole once and, for a
user, averages the policies of the poles they hold. Here a user's soup is the weighted sum of
the pole adapters' updates (:func:`tailor.adapters.lora.compose` with weights, PEFT's ``cat``
combination), ``sum_p w_p * s_p * B_p A_p``, built when the user is first served and cached
by the serving runtime like any adapter; no per-user training. The weights are the user's
(a profile artifact of kind ``soup``, deleted with the user): their stated poles with their
dimension weights, or weights fitted to their feedback pairs (:func:`fit_weights`). A
pole that has no adapter (its pairs were too few to train one) adds nothing to the merge.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from tailor.adapters.lora import LoRAWeights, compose, from_bytes
from tailor.adapters.store import AdapterKey, AdapterStore

__all__ = [
    "POLE_PREFIX",
    "PREFERENCE_PROMPT",
    "PREFERENCE_TASK",
    "SOUP_ARTIFACT",
    "fit_weights",
    "pole_key",
    "pole_name",
    "preference_key",
    "set_soup_weights",
    "soup_digest",
    "soup_weights",
    "soup_weights_of",
    "stated_weights",
]

PREFERENCE_TASK = "chat"
"""The task preference adapters are kept under: the served chat's."""
PREFERENCE_PROMPT = "preference"
"""Their prompt key: trained on chats as the client sent them, with preferences over the replies."""
POLE_PREFIX = "pole:"
SOUP_ARTIFACT = "soup"
"""The kind of the profile artifact that holds a user's soup weights (key: the task)."""


def pole_name(dimension: str, pole: str) -> str:
    """``pole:style=friendly``: a pole's name in adapter keys and pairs files."""
    return f"{POLE_PREFIX}{dimension}={pole}"


def pole_key(name: str) -> AdapterKey:
    """The global adapter of the pole ``name`` (``pole:style=friendly``)."""
    if not name.startswith(POLE_PREFIX) or "=" not in name:
        raise ValueError(f"a pole is named pole:DIMENSION=POLE, got {name!r}")
    return AdapterKey.global_(PREFERENCE_TASK, prompt=name)


def preference_key(scope: str, owner: str) -> AdapterKey:
    """A user's, persona's or the global preference adapter."""
    return AdapterKey(scope, owner, PREFERENCE_TASK, prompt=PREFERENCE_PROMPT)  # type: ignore[arg-type]


def stated_weights(poles: Mapping[str, str], weights: Mapping[str, float]) -> dict[str, float]:
    """A simulated user's soup: each pole they hold, weighted by how much they care about its
    dimension (the weights of the dimensions sum to 1)."""
    return {pole_name(dimension, pole): float(weights[dimension]) for dimension, pole in poles.items()}


def set_soup_weights(store: AdapterStore, user_id: str, weights: Mapping[str, float], *, source: str,
                     task: str = PREFERENCE_TASK) -> None:
    """Keep the user's soup weights (pole name -> weight) in their profile."""
    checked = {}
    for name, weight in weights.items():
        pole_key(name)
        if not isinstance(weight, (int, float)) or math.isnan(weight):
            raise ValueError(f"soup weight of {name} must be a number, got {weight!r}")
        checked[name] = float(weight)
    store.profiles.put_artifact(user_id, SOUP_ARTIFACT, task, {"weights": checked, "source": source}, 0)


def soup_weights_of(store: AdapterStore, user_id: str, task: str = PREFERENCE_TASK) -> dict[str, float] | None:
    """The user's soup weights, or ``None`` when they have none (or the store does not hold them)."""
    try:
        artifact = store.profiles.get_artifact(user_id, SOUP_ARTIFACT, task)
    except (KeyError, LookupError, ValueError):  # an unknown user
        return None
    if artifact is None:
        return None
    weights = artifact.value.get("weights") if isinstance(artifact.value, Mapping) else None
    return {str(k): float(v) for k, v in weights.items()} if isinstance(weights, Mapping) else None


def soup_weights(store: AdapterStore, user_id: str, task: str = PREFERENCE_TASK) -> dict[str, float] | None:
    """The user's non-zero soup weights whose pole adapters the store holds (all of them, or ``None``)."""
    weights = soup_weights_of(store, user_id, task)
    if not weights:
        return None
    kept = {name: weight for name, weight in weights.items() if weight != 0.0}
    return kept or None


def soup_digest(digests: Sequence[str], weights: Sequence[float]) -> str:
    """A name for one user's merge: which pole adapters, with which weights."""
    payload = json.dumps([[d, round(w, 6)] for d, w in zip(digests, weights)])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def merge_poles(parts: Sequence[tuple[Any, float]]) -> LoRAWeights:
    """The weighted merge of stored pole adapters (``(stored adapter, weight)`` pairs)."""
    loaded = [from_bytes(stored.weights, stored.config["lora"]) for stored, _ in parts]
    return compose(loaded, [weight for _, weight in parts])


def fit_weights(margins: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Soup weights fitted to a user's pairs, by the likelihood DPO itself assumes.

    ``margins`` maps each pole to its implicit-reward margin on each of the user's pairs: its
    DPO ``beta`` times the pole adapter's log-likelihood of the chosen reply minus the
    rejected one, less the same under the base model. A soup's update is the weighted sum of
    the poles' updates, so its margin is about the weighted sum of theirs; the weights (on the
    simplex, as Personalized Soups averages its policies) are those under which the user's
    choices are most likely by Bradley-Terry, ``sum_j log sigmoid(sum_p w_p m_pj)``, found by
    exponentiated gradient ascent from equal weights with a step that grows while the
    likelihood rises and halves when it would fall (the likelihood is concave). Poles left
    under 0.001 are dropped. No weights (``{}``, the base model) when even the best soup
    makes the user's pairs less likely than the base model does."""
    import numpy as np

    names = sorted(margins)
    if not names:
        return {}
    matrix = np.array([list(margins[name]) for name in names], dtype=np.float64)
    if matrix.shape[1] == 0:
        return {}

    def likelihood(w: Any) -> float:
        return float(-np.logaddexp(0.0, -(w @ matrix)).sum())

    weights = np.full(len(names), 1.0 / len(names))
    best = likelihood(weights)
    step = 1.0 / max(float(np.abs(matrix).sum(axis=1).max()), 1e-12)  # log-weights move by at most 1
    for _ in range(1000):
        gradient = (matrix / (1.0 + np.exp(np.clip(weights @ matrix, -50, 50)))).sum(axis=1)
        trial = weights * np.exp(step * (gradient - gradient.max()))
        trial /= trial.sum()
        value = likelihood(trial)
        if value > best:  # a longer step next time; else a shorter one from the same point
            weights, best, step = trial, value, step * 1.5
        else:
            step /= 2
            if step < 1e-12:
                break
    if best <= likelihood(np.zeros(len(names))):
        return {}
    kept = {name: float(w) for name, w in zip(names, weights) if w >= 1e-3}
    total = sum(kept.values())
    return {name: w / total for name, w in kept.items()}
