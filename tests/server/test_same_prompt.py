"""The server serves what ``tailor eval`` measures (issue 11's "done when").

The same user, records and input go through ``tailor eval``'s path (the personalizer
:meth:`~tailor.methods.MethodSpec.build` makes, run by the evaluation runner's
loop) and through the real app (``/v1/chat/completions`` with ``user``), for every
retrieval and prompting method, on one store. A scripted backend records the messages it
is sent; they must be identical, apart from the chat additions that
:data:`~tailor.chat.personalizer.CHAT_ADDITIONS` names, each checked here by name.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailor.backends.echo import EchoBackend
from tailor.chat.personalizer import CHAT_ADDITIONS, EPISODES_HEADER
from tailor.embeddings import TRAINED_METADATA
from tailor.embeddings.hashing import HashingEmbedder
from tailor.embeddings.minilm import minilm_path
from tailor.evaluation.runner import EvalConfig, run_method
from tailor.methods import METHODS as REGISTRY
from tailor.methods import MethodSpec, build_personalizer, parse_method
from tailor.methods.auto import is_auto, with_selector
from tailor.personalizers.selector import FEATURES, LinearGain, Selector
from tailor.personas.tenants import build_personas_for_tenant
from tailor.prompting.builder import PromptBudget
from tailor.prompting.refine import STYLE_INSTRUCTION
from tailor.prompting.summary import SUMMARY_INSTRUCTION
from tailor.server import ServeConfig
from tailor.tasks.chat import CHAT_TASK
from tailor.types import GenerationRequest, Profile, TaskExample

Messages = tuple[dict[str, str], ...]



def servable_methods() -> list[str]:
    """Every registered method that serve serves, alone (the others are refused by serve with
    a reason: tests/server/test_methods.py), and compositions of notes, retrievals and layouts."""
    alone = [name for name in REGISTRY.names()
             if REGISTRY.method(name).serve_refusal is None and REGISTRY.method(name).role != "modifier"]
    return [*alone, "bm25:dialogue", "summary+bm25", "persona+hybrid", "summary+persona+recency",
            "persona+recency+dense"]


METHODS = servable_methods()
INPUTS = ["any tips for hiking with a dog in the summer?", "learner notebook for the cello", "hello"]
USERS = {
    "alice": ["Hiking the Alps with my dog every summer", "my grandmother's tomato sauce recipe",
              "Notes on learning the cello", "A summer marathon, run with friends"],
    "bob": ["cello and violin scales before the concert", "a new bow for my cello", "orchestra tour dates"],
    "carol": ["baking bread with a sourdough starter", "tomato and basil pasta for dinner", "bread rolls"],
    "dan": ["rye bread and a tomato salad", "dinner party recipes", "slow cooked stew"],
}
SERVING = ServeConfig(store=":memory:")


def scripted(request: GenerationRequest) -> str:
    last = request.messages[-1]["content"]
    if SUMMARY_INSTRUCTION in last:
        return "Writes about " + last.split("\n")[1].lstrip("- ")[:30]
    if "write alike" in last:  # a persona description
        return "Musicians." if "cello" in last else "Cooks."
    if STYLE_INSTRUCTION in last:  # refine's style note, from the items it is shown (in their order)
        return "Short lines, first about " + last.split("\n")[1].lstrip("- ")[:30]
    return "ok"


@pytest.fixture(scope="session")
def auto_selector(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A selector for ``auto`` that picks by profile size: bm25 for 4 records or more
    (alice), recency below (bob, the newcomer); dense and hybrid never, though their
    features are computed."""
    zero, one = (0.0,) * len(FEATURES), (1.0,) * len(FEATURES)
    size = FEATURES.index("profile_items")
    by_size = tuple(10.0 if i == size else 0.0 for i in range(len(FEATURES)))
    gains = {"bm25": LinearGain(zero, one, by_size, -15.0),  # 10 * (log1p(size) - 1.5)
             "recency": LinearGain(zero, one, tuple(-c for c in by_size), 15.0),
             "dense": LinearGain(zero, one, zero, -1.0), "hybrid": LinearGain(zero, one, zero, -1.0)}
    path = tmp_path_factory.mktemp("selector") / "selector.json"
    Selector("chat", ("none", "bm25", "recency", "dense", "hybrid"), gains, margin=0.0).save(path)
    return str(path)


