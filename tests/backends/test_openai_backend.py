"""The OpenAI-compatible backend, against tailor's fake chat server on loopback."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tailor.backends import load_backend
from tailor.backends.openai import OpenAIBackend, OpenAIBackendError, first_token_scores, match_candidate
from tailor.registry import MissingExtraError
from tailor.testing.fake_openai import FakeOpenAIServer
from tailor.types import GenerationRequest

LAMP_6 = Path(__file__).resolve().parents[1] / "fixtures" / "lamp" / "LaMP_6"


def ask(text: str, *, system: str | None = None, **options: Any) -> GenerationRequest:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return GenerationRequest(messages=tuple(messages), **options)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TAILOR_OPENAI_MODEL", "TAILOR_OPENAI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeOpenAIServer]]:
    servers: list[FakeOpenAIServer] = []

    def start(reply: Any = "ok", **options: Any) -> FakeOpenAIServer:
        server = FakeOpenAIServer(reply, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def connect() -> Iterator[Callable[..., OpenAIBackend]]:
    backends: list[OpenAIBackend] = []

    def open_backend(server: FakeOpenAIServer | str, **options: Any) -> OpenAIBackend:
        options.setdefault("backoff", 0.001)
        options.setdefault("model", "fake-model")
        url = server if isinstance(server, str) else server.url
        backend = OpenAIBackend(url, **options)
        backends.append(backend)
        return backend

    yield open_backend
    for backend in backends:
        backend.close()


# -- a round trip ------------------------------------------------------------------------------------


def test_a_reply_round_trip_sends_the_request_fields(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve("Dear team, STOP here. and more")
    backend = connect(server)
    stops = ("<a>", "<b>", "<c>", "<d>", "STOP", "\n\n")
    [result] = backend.generate([ask("Write to the team.", system="Be brief.", max_new_tokens=12, stop=stops,
                                     user_id="alice")])
    # The server applies the first four stop strings; the backend applies the rest.
    assert result.text == "Dear team,"
    assert result.tokens == 6  # what the server generated (its usage), not what survived the cut
    [received] = server.chat_requests
    assert received.method == "POST" and received.path == "/v1/chat/completions"
    assert received.body == {
        "model": "fake-model",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Write to the team."}],
        "max_tokens": 12,
        "temperature": 0,
        "stop": ["<a>", "<b>", "<c>", "<d>"],
        "user": "alice",
    }
    assert "authorization" not in received.headers


def test_a_request_without_user_or_stop_sends_neither_and_max_tokens_cuts(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve("one two three four five")
    [result] = connect(server).generate([ask("count", max_new_tokens=3)])
    assert result.text == "one two three"
    body = server.chat_requests[0].body
    assert "user" not in body and "stop" not in body
    assert connect(server).generate([]) == []


def test_results_keep_request_order_and_the_concurrency_limit_holds(serve, connect) -> None:  # type: ignore[no-untyped-def]
    count = 12

    def later_is_faster(body: dict[str, Any]) -> float:
        index = int(body["messages"][-1]["content"].split()[-1])
        return 0.01 * (count - index)

    server = serve(lambda body: body["messages"][-1]["content"].upper(), delay=later_is_faster)
    backend = connect(server, concurrency=3)
    results = backend.generate([ask(f"item {i}") for i in range(count)])
    assert [r.text for r in results] == [f"ITEM {i}" for i in range(count)]
    assert server.max_in_flight == 3


def test_the_concurrency_limit_holds_across_concurrent_callers(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve(lambda body: body["messages"][-1]["content"], delay=0.03)
    backend = connect(server, concurrency=2)
    outputs: dict[str, list[str]] = {}

    def call(name: str) -> None:
        outputs[name] = [r.text for r in backend.generate([ask(f"{name} {i}") for i in range(4)])]

    threads = [threading.Thread(target=call, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert outputs == {name: [f"{name} {i}" for i in range(4)] for name in ("a", "b")}
    assert server.max_in_flight == 2


# -- retries -------------------------------------------------------------------------------------------


def test_503s_are_retried_until_success(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve("fine")
    server.fail(2, status=503)
    assert connect(server, max_retries=2).generate([ask("hi")])[0].text == "fine"
    assert len(server.chat_requests) == 3


def test_a_429_waits_for_retry_after(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve("fine")
    server.fail(1, status=429, retry_after=0.3)
    began = time.monotonic()
    assert connect(server).generate([ask("hi")])[0].text == "fine"
    assert time.monotonic() - began >= 0.3
    assert len(server.chat_requests) == 2


def test_a_dropped_connection_is_retried(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve("fine")
    server.drop(2)
    assert connect(server).generate([ask("hi")])[0].text == "fine"
    assert len(server.chat_requests) == 3


def test_a_400_is_not_retried_and_says_what_the_server_said(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve("fine")
    server.fail(1, status=400, message="max_tokens is too large")
    with pytest.raises(OpenAIBackendError) as error:
        connect(server).generate([ask("hi")])
    message = str(error.value)
    assert f"{server.url}/chat/completions" in message
    assert "HTTP 400" in message and "max_tokens is too large" in message
    assert error.value.status == 400
    assert len(server.chat_requests) == 1


def test_exhausted_retries_name_the_url_and_status(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve("fine")
    server.fail(5, status=503, message="model is loading")
    with pytest.raises(OpenAIBackendError) as error:
        connect(server, max_retries=2).generate([ask("hi")])
    message = str(error.value)
    assert f"{server.url}/chat/completions" in message
    assert "3 attempt" in message and "HTTP 503" in message and "model is loading" in message
    assert error.value.status == 503
    assert len(server.chat_requests) == 3


def test_an_unreachable_server_fails_after_its_retries(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve()
    url = server.url
    server.stop()  # nothing listens on that port now
    with pytest.raises(OpenAIBackendError, match="2 attempt.*Connect") as error:
        connect(url, max_retries=1).generate([ask("hi")])
    assert url in str(error.value)


def test_one_failed_request_fails_the_batch(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve(lambda body: "bad" if "2" in body["messages"][-1]["content"] else "good")
    server.fail(1, status=422, message="unprocessable")
    with pytest.raises(OpenAIBackendError, match="422"):
        connect(server, concurrency=2).generate([ask(f"n{i}") for i in range(4)])


# -- configuration -------------------------------------------------------------------------------------


def test_the_api_key_comes_from_the_environment(serve, connect, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    server = serve("fine", api_key="sekret")
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    monkeypatch.setenv("TAILOR_OPENAI_API_KEY", "sekret")
    assert connect(server).generate([ask("hi")])[0].text == "fine"
    assert server.requests[-1].headers["authorization"] == "Bearer sekret"
    monkeypatch.delenv("TAILOR_OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", "sekret")
    assert connect(server).generate([ask("hi")])[0].text == "fine"
    assert connect(server, api_key="sekret").generate([ask("hi")])[0].text == "fine"


def test_a_wrong_key_is_a_401_without_retries(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve("fine", api_key="sekret")
    with pytest.raises(OpenAIBackendError, match="HTTP 401: invalid API key"):
        connect(server, api_key="nope").generate([ask("hi")])
    assert len(server.requests) == 1


def test_the_model_is_discovered_once_from_the_server(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve("fine", models=("first-model", "second-model"))
    backend = connect(server, model=None)
    backend.generate([ask("a"), ask("b")])
    backend.generate([ask("c")])
    assert [r.path for r in server.requests if r.method == "GET"] == ["/v1/models"]
    assert {r.body["model"] for r in server.chat_requests} == {"first-model"}
    assert backend.model_id == f"first-model at {server.url}"


def test_the_model_comes_from_the_environment(serve, connect, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    server = serve("fine", models=("first-model", "second-model"))
    monkeypatch.setenv("TAILOR_OPENAI_MODEL", "second-model")
    connect(server, model=None).generate([ask("a")])
    assert [r.method for r in server.requests] == ["POST"]
    assert server.chat_requests[0].body["model"] == "second-model"


def test_a_server_listing_no_models_asks_for_one(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve("fine", models=())
    with pytest.raises(OpenAIBackendError, match="TAILOR_OPENAI_MODEL"):
        connect(server, model=None).generate([ask("a")])


def test_load_backend_needs_a_url_and_checks_it() -> None:
    with pytest.raises(ValueError, match="base URL"):
        load_backend("openai")
    with pytest.raises(ValueError, match="http"):
        load_backend("openai:ftp://example.invalid/v1")
    with pytest.raises(ValueError, match="concurrency"):
        OpenAIBackend("http://127.0.0.1:9/v1", concurrency=0)


def test_load_backend_passes_the_url_and_options(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("fine")
    backend = load_backend(f"openai:{server.url}/", model="fake-model", batch_size=8, concurrency=2)
    assert isinstance(backend, OpenAIBackend)
    assert backend.base_url == server.url and backend.config.concurrency == 2
    assert backend.generate([ask("hi")])[0].text == "fine"
    assert backend.count_tokens("three little words") >= 3
    backend.close()


def test_a_missing_httpx_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'tailor-llm\[openai\]'"):
        OpenAIBackend("http://127.0.0.1:9/v1")


def test_importing_the_backend_does_not_import_httpx() -> None:
    code = "import sys, tailor.backends.openai; assert 'httpx' not in sys.modules, 'httpx imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- candidate scoring ---------------------------------------------------------------------------------


def test_candidates_are_scored_by_first_token_logprobs(serve, connect) -> None:  # type: ignore[no-untyped-def]
    top = {"Pos": -0.2, " positive": -2.0, "neg": -1.5, "The": -3.0}
    server = serve("The answer", top_logprobs=top)
    [result] = connect(server).generate([ask("Sentiment?", candidates=("positive", "negative", "neutral"))])
    assert result.text == "positive"
    assert result.scores is not None
    assert result.scores["positive"] == pytest.approx(math.log(math.exp(-0.2) + math.exp(-2.0)))
    assert result.scores["negative"] == pytest.approx(-1.5)
    assert result.scores["neutral"] == -math.inf
    body = server.chat_requests[0].body
    assert body["logprobs"] is True and body["top_logprobs"] == 20


def test_candidates_sharing_a_first_token_are_told_apart_by_the_text(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve("Science, surely", top_logprobs={"Sci": -0.1, "Drama": -2.5})
    [result] = connect(server).generate([ask("Tag?", candidates=("sci-fi", "science", "drama"))])
    assert result.text == "science"
    assert result.scores is not None and result.scores["sci-fi"] == result.scores["science"]


def test_without_logprobs_the_text_is_mapped_to_a_candidate(serve, connect) -> None:  # type: ignore[no-untyped-def]
    # Without top_logprobs the fake ignores the logprobs fields, as servers without them do.
    server = serve(lambda body: "I think it is Negative." if "Sentiment" in body["messages"][-1]["content"]
                   else "no idea")
    results = connect(server).generate([ask("Sentiment?", candidates=("positive", "negative")),
                                        ask("Again?", candidates=("positive", "negative"))])
    assert results[0].text == "negative"
    assert results[0].scores == {"positive": -math.inf, "negative": 0.0}
    # Naming no candidate, the reply itself is the text, for the task's parser to judge.
    assert results[1].text == "no idea"
    assert results[1].scores == {"positive": -math.inf, "negative": -math.inf}


def test_a_server_rejecting_logprobs_falls_back_to_text_once(serve, connect) -> None:  # type: ignore[no-untyped-def]
    server = serve("positive", reject_logprobs=True)
    backend = connect(server)
    assert backend.generate([ask("Sentiment?", candidates=("positive", "negative"))])[0].text == "positive"
    assert backend.generate([ask("Sentiment?", candidates=("positive", "negative"))])[0].text == "positive"
    assert ["logprobs" in r.body for r in server.chat_requests] == [True, False, False]


def test_match_candidate_prefers_exact_then_case_then_earliest_whole_word() -> None:
    labels = ("sci-fi", "sci", "comedy", "art")
    assert match_candidate(" comedy ", labels) == "comedy"
    assert match_candidate("COMEDY", labels) == "comedy"
    assert match_candidate("Maybe Sci-Fi, or comedy", labels) == "sci-fi"
    assert match_candidate("a comedy with art", labels) == "comedy"
    assert match_candidate("a party", labels) is None


def test_first_token_scores_ignore_case_and_spaces() -> None:
    scores = first_token_scores([(" 4", -0.1), ("5", -2.0), ("", -3.0)], ("1", "4", "5"))
    assert scores == {"1": -math.inf, "4": -0.1, "5": -2.0}


# -- end to end through the command line ----------------------------------------------------------------


def test_tailor_eval_runs_against_an_openai_compatible_server(serve, capsys) -> None:  # type: ignore[no-untyped-def]
    from tailor.cli.main import main

    server = serve(lambda body: "Meeting notes for " + body.get("user", "?"))
    code = main(["eval", "--backend", f"openai:{server.url}", "--task", "LaMP-6", "--data", str(LAMP_6),
                 "--method", "none,bm25", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["task"] == "LaMP-6"
    assert [r["method"] for r in report["results"]] == ["none", "bm25"]
    assert all("rouge-1" in r["metrics"] for r in report["results"])
    questions = json.loads((LAMP_6 / "dev_questions.json").read_text())
    assert len(server.chat_requests) == 2 * len(questions) == 2 * report["n"]
    assert [r.path for r in server.requests if r.method == "GET"] == ["/v1/models"]
    assert all(r.body["model"] == "fake-model" and r.body.get("user") for r in server.chat_requests)
