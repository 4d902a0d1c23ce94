"""``lora`` and ``user-embedding``: methods that personalize the model, not only the prompt.

``lora`` runs the prompt of the rest of its method on the user's LoRA adapter (else their
persona's, else the global one): ``lora`` alone the ``none`` prompt, ``lora+bm25`` the bm25
prompt; each is served by the adapters trained on that very prompt (``tailor
train-adapter --method``). ``user-embedding`` puts a soft prompt computed from the user's
items before the ``none`` prompt. Both need ``--adapters``; ``tailor serve`` applies each
user's adapter under any method instead (``--adapter-task``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tailor.methods.method import BuildContext, ModifierMethod, WholeMethod

if TYPE_CHECKING:
    from tailor.adapters.store import AdapterStore
    from tailor.methods.spec import MethodSpec
    from tailor.personalizers.contract import Personalizer

SERVED_OTHERWISE = ("is an adapter method; tailor serve applies each user's adapter with --adapter-task, "
                    "under any method")


def _adapters(spec: MethodSpec | str, context: BuildContext) -> AdapterStore:
    if context.adapters is None:
        raise ValueError(f"method {spec} needs trained adapters: pass --adapters DIR (made by tailor train-adapter)")
    return context.adapters


def _lora_rule(spec: MethodSpec) -> str | None:
    if spec.notes or len(spec.modifiers) > 1:
        return "lora comes alone or with one retrieval (the prompt its adapters are trained on, as lora+bm25)"
    return None


def _wrap_lora(inner: Personalizer, spec: MethodSpec, context: BuildContext) -> Personalizer:
    from tailor.adapters.prompts import TrainingPrompt
    from tailor.personalizers.adapters import LoRAPersonalizer

    retrieval = spec.retrieval
    prompt = TrainingPrompt(retrieval.name, (spec.layout or context.task.layout) if retrieval.retriever else None,
                            context.items, context.budget.input_tokens, context.budget.context_tokens)
    return LoRAPersonalizer(spec.name, inner, _adapters(spec, context), context.task, prompt=prompt)


def _user_embedding(context: BuildContext) -> Personalizer:
    from tailor.personalizers.adapters import UserEmbeddingPersonalizer

    return UserEmbeddingPersonalizer(_adapters("user-embedding", context), context.task,
                                     count_tokens=context.count_tokens, budget=context.budget, store=context.store)


LORA = ModifierMethod(
    name="lora", help="the prompt of the rest of the method, on the user's LoRA adapter (else persona's, else global)",
    needs=frozenset({"adapters"}), serve_refusal=SERVED_OTHERWISE, position=30, wrapper=_wrap_lora,
    rule=_lora_rule)
USER_EMBEDDING = WholeMethod(
    name="user-embedding", help="a soft prompt computed from the user's items, before the input",
    needs=frozenset({"adapters"}), parameters=(), serve_refusal=SERVED_OTHERWISE, factory=_user_embedding)

__all__ = ["LORA", "SERVED_OTHERWISE", "USER_EMBEDDING"]