def with_what_it_needs(method: str, request: pytest.FixtureRequest) -> str | MethodSpec:
    """``method``, with a selector when it is ``auto`` (served with --selector)."""
    spec = parse_method(method)
    if any(is_auto(part) for part in spec.parts):
        return with_selector(spec, request.getfixturevalue("auto_selector"))
    return method


def served(make_client: Callable[..., TestClient], method: str | MethodSpec,
           **options: Any) -> tuple[TestClient, EchoBackend]:
    backend = EchoBackend(scripted)
    client = make_client(method=method, backend=backend, embedder="hashing", **options)
    for number, (user, texts) in enumerate(USERS.items()):
        assert client.put(f"/v1/users/{user}", json={}).status_code == 200
        records = [{"id": f"{user}-{i}", "text": text, "date": f"2024-0{1 + (i + number) % 9}-1{i}"}
                   for i, text in enumerate(texts)]
        assert client.post(f"/v1/users/{user}/records", json={"records": records}).status_code == 200
    assert client.put("/v1/users/newcomer", json={}).status_code == 200  # cold start: no records
    service = client.app.state.service  # type: ignore[attr-defined]
    if service.users.summaries is not None:
        assert service.users.summaries.flush(10)  # written in the background; the compared prompts have them
    if (method if isinstance(method, MethodSpec) else parse_method(method)).has("persona"):
        build_personas_for_tenant(service.store, HashingEmbedder(), backend, tenant=None, k=2)
    return client, backend


def sent(backend: EchoBackend, text: str, since: int) -> Messages:
    """The first request for ``text`` the backend got after request number ``since`` (the
    chat's: memory extraction only starts once it is answered)."""
    request = next(r for r in backend.requests[since:] if r.messages and text in r.messages[-1]["content"])
    return tuple(dict(m) for m in request.messages)


def through_eval(method: str | MethodSpec, client: TestClient, backend: EchoBackend, user: str, text: str,
                 k: int | None = None) -> tuple[Messages, str]:
    """The messages ``tailor eval`` sends for this method, user and input, and the granularity."""
    service = client.app.state.service  # type: ignore[attr-defined]
    config = EvalConfig(task="chat", data=".", methods=(method,), backend="echo", embedder="hashing", k=k,
                        batch_size=1, input_tokens=SERVING.input_tokens, context_tokens=SERVING.context_tokens)
    personalizer = build_personalizer(method, CHAT_TASK, k=config.k, count_tokens=backend.count_tokens,
                                      budget=PromptBudget(config.input_tokens, config.context_tokens), seed=config.seed,
                                      embedder=HashingEmbedder(), store=service.store, backend=backend)
    since = len(backend.requests)
    rows = run_method(CHAT_TASK, [TaskExample(id="q", user_id=user, input=text, profile=Profile(user))],
                      personalizer, backend, service.store, config)
    return sent(backend, text, since), str(rows["q"]["granularity"])


def through_serve(client: TestClient, backend: EchoBackend, user: str, messages: Sequence[dict[str, str]]) -> Messages:
    since = len(backend.requests)
    response = client.post("/v1/chat/completions", json={"model": "m", "user": user, "messages": list(messages)})
    assert response.status_code == 200, response.text
    return sent(backend, messages[-1]["content"], since)


@pytest.mark.parametrize("method", METHODS)
def test_served_prompts_are_evals_prompts(method: str, make_client: Callable[..., TestClient],
                                          request: pytest.FixtureRequest) -> None:
    check_served_prompts_are_evals_prompts(with_what_it_needs(method, request), make_client)


def check_served_prompts_are_evals_prompts(method: str | MethodSpec, make_client: Callable[..., TestClient]) -> None:
    """For every user and input: the messages serve sends are eval's (the same-prompt check a
    plug-in method can be put through too)."""
    client, backend = served(make_client, method, memory=False)
    personalized = 0
    for user in ("alice", "bob", "newcomer"):
        for text in INPUTS:
            expected, granularity = through_eval(method, client, backend, user, text)
            got = through_serve(client, backend, user, [{"role": "user", "content": text}])
            if granularity == "global":
                # "as-is": nothing of the user was used, so the conversation goes as sent.
                assert got == ({"role": "user", "content": text},), (method, user, text)
            else:
                assert got == expected, (method, user, text)
                personalized += 1
                if method == "refine":  # a note was written, the same one on both paths
                    assert "Follow this user's conventions: Short lines" in got[0]["content"]
    assert personalized or method == "none"


