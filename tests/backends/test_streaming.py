"""Streaming backends: the stop-string hold-back, and each backend's stream against its generate."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.backends.streams import drain

from tailor.backends.contract import StopFilter, StreamingBackend, apply_stop, cut_stream
from tailor.backends.echo import EchoBackend
from tailor.types import GenerationRequest


def ask(text: str = "Write a headline about the harbour.", *, max_new_tokens: int = 12, stop: tuple[str, ...] = (),
        user_id: str | None = None) -> GenerationRequest:
    return GenerationRequest(({"role": "user", "content": text},), max_new_tokens=max_new_tokens, stop=stop,
                             user_id=user_id)


def filtered(pieces: list[str], stop: tuple[str, ...], *, strip: bool = False) -> list[str]:
    """What a StopFilter sends after each piece, then at the end."""
    cut = StopFilter(stop, strip=strip)
    return [cut.push(piece) for piece in pieces] + [cut.finish()]


# -- the stop-string hold-back -------------------------------------------------------------------


def test_without_stop_strings_every_piece_goes_out_at_once() -> None:
    assert filtered(["Hello", " wor", "ld"], ()) == ["Hello", " wor", "ld", ""]


def test_a_stop_string_split_across_pieces_is_never_sent() -> None:
    # "EN" might begin "END": held back until "D" settles it; nothing after it is sent.
    assert filtered(["one two E", "N", "D three"], ("END",)) == ["one two ", "", "", ""]


def test_text_that_only_looked_like_a_stop_string_is_released() -> None:
    cut = StopFilter(("END",))
    assert cut.push("the E") == "the "
    assert cut.push("N") == ""
    assert cut.push("ds here") == "ENds here"
    assert not cut.stopped
    assert cut.finish() == ""


def test_the_hold_back_is_shorter_than_the_longest_stop_string() -> None:
    cut = StopFilter(("###", "\n\n"))
    assert cut.push("abc##") == "abc"  # "##" could begin "###"
    assert cut.push("\n") == "##"  # "\n" could begin "\n\n"; "##\n" cannot begin "###"
    assert cut.push("x") == "\nx"
    assert cut.finish() == ""


def test_the_earliest_of_several_stop_strings_wins() -> None:
    # "b" completes first, but "abc" began earlier and ends the text there.
    assert "".join(filtered(["xa", "b", "c tail"], ("b", "abc"))) == "x"
    # The same stop strings, when "abc" does not complete: cut at "b".
    assert "".join(filtered(["xa", "b", "d tail"], ("b", "abc"))) == "xa"


def test_the_filter_says_when_a_stop_string_appeared() -> None:
    cut = StopFilter(("\nUser:", "</s>"))
    assert cut.push("Sure.\nUs") == "Sure."
    assert not cut.stopped
    assert cut.push("er: next") == ""
    assert cut.stopped
    assert cut.push("more") == ""


def test_a_reply_ending_on_a_partial_stop_string_keeps_it() -> None:
    assert filtered(["done EN"], ("END",)) == ["done ", "EN"]


def test_strip_drops_outer_whitespace_and_keeps_inner() -> None:
    assert filtered(["  ", " Hi", " ", " there  ", "\n"], (), strip=True) == ["", "Hi", "", "  there", "", ""]


def test_the_pieces_join_to_apply_stop_of_the_whole_text() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice("ab c\n") for _ in range(rng.randint(0, 16)))
        stop = tuple("".join(rng.choice("ab c") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(0, 3)))
        strip = rng.random() < 0.5
        cuts = sorted(rng.sample(range(len(text) + 1), rng.randint(0, len(text))))
        pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)])]
        expected = apply_stop(text, stop)
        assert "".join(filtered(pieces, stop, strip=strip)) == (expected.strip() if strip else expected), (
            text, stop, pieces)


def test_cut_stream_stops_reading_at_a_stop_string() -> None:
    read = []

    def source() -> Iterator[str]:
        for piece in ["a", "b", "STOP", "c", "d"]:
            read.append(piece)
            yield piece

    pieces, text = drain(cut_stream(source(), ("STOP",)))
    assert (pieces, text, read) == (["a", "b"], "ab", ["a", "b", "STOP"])


# -- echo --------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_", [
    ask("one two three four"),
    ask("one two three four", max_new_tokens=2),
    ask("one two. three four", stop=(".",)),
    ask("say it END and more", stop=("D a", "xyz")),
    ask(""),
], ids=["plain", "max-tokens", "stop", "stop-across-words", "empty"])
def test_echo_streams_the_text_it_generates(request_: GenerationRequest) -> None:
    backend = EchoBackend()
    assert isinstance(backend, StreamingBackend)
    expected = backend.generate([request_])[0]
    pieces, result = drain(backend.stream(request_))
    assert "".join(pieces) == result.text == expected.text
    assert result.tokens == expected.tokens
    if len(expected.text.split()) > 1:
        assert len(pieces) > 1


def test_echo_refuses_to_stream_candidates() -> None:
    request = GenerationRequest(({"role": "user", "content": "pick"},), candidates=("a", "b"))
    with pytest.raises(ValueError, match="candidates"):
        next(EchoBackend().stream(request))


# -- an OpenAI-compatible server -----------------------------------------------------------------


def test_openai_streams_the_text_it_generates() -> None:
    pytest.importorskip("httpx")
    from tailor.backends.openai import OpenAIBackend
    from tailor.testing.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer(reply="Hello there, general Kenobi. You are a bold one") as server:
        backend = OpenAIBackend(server.url, backoff=0.001)
        for request in (ask(max_new_tokens=6), ask(stop=(".",)), ask(stop=("bold", "Ken", "x", "y", "Kenobi."))):
            expected = backend.generate([request])[0]
            pieces, result = drain(backend.stream(request))
            assert len(pieces) > 1
            assert "".join(pieces) == result.text == expected.text
            assert result.tokens == expected.tokens  # from the server's usage chunk
        body = server.chat_requests[-1].body
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        backend.close()


def test_openai_retries_a_stream_that_failed_before_it_began() -> None:
    pytest.importorskip("httpx")
    from tailor.backends.openai import OpenAIBackend, OpenAIBackendError
    from tailor.testing.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer(reply="fine thanks") as server, \
            OpenAIBackend(server.url, model="fake-model", backoff=0.001) as backend:
        server.fail(1, status=503)
        assert drain(backend.stream(ask()))[1].text == "fine thanks"
        assert len(server.chat_requests) == 2
        server.fail(1, status=400, message="bad request")
        with pytest.raises(OpenAIBackendError, match="bad request"):
            drain(backend.stream(ask()))


# -- transformers, on a tiny random model ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir: Path) -> Any:
    pytest.importorskip("torch")
    from tailor.backends.hf import TransformersBackend

    return TransformersBackend(str(tiny_model_dir), batch_size=2)


@pytest.mark.parametrize("request_", [
    ask(max_new_tokens=20),
    ask("Tell me a story.", max_new_tokens=3),
    ask(max_new_tokens=20, stop=("ies",)),
], ids=["plain", "max-tokens", "stop"])
def test_transformers_streams_the_text_it_generates(tiny_backend: Any, request_: GenerationRequest) -> None:
    assert isinstance(tiny_backend, StreamingBackend)
    expected = tiny_backend.generate([request_])[0]
    pieces, result = drain(tiny_backend.stream(request_))
    assert "".join(pieces) == result.text == expected.text
    assert result.tokens == expected.tokens
    assert not tiny_backend._lock.locked()


def test_transformers_streams_with_a_users_adapter(tiny_backend: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    from tailor.adapters.store import AdapterKey, AdapterStore
    from tailor.store import SQLiteProfileStore
    from tailor.testing.adapters import random_adapter, save_adapter

    profiles = SQLiteProfileStore(tmp_path / "profiles.sqlite")
    profiles.set_attributes("alice", {})
    adapters = AdapterStore(profiles)
    save_adapter(adapters, AdapterKey("user", "alice", "LaMP-4"), random_adapter(tiny_model_dir, 1), tiny_model_dir)
    view = tiny_backend.with_adapters(adapters, "LaMP-4")
    for user_id in ("alice", "bob"):  # bob has no adapter: the base model
        request = ask(max_new_tokens=12, user_id=user_id)
        expected = view.generate([request])[0]
        pieces, result = drain(view.stream(request))
        assert "".join(pieces) == result.text == expected.text
        assert result.tokens == expected.tokens
        assert view.last_resolutions[0].label == ("user" if user_id == "alice" else "none")
    assert view.generate([ask(max_new_tokens=12, user_id="alice")])[0].text != expected.text


def test_closing_a_transformers_stream_early_frees_the_model(tiny_backend: Any) -> None:
    request = ask(max_new_tokens=200)
    stream = tiny_backend.stream(request)
    assert next(stream)
    assert tiny_backend._lock.locked()
    stream.close()  # the client went away
    assert not tiny_backend._lock.locked()
    # The backend answers again, and the same as before.
    short = ask(max_new_tokens=8)
    assert drain(tiny_backend.stream(short))[1].text == tiny_backend.generate([short])[0].text


def test_transformers_refuses_to_stream_candidates(tiny_backend: Any) -> None:
    request = GenerationRequest(({"role": "user", "content": "pick"},), candidates=("a", "b"))
    with pytest.raises(ValueError, match="candidates"):
        next(tiny_backend.stream(request))
    assert not tiny_backend._lock.locked()
