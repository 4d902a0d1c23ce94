"""``preference``, ``soup`` and ``preference-global``: the prompt of the rest of the method,
answered with preference adapters (``tailor train-preference``) instead of the base model.

- ``preference``: the user's own adapter, else their soup (pole adapters merged by their
  weights), else their persona's, else the global one: what ``tailor serve --adapter-task
  chat`` serves;
- ``soup``: the user's soup alone (personalized soups, no per-user training);
- ``preference-global``: the one global adapter, trained on everyone's feedback.

Each needs ``--adapters`` (a store made by ``tailor train-preference``); ``tailor serve``
applies preference adapters with ``--adapter-task chat`` under any method instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tailor.methods.method import BuildContext, ModifierMethod

if TYPE_CHECKING:
    from tailor.adapters.runtime import Level
    from tailor.methods.spec import MethodSpec
    from tailor.personalizers.contract import Personalizer

SERVED_WITH_ADAPTER_TASK = ("is a preference adapter method; tailor serve applies each user's preference adapter "
                            "with --adapter-task chat, under any method")


def _rule(spec: MethodSpec) -> str | None:
    if spec.notes or len(spec.modifiers) > 1:
        return "a preference method comes alone or with one retrieval (as preference+bm25)"
    return None


def _wrapper(levels: Sequence[Level]) -> object:
    def wrap(inner: Personalizer, spec: MethodSpec, context: BuildContext) -> Personalizer:
        from tailor.personalizers.preference import PreferencePersonalizer

        if context.adapters is None:
            raise ValueError(f"method {spec} needs preference adapters: pass --adapters (a store made by "
                             "tailor train-preference)")
        return PreferencePersonalizer(str(spec), inner, context.adapters, levels)

    return wrap


PREFERENCE = ModifierMethod(
    name="preference", help="the rest of the method's prompt on the user's preference adapter (DPO/SimPO/KTO; else "
    "their soup, persona's, global)", needs=frozenset({"adapters"}), serve_refusal=SERVED_WITH_ADAPTER_TASK,
    position=30, wrapper=_wrapper(("user", "soup", "persona", "global")), rule=_rule)  # type: ignore[arg-type]
SOUP = ModifierMethod(
    name="soup", help="the rest of the method's prompt on the user's personalized soup (pole adapters merged by "
    "their weights)", needs=frozenset({"adapters"}), serve_refusal=SERVED_WITH_ADAPTER_TASK, position=30,
    wrapper=_wrapper(("soup",)), rule=_rule)  # type: ignore[arg-type]
GLOBAL_PREFERENCE = ModifierMethod(
    name="preference-global", help="the rest of the method's prompt on the one global preference adapter",
    needs=frozenset({"adapters"}), serve_refusal=SERVED_WITH_ADAPTER_TASK, position=30,
    wrapper=_wrapper(("global",)), rule=_rule)  # type: ignore[arg-type]

__all__ = ["GLOBAL_PREFERENCE", "PREFERENCE", "SERVED_WITH_ADAPTER_TASK", "SOUP"]
