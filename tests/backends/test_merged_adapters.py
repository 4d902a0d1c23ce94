"""Shared adapters merged into the fast engine's model: the merge gives the adapter's
outputs, the OpenVINO export of a merged model answers as the adapter on transformers, and a
fast engine sends each request to the engine that runs its adapter."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.backends.stand_ins import StandInEngine

from tailor.adapters.runtime import LoRAChoice
from tailor.backends.fallback import TransformersFallback
from tailor.testing.adapters import random_adapter
from tailor.types import GenerationRequest

REQUESTS = [GenerationRequest(messages=({"role": "user", "content": text},), max_new_tokens=8)
            for text in ("Write a headline about the harbour.", "Name a colour.", "Say hello to the museum.")]


def test_merging_an_adapter_gives_the_outputs_of_the_adapter_applied(tiny_model_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tailor.backends.merged import merge_into

    weights = random_adapter(tiny_model_dir, seed=3, scale=0.5)
    ids = torch.tensor([[1, 5, 9, 200, 3000, 17]])
    peft = pytest.importorskip("peft")
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        plain = base(ids).logits
    adapted = peft.get_peft_model(base, weights.shape.peft_config(inference=True))
    peft.set_peft_model_state_dict(adapted, weights.to_peft())
    with torch.no_grad():
        expected = adapted(ids).logits
    merged = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    assert merge_into(merged, weights) == len(weights.modules())
    with torch.no_grad():
        got = merged(ids).logits
    assert not torch.allclose(plain, expected, atol=1e-3)  # the adapter changes the outputs
    assert torch.allclose(got, expected, atol=1e-4)


def test_an_adapter_of_another_model_is_refused_naming_the_module(tiny_model_dir: Path,
                                                                  tiny_model_dir_wide_heads: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tailor.backends.merged import merge_into

    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"model\.layers\.2\.self_attn\.q_proj.*another model"):
        merge_into(model, random_adapter(tiny_model_dir_wide_heads, seed=1))


def test_a_merged_openvino_export_answers_as_the_adapter_on_transformers(
        tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openvino")
    from tailor.backends.hf import TransformersBackend
    from tailor.backends.merged import merged_openvino_dir
    from tailor.backends.openvino import MODEL_FILE, OpenVINOBackend

    monkeypatch.setenv("TAILOR_HOME", str(tmp_path))
    weights = random_adapter(tiny_model_dir, seed=5, scale=0.5)
    choice = LoRAChoice("lora_test", lambda: weights, shared=True)
    folder = merged_openvino_dir(tiny_model_dir, choice, "fp32")
    assert folder.parent == tmp_path / "models" / "merged" and (folder / "tokenizer.json").exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left
    made = (folder / MODEL_FILE).stat().st_mtime_ns
    assert merged_openvino_dir(tiny_model_dir, choice, "fp32") == folder  # made once
    assert (folder / MODEL_FILE).stat().st_mtime_ns == made
    reference = TransformersBackend(str(tiny_model_dir), batch_size=4)
    expected = [r.text for r in reference.generate(REQUESTS, lora=[choice] * len(REQUESTS))]
    assert expected != [r.text for r in reference.generate(REQUESTS)]  # the adapter matters
    assert [r.text for r in OpenVINOBackend(str(folder), batch_size=4).generate(REQUESTS)] == expected


class _Base(StandInEngine):
    def __init__(self) -> None:
        super().__init__("base")


class _Fast(TransformersFallback, _Base):
    def __init__(self, merges: bool) -> None:
        _Base.__init__(self)
        self.merges_adapters = merges
        self.merged: dict[str, StandInEngine] = {}
        self._fallback = StandInEngine("fp32")  # type: ignore[assignment]

    def merged_engine(self, choice: LoRAChoice) -> StandInEngine:
        return self.merged.setdefault(choice.name, StandInEngine(f"merged-{choice.name}"))


def test_each_request_goes_to_the_engine_of_its_adapter_and_keeps_its_place() -> None:
    shared, own = LoRAChoice("g", lambda: None, shared=True), LoRAChoice("u", lambda: None)  # type: ignore[arg-type,return-value]
    requests = [GenerationRequest(messages=({"role": "user", "content": str(i)},)) for i in range(5)]
    fast = _Fast(merges=True)
    texts = [r.text for r in fast.generate(requests, lora=[None, shared, own, shared, None])]
    assert texts == ["base:-:0", "merged-g:-:1", "fp32:u:2", "merged-g:-:3", "base:-:4"]
    assert fast.merged["g"].calls == [2]  # one batch for the shared adapter's requests
    assert "".join(fast.stream(requests[0], lora=shared)) == "merged-g:-"
    assert "".join(fast.stream(requests[0], lora=own)) == "fp32:u"
    assert "".join(fast.stream(requests[0])) == "base:-"
    plain = _Fast(merges=False)  # an engine that does not merge: every adapter on the float32 model
    assert [r.text for r in plain.generate(requests[:2], lora=[shared, None])] == ["fp32:g:0", "fp32:-:1"]
    assert not plain.merged
