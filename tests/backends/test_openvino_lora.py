"""LoRA adapters applied at run time on the OpenVINO engine (tiny model, float32 export):
each row of a batch answers as transformers with PEFT applying that row's adapter, the
export is made once per layout, and a fast engine sends each adapter where it can run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.backends.stand_ins import StandInEngine
from tests.backends.streams import drain

from tailor.adapters.lora import LoRAShape, LoRAWeights, compose
from tailor.adapters.runtime import AdaptedBackend, AdapterResolver, LoRAChoice
from tailor.backends.fallback import TransformersFallback
from tailor.testing.adapters import TEST_SHAPE, random_adapter
from tailor.types import GenerationRequest, GenerationResult

TEXTS = ("Write a headline about the harbour.", "Name a colour.", "Say hello to the museum.",
         "Describe the weather in one line.")
REQUESTS = [GenerationRequest(messages=({"role": "user", "content": text},), max_new_tokens=10) for text in TEXTS]
LABELS = GenerationRequest(messages=({"role": "user", "content": "Is the sea salty? Answer yes or no."},),
                           candidates=("yes", "no", "maybe not"))


def choice(name: str, weights: LoRAWeights, *, shared: bool = False) -> LoRAChoice:
    return LoRAChoice(name, lambda: weights, shared=shared)


@pytest.fixture(scope="module")
def users(tiny_model_dir: Path) -> list[LoRAChoice]:
    """Three users' adapters of one layout: rank 4, rank 8 (two stacked, as a user adapter on
    a global one), and rank 2 on the query projections alone (zeros for the rest)."""
    narrow = LoRAShape(2, 4.0, ("q_proj",), (2, 3))
    return [choice("ana", random_adapter(tiny_model_dir, seed=11, scale=0.5)),
            choice("ben", compose([random_adapter(tiny_model_dir, seed=12, scale=0.5),
                                   random_adapter(tiny_model_dir, seed=13, scale=0.5)])),
            choice("cem", random_adapter(tiny_model_dir, seed=14, shape=narrow, scale=0.5))]


@pytest.fixture(scope="module")
def lora_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lora-home")


@pytest.fixture(scope="module")
def engines(tiny_model_dir: Path, lora_home: Path) -> tuple[Any, Any]:
    """The tiny model exported with LoRA inputs on the test layout (float32), and transformers."""
    pytest.importorskip("openvino")
    from tailor.backends.hf import TransformersBackend
    from tailor.backends.openvino_lora import OpenVINOLoRABackend, lora_openvino_dir

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TAILOR_HOME", str(lora_home))
        folder = lora_openvino_dir(tiny_model_dir, layout(tiny_model_dir), "fp32")
    return (OpenVINOLoRABackend(str(folder), batch_size=4),
            TransformersBackend(str(tiny_model_dir), batch_size=4))


def layout(model_dir: Path) -> list[str]:
    return random_adapter(model_dir, seed=0).modules()


def texts(results: Sequence[GenerationResult]) -> list[str]:
    return [result.text for result in results]


def test_each_user_alone_answers_as_peft_applying_their_adapter(engines: tuple[Any, Any],
                                                               users: list[LoRAChoice]) -> None:
    fast, reference = engines
    plain = texts(reference.generate(REQUESTS))
    assert texts(fast.generate(REQUESTS)) == plain  # no adapter: zeros, the base model
    for user in users:
        expected = texts(reference.generate(REQUESTS, lora=[user] * len(REQUESTS)))
        assert expected != plain  # the adapter matters
        assert texts(fast.generate(REQUESTS, lora=[user] * len(REQUESTS))) == expected


def test_a_batch_of_users_with_different_adapters_answers_row_by_row(engines: tuple[Any, Any],
                                                                     users: list[LoRAChoice]) -> None:
    fast, reference = engines
    mixed: list[LoRAChoice | None] = [*users, None]
    expected = [reference.generate([request], lora=[user])[0].text for request, user in zip(REQUESTS, mixed)]
    assert texts(fast.generate(REQUESTS, lora=mixed)) == expected
    # The same users in another order: each row keeps its own adapter.
    assert texts(fast.generate(REQUESTS[::-1], lora=mixed[::-1])) == expected[::-1]


def test_candidate_scores_are_those_of_peft(engines: tuple[Any, Any], users: list[LoRAChoice]) -> None:
    fast, reference = engines
    for user in users:
        mine, theirs = fast.generate([LABELS], lora=[user])[0], reference.generate([LABELS], lora=[user])[0]
        assert mine.text == theirs.text and mine.scores is not None and theirs.scores is not None
        for label in LABELS.candidates or ():
            assert mine.scores[label] == pytest.approx(theirs.scores[label], abs=1e-3)


def test_a_stream_gives_the_text_of_the_batch(engines: tuple[Any, Any], users: list[LoRAChoice]) -> None:
    fast, _ = engines
    pieces, result = drain(fast.stream(REQUESTS[0], lora=users[1]))
    assert "".join(pieces) == result.text == fast.generate(REQUESTS[:1], lora=users[1:2])[0].text


def test_an_adapter_on_layers_the_export_has_no_inputs_for_is_refused(engines: tuple[Any, Any],
                                                                      tiny_model_dir: Path) -> None:
    fast, _ = engines
    other = choice("o", random_adapter(tiny_model_dir, seed=3, shape=LoRAShape(4, 8.0, ("k_proj",), (1,))))
    assert not fast.fits(other)
    with pytest.raises(ValueError, match=r"model\.layers\.1\.self_attn\.k_proj"):
        fast.generate(REQUESTS[:1], lora=[other])


def test_the_export_is_made_once_per_layout(engines: tuple[Any, Any], tiny_model_dir: Path, lora_home: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from tailor.backends.openvino import MODEL_FILE
    from tailor.backends.openvino_lora import lora_openvino_dir

    monkeypatch.setenv("TAILOR_HOME", str(lora_home))
    folder = lora_openvino_dir(tiny_model_dir, layout(tiny_model_dir), "fp32")
    assert folder.parent == lora_home / "models" / "lora" and (folder / "tokenizer.json").exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left
    made = (folder / MODEL_FILE).stat().st_mtime_ns
    assert lora_openvino_dir(tiny_model_dir, layout(tiny_model_dir)[::-1], "fp32") == folder  # any order
    assert (folder / MODEL_FILE).stat().st_mtime_ns == made


def test_which_adapters_fit_the_model(tiny_model_dir: Path, tiny_model_dir_wide_heads: Path) -> None:
    from tailor.backends.openvino_lora import AdapterInputs, linear_layers

    layers = linear_layers(tiny_model_dir)
    assert layers["model.layers.2.self_attn.q_proj"] == (32, 32) and layers["lm_head"][0] == 32
    assert AdapterInputs.of(random_adapter(tiny_model_dir, seed=1)).misfits(layers) == []
    wrong = AdapterInputs.of(random_adapter(tiny_model_dir_wide_heads, seed=1))  # another model's sizes
    assert wrong.misfits(layers) == sorted(TEST_SHAPE_MODULES)


TEST_SHAPE_MODULES = [f"model.layers.{layer}.self_attn.{name}" for layer in TEST_SHAPE.layers or ()
                      for name in TEST_SHAPE.target_modules]


class _Base(StandInEngine):
    name = engine = "fast"

    def __init__(self) -> None:
        super().__init__("base")


class _Fast(TransformersFallback, _Base):
    """Merges shared adapters; applies at run time the LoRAs whose name starts with ``fit``,
    one engine per layout (the letter after ``fit``)."""

    def __init__(self) -> None:
        _Base.__init__(self)
        self.merges_adapters = self.runs_lora = True
        self.adapter_engine = "fast-merged/fast-lora/transformers-fp32"
        self.layouts: dict[str, StandInEngine] = {}
        self._fallback = StandInEngine("fp32")  # type: ignore[assignment]

    def merged_engine(self, choice: LoRAChoice) -> StandInEngine:
        return StandInEngine(f"merged-{choice.name}")

    def lora_fits(self, choice: LoRAChoice) -> bool:
        return choice.name.startswith("fit")

    def lora_engine(self, choice: LoRAChoice) -> StandInEngine:
        return self.layouts.setdefault(choice.name[3], StandInEngine(f"lora-{choice.name[3]}"))


def test_each_adapter_goes_to_the_engine_that_runs_it_and_users_of_a_layout_share_a_batch() -> None:
    shared = choice("g", None, shared=True)  # type: ignore[arg-type]
    ana, ben, odd, other = (choice(name, None) for name in ("fitA-ana", "fitA-ben", "misfit", "fitB-cem"))  # type: ignore[arg-type]
    requests = [GenerationRequest(messages=({"role": "user", "content": str(i)},)) for i in range(6)]
    fast = _Fast()
    got = texts(fast.generate(requests, lora=[ana, None, shared, ben, odd, other]))
    assert got == ["lora-A:fitA-ana:0", "base:-:1", "merged-g:-:2", "lora-A:fitA-ben:3", "fp32:misfit:4",
                   "lora-B:fitB-cem:5"]
    assert fast.layouts["A"].calls == [2]  # two users, one batch of one engine
    assert "".join(fast.stream(requests[0], lora=ana)) == "lora-A:fitA-ana"
    assert "".join(fast.stream(requests[0], lora=odd)) == "fp32:misfit"
    assert [fast.engine_label(fast.route(c)) for c in (None, shared, ana, odd)] == [
        "fast", "fast-merged", "fast-lora", "transformers-fp32"]


def test_an_adapter_view_names_the_engines_that_ran_its_requests(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tailor.adapters.store import AdapterKey, AdapterStore
    from tailor.store import SQLiteProfileStore
    from tailor.testing.adapters import save_adapter
    from tailor.types import Profile

    profiles = SQLiteProfileStore(tmp_path / "profiles.sqlite")
    profiles.add_profiles([Profile("ana", ())])
    adapter_store = AdapterStore(profiles)
    save_adapter(adapter_store, AdapterKey("user", "ana", "LaMP-4"), random_adapter(tiny_model_dir, 1), tiny_model_dir)

    class Routed(_Fast):
        def lora_fits(self, choice: LoRAChoice) -> bool:
            return True

        def lora_engine(self, choice: LoRAChoice) -> StandInEngine:
            return self.layouts.setdefault("A", StandInEngine("lora-A"))

    view = AdaptedBackend(Routed(), AdapterResolver(adapter_store, "LaMP-4"))
    assert view.engine == "fast-merged/fast-lora/transformers-fp32+lora"  # what may run, before anything has
    view.generate([GenerationRequest(messages=({"role": "user", "content": "hi"},), user_id=user)
                   for user in ("ana", "bob")])
    assert view.engine == "fast-lora+lora"


def test_with_int8_weights_the_adapter_products_stay_float32(tiny_model_dir: Path, lora_home: Path,
                                                             users: list[LoRAChoice],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU plugin runs activations in bfloat16 where the CPU has it; the adapter's
    products are marked to keep float32 (on other CPUs everything is float32 anyway)."""
    pytest.importorskip("openvino")
    from tailor.backends.openvino import OpenVINOBackend
    from tailor.backends.openvino_lora import OpenVINOLoRABackend, lora_openvino_dir

    monkeypatch.setenv("TAILOR_HOME", str(lora_home))
    folder = lora_openvino_dir(tiny_model_dir, layout(tiny_model_dir), "int8")
    engine = OpenVINOLoRABackend(str(folder), batch_size=4)
    products = {op.get_friendly_name(): op.get_rt_info()["runtimePrecision"].astype(str)
                for op in engine._compiled.get_runtime_model().get_ordered_ops()
                if op.get_friendly_name().startswith("lora.") and op.get_rt_info()["layerType"].astype(str) == "MatMul"}
    assert len(products) == 2 * len(layout(tiny_model_dir)) and set(products.values()) == {"f32"}
    assert texts(engine.generate(REQUESTS[:2], lora=users[:2])) != texts(engine.generate(REQUESTS[:2]))
    with pytest.raises(ValueError, match="takes LoRA adapters as inputs"):
        OpenVINOBackend(str(folder))