@pytest.mark.parametrize("method", ["bm25", "hybrid", "summary+recency"])
def test_an_explicit_k_is_taken_alike(method: str, make_client: Callable[..., TestClient]) -> None:
    client, backend = served(make_client, method, memory=False, k=1)
    for text in INPUTS:
        expected, _ = through_eval(method, client, backend, "alice", text, k=1)
        assert through_serve(client, backend, "alice", [{"role": "user", "content": text}]) == expected
        assert expected[-1]["content"].count("\n- ") <= 1


def test_served_prompts_differ_from_evals_by_the_named_chat_additions_only(
        make_client: Callable[..., TestClient]) -> None:
    assert CHAT_ADDITIONS == ("client-system", "memories", "episodes", "conversation", "as-is")
    client, backend = served(make_client, "summary+hybrid", k_memories=3, k_episodes=4)
    service = client.app.state.service  # type: ignore[attr-defined]
    said = "I live in Lisbon and I keep a dog"
    assert through_serve(client, backend, "alice", [{"role": "user", "content": said}])
    assert client.post("/v1/users/alice/memories:flush").json()["done"] is True
    text = "any tips for hiking with a dog in the summer?"
    expected, _ = through_eval("summary+hybrid", client, backend, "alice", text)
    conversation = [{"role": "system", "content": "Answer in French."},
                    {"role": "user", "content": "hello there"}, {"role": "assistant", "content": "bonjour"},
                    {"role": "user", "content": text}]
    got = through_serve(client, backend, "alice", conversation)
    context = service.users.personalizer.context("alice", text)
    assert context.memories and context.episodes  # both additions are in play

    system, *rest = got
    # "conversation": the earlier turns, then eval's personalized turn(s), unchanged.
    assert rest == [*conversation[1:3], *expected[1:]]
    # "client-system": the client's system message in place of the task's instruction.
    assert expected[0]["content"] == CHAT_TASK.instruction
    head, _, additions = system["content"].partition("\n\n")
    assert head == "Answer in French."
    # "memories", then "episodes": blocks after it, and nothing else.
    memories, _, episodes = additions.partition("\n\n" + EPISODES_HEADER + "\n")
    assert memories.startswith(CHAT_TASK.memory_header + "\n- ")
    assert "Lisbon" in memories and said in episodes


def test_auto_serves_the_option_eval_chose(make_client: Callable[..., TestClient], auto_selector: str) -> None:
    """``auto`` with a selector: eval records each input's choice, and serve shows that option's prompt."""
    method = with_selector(parse_method("auto"), auto_selector)
    client, backend = served(make_client, method, memory=False)
    service = client.app.state.service  # type: ignore[attr-defined]
    personalizer = build_personalizer(method, CHAT_TASK, count_tokens=backend.count_tokens, embedder=HashingEmbedder(),
                                      store=service.store, backend=backend)
    config = EvalConfig(task="chat", data=".", methods=(method,), backend="echo", embedder="hashing", batch_size=1)
    for user, option in (("alice", "bm25"), ("bob", "recency")):
        rows = run_method(CHAT_TASK, [TaskExample(id="q", user_id=user, input=INPUTS[0], profile=Profile(user))],
                          personalizer, backend, service.store, config)
        assert rows["q"]["notes"] == {"chosen": option}
        expected, _ = through_eval(option, client, backend, user, INPUTS[0])
        assert through_serve(client, backend, user, [{"role": "user", "content": INPUTS[0]}]) == expected


def test_auto_without_a_selector_is_not_served(make_client: Callable[..., TestClient]) -> None:
    with pytest.raises(ValueError, match="--selector"):
        make_client(method="auto", backend=EchoBackend(scripted), embedder="hashing")


def test_a_trained_retriever_is_served_as_eval_ranks_with_it(make_client: Callable[..., TestClient],
                                                             tmp_path: Path) -> None:
    """``dense:PATH`` (a folder tailor train-retriever writes; here the packaged weights under
    another name) ranks with its own embedder on both paths, not the server's."""
    pytest.importorskip("sentence_transformers")
    folder = tmp_path / "retriever"
    shutil.copytree(minilm_path(), folder)
    (folder / TRAINED_METADATA).write_text(json.dumps({"name": "trained-for-test"}), encoding="utf-8")
    check_served_prompts_are_evals_prompts(f"dense:{folder}", make_client)
