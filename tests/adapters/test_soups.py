"""Personalized soups: a user's adapter is the weighted merge of pole adapters, exactly PEFT's
``cat`` combination, built when the user is served; weights as documented."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from tailor.adapters.lora import LoRAShape, LoRAWeights, compose, to_bytes
from tailor.adapters.runtime import AdapterResolver
from tailor.adapters.soups import (
    PREFERENCE_PROMPT,
    PREFERENCE_TASK,
    fit_weights,
    pole_key,
    pole_name,
    preference_key,
    set_soup_weights,
    soup_weights,
    stated_weights,
)
from tailor.adapters.store import AdapterStore
from tailor.store import SQLiteProfileStore

SHAPE = LoRAShape(2, 4.0, ("q_proj", "v_proj"))


def random_lora(model: object, seed: int) -> LoRAWeights:
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for path, module in model.named_modules():  # type: ignore[attr-defined]
        if path.endswith(("q_proj", "v_proj")):
            tensors[f"{path}.lora_A.weight"] = torch.randn(2, module.in_features, generator=generator)
            tensors[f"{path}.lora_B.weight"] = torch.randn(module.out_features, 2, generator=generator)
    return LoRAWeights(SHAPE, tensors)


def test_the_weighted_merge_is_peft_s_cat_combination(tiny_model_dir: Path) -> None:
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    first, second = random_lora(model, 1), random_lora(model, 2)
    merged = compose([first, second], [0.7, 0.2])
    wrapped = peft.get_peft_model(model, SHAPE.peft_config(inference=True), adapter_name="first")
    wrapped.add_adapter("second", SHAPE.peft_config(inference=True))
    peft.set_peft_model_state_dict(wrapped, first.to_peft(), adapter_name="first")
    peft.set_peft_model_state_dict(wrapped, second.to_peft(), adapter_name="second")
    wrapped.add_weighted_adapter(["first", "second"], [0.7, 0.2], "soup", combination_type="cat")
    module = "model.layers.1.self_attn.q_proj"
    layer = wrapped.get_submodule("base_model.model." + module)
    theirs = layer.scaling["soup"] * layer.lora_B["soup"].weight @ layer.lora_A["soup"].weight
    assert torch.allclose(merged.delta(module), theirs, atol=1e-5)
    assert torch.allclose(merged.delta(module), 0.7 * first.delta(module) + 0.2 * second.delta(module), atol=1e-5)


def test_stated_weights_are_the_poles_held_weighted_by_their_dimension() -> None:
    assert stated_weights({"style": "friendly", "format": "list"}, {"style": 0.25, "format": 0.75}) == {
        "pole:style=friendly": 0.25, "pole:format=list": 0.75}


def _log_likelihood(weights: dict[str, float], margins: dict[str, list[float]]) -> float:
    pairs = len(next(iter(margins.values())))
    return sum(-math.log1p(math.exp(-sum(weights.get(p, 0.0) * margins[p][j] for p in margins)))
               for j in range(pairs))


def test_fitted_weights_make_the_users_choices_most_likely() -> None:
    # friendly explains every choice; formal contradicts them: all the weight goes to friendly.
    weights = fit_weights({"pole:style=friendly": [2.0, 1.5, 3.0], "pole:style=formal": [-2.0, -1.0, -2.5]})
    assert weights == pytest.approx({"pole:style=friendly": 1.0})
    # Two poles that each explain some of the pairs share the weight, and no other point of
    # the simplex makes the choices more likely.
    margins = {"pole:style=friendly": [3.0, -1.0, 2.0, -0.5], "pole:format=list": [-1.0, 2.5, 0.5, 1.0],
               "pole:expertise=plain": [0.2, -0.3, 0.1, -0.2]}
    weights = fit_weights(margins)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["pole:style=friendly"] > 0.2 and weights["pole:format=list"] > 0.2
    best = _log_likelihood(weights, margins)
    for a in range(21):
        for b in range(21 - a):
            grid = dict(zip(margins, (a / 20, b / 20, (20 - a - b) / 20)))
            assert _log_likelihood(grid, margins) <= best + 1e-6
    # When every pole makes the user's choices less likely than the base model does: no soup.
    assert fit_weights({"pole:style=friendly": [-1.0, -2.0], "pole:style=formal": [-0.5, -0.1]}) == {}
    assert fit_weights({}) == {} and fit_weights({"pole:style=friendly": []}) == {}


def test_a_user_with_weights_is_served_their_soup_and_falls_back_without_it(tmp_path: Path) -> None:
    profiles = SQLiteProfileStore(tmp_path / "store.db")
    store = AdapterStore(profiles)
    profiles.set_attributes("ana", {})
    profiles.set_attributes("bob", {})
    tensors = {"model.layers.0.self_attn.q_proj.lora_A.weight": torch.ones(2, 4),
               "model.layers.0.self_attn.q_proj.lora_B.weight": torch.ones(4, 2)}
    shape = LoRAShape(2, 2.0, ("q_proj",))
    config = {"lora": shape.to_dict()}
    for name, scale in ((pole_name("style", "friendly"), 1.0), (pole_name("format", "list"), 2.0)):
        weights = LoRAWeights(shape, {k: v * scale for k, v in tensors.items()})
        store.save(pole_key(name), to_bytes(weights), config=config, base_model={"fingerprint": "x"})
    store.save(preference_key("global", "all"), to_bytes(LoRAWeights(shape, tensors)), config=config,
               base_model={"fingerprint": "x"}, contributors=["bob"])
    set_soup_weights(store, "ana", {pole_name("style", "friendly"): 0.5, pole_name("format", "list"): 0.25},
                     source="stated")
    resolver = AdapterResolver(store, PREFERENCE_TASK, prompt=PREFERENCE_PROMPT,
                               levels=("user", "soup", "persona", "global"))
    ana = resolver.resolve("ana")
    assert (ana.label, ana.granularity, ana.soup) == ("soup", "user", True)
    merged = ana.choice.load()  # type: ignore[union-attr]
    module = "model.layers.0.self_attn.q_proj"
    expected = 0.5 * (torch.ones(4, 2) @ torch.ones(2, 4)) + 0.25 * (2 * torch.ones(4, 2) @ (2 * torch.ones(2, 4)))
    assert torch.allclose(merged.delta(module), expected)
    assert resolver.resolve("bob").label == "global"
    # a new weight is a new merge (a new name), picked up on the next request
    set_soup_weights(store, "ana", {pole_name("style", "friendly"): 1.0}, source="stated")
    assert resolver.resolve("ana").choice.name != ana.choice.name  # type: ignore[union-attr]
    # a pole without an adapter adds nothing; with none of them left, the user falls back
    set_soup_weights(store, "ana", {pole_name("style", "friendly"): 1.0, pole_name("style", "formal"): 0.5},
                     source="stated")
    partial = resolver.resolve("ana")
    assert partial.label == "soup" and [key.prompt for key in partial.stack] == ["pole:style=friendly"]
    store.delete(pole_key(pole_name("style", "friendly")))
    assert resolver.resolve("ana").label == "global"
    assert soup_weights(store, "ana") == {pole_name("style", "friendly"): 1.0, pole_name("style", "formal"): 0.5}
    profiles.delete_user("ana")
    assert soup_weights(store, "ana") is None
    profiles.close()
