"""The scripted echo backend, and loading backends by name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tailor.backends import BACKENDS, Backend, load_backend
from tailor.backends.echo import EchoBackend
from tailor.registry import UnknownNameError
from tailor.types import GenerationRequest


def request(*user_turns: str, system: str | None = None, max_new_tokens: int = 64, stop: tuple[str, ...] = (),
            candidates: tuple[str, ...] | None = None, user_id: str | None = None) -> GenerationRequest:
    messages = [{"role": "system", "content": system}] if system is not None else []
    for i, content in enumerate(user_turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": content})
    return GenerationRequest(messages=tuple(messages), max_new_tokens=max_new_tokens, stop=stop,
                             candidates=candidates, user_id=user_id)


def texts(backend: EchoBackend, *requests: GenerationRequest) -> list[str]:
    return [result.text for result in backend.generate(list(requests))]


# -- scripted answers ----------------------------------------------------------------------------


def test_a_scripted_list_is_answered_in_turn_and_cycles_across_calls() -> None:
    backend = EchoBackend(["first", "second"])
    assert texts(backend, request("a"), request("b"), request("c")) == ["first", "second", "first"]
    assert texts(backend, request("d")) == ["second"]


def test_a_scripted_function_gets_each_request() -> None:
    backend = EchoBackend(lambda req: f"{req.user_id}: {req.messages[-1]['content']}")
    assert texts(backend, request("hello", user_id="alice"), request("bye", user_id="bob")) == [
        "alice: hello", "bob: bye"]


def test_scripted_text_still_obeys_stop_and_length_limits() -> None:
    backend = EchoBackend(["Trees line the river\nExplanation: the article is about trees"])
    assert texts(backend, request("x", stop=("\n",))) == ["Trees line the river"]
    assert texts(backend, request("x", max_new_tokens=2)) == ["Trees line"]


def test_an_empty_script_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        EchoBackend([]).generate([request("x")])


def test_requests_are_recorded_in_order() -> None:
    backend = EchoBackend()
    first, second = request("one"), request("two")
    backend.generate([first, second])
    assert backend.requests == [first, second]


# -- echoing -------------------------------------------------------------------------------------


def test_without_a_script_the_last_user_message_is_echoed() -> None:
    backend = EchoBackend()
    conversation = request("earlier question", "earlier answer", "the real input", system="be brief")
    assert texts(backend, conversation) == ["the real input"]


def test_the_echo_is_cut_to_max_new_tokens_words() -> None:
    result = EchoBackend().generate([request("one two three four five", max_new_tokens=3)])[0]
    assert result.text == "one two three"
    assert result.tokens == 3


def test_the_echo_is_cut_at_the_first_stop_string() -> None:
    backend = EchoBackend()
    assert texts(backend, request("headline here\nmore text", stop=("\n",))) == ["headline here"]
    assert texts(backend, request("a b ### c END d", stop=("END", "###"))) == ["a b "]
    assert texts(backend, request("no stop in here", stop=("\n",))) == ["no stop in here"]


# -- candidate scoring ---------------------------------------------------------------------------


def test_candidate_scoring_prefers_the_candidate_the_prompt_mentions_most() -> None:
    prompt = request("Earlier tags: comedy, comedy, action, dark comedy. Which tag fits?", system="Tag movies.",
                     candidates=("action", "comedy", "romance"))
    result = EchoBackend().generate([prompt])[0]
    assert result.text == "comedy"
    assert result.scores is not None
    assert set(result.scores) == {"action", "comedy", "romance"}
    assert result.scores["comedy"] > result.scores["action"] > result.scores["romance"] == 0.0


def test_candidate_scoring_reads_the_whole_prompt_and_is_case_insensitive() -> None:
    prompt = request("Earlier: ACTION", "ok", "now answer", system="Action films only.",
                     candidates=("comedy", "action"))
    assert texts(EchoBackend(), prompt) == ["action"]


def test_candidate_scoring_breaks_ties_by_candidate_order() -> None:
    prompt = request("nothing relevant", candidates=("[2]", "[1]"))
    result = EchoBackend().generate([prompt])[0]
    assert result.text == "[2]"
    assert result.scores == {"[2]": 0.0, "[1]": 0.0}


def test_candidate_requests_ignore_the_script() -> None:
    backend = EchoBackend(["scripted"])
    assert texts(backend, request("comedy", candidates=("action", "comedy")), request("x")) == ["comedy", "scripted"]


# -- loading backends ----------------------------------------------------------------------------


def test_load_backend_echo() -> None:
    backend = load_backend("echo")
    assert isinstance(backend, EchoBackend)
    assert isinstance(backend, Backend)
    assert backend.count_tokens("one two three") > 0


def test_load_backend_passes_the_options_a_backend_takes_and_drops_the_rest() -> None:
    backend = load_backend("echo", script=["scripted"], batch_size=8)
    assert isinstance(backend, EchoBackend)
    assert texts(backend, request("x")) == ["scripted"]


def test_load_backend_rejects_unknown_names_listing_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError) as error:
        load_backend("nope")
    assert isinstance(error.value, ValueError)
    for name in ["default", "echo", "transformers"]:
        assert name in str(error.value)
    assert BACKENDS.names() == ["default", "default-fp32", "default-onnx", "echo", "llamacpp", "onnx", "openai", "openvino",
                               "ray", "transformers"]


def test_load_backend_transformers_needs_a_path() -> None:
    with pytest.raises(ValueError, match="model directory"):
        load_backend("transformers")


def test_load_backend_transformers_without_a_path_fails_before_importing_torch() -> None:
    code = (
        "import sys\n"
        "from tailor.backends import load_backend\n"
        "try:\n"
        "    load_backend('transformers')\n"
        "except ValueError:\n"
        "    pass\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
