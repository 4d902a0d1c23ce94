"""The one method grammar: every method eval takes, serve takes, parsed into one spec."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import tailor.retrieval
from tailor.personalizers import RetrievalPersonalizer, build_personalizer, make_retriever
from tailor.personalizers.methods import MethodSpec, parse_method, parse_methods
from tailor.registry import Registry
from tailor.tasks import get_task
from tailor.tasks.base import TaskSpec
from tailor.tasks.chat import CHAT_TASK
from tailor.types import HistoryRecord, Profile

TASK = get_task("LaMP-4")


@pytest.mark.parametrize(("text", "expected"), [
    ("none", MethodSpec()),
    ("bm25", MethodSpec("bm25")),
    ("bm25:dialogue", MethodSpec("bm25", layout="dialogue")),
    ("recency+dense", MethodSpec("recency+dense")),
    ("summary+bm25", MethodSpec("bm25", summary=True)),
    ("persona+bm25", MethodSpec("bm25", persona=True)),
    ("BM25+Persona", MethodSpec("bm25", persona=True)),
    ("persona+summary", MethodSpec(summary=True, persona=True)),
    ("summary+persona+hybrid:lamp", MethodSpec("hybrid", summary=True, persona=True, layout="lamp")),
    ("persona+recency+dense", MethodSpec("recency+dense", persona=True)),
    ("lora+bm25", MethodSpec("bm25", adapter="lora")),
    ("user-embedding", MethodSpec(adapter="user-embedding")),
    ("none+prior", MethodSpec(prior=True)),
    ("bm25+prior", MethodSpec("bm25", prior=True)),
    ("knn", MethodSpec(model_free="knn")),
    ("refine", MethodSpec(refine=True)),
])
def test_methods_parse_into_one_typed_spec_and_back(text: str, expected: MethodSpec) -> None:
    spec = parse_method(text)
    assert spec == expected
    assert parse_method(str(spec)) == spec


def test_canonical_names_keep_the_names_eval_results_use() -> None:
    for name in ("none", "bm25", "recency", "random", "dense", "hybrid", "recency+dense", "summary", "summary+bm25",
                 "persona", "refine", "lora", "lora+bm25", "user-embedding", "none+prior", "bm25+prior",
                 "profile-prior", "knn", "user-mean", "global-mean"):
        assert parse_method(name).name == name
    assert parse_method("bm25+summary").name == "summary+bm25"
    assert parse_method("hybrid+persona+summary").name == "summary+persona+hybrid"


@pytest.mark.parametrize(("text", "message"), [
    ("bm99", "unknown method 'bm99'"),
    ("summary+bm99", "unknown part 'bm99'"),
    ("bm25+dense", "2 retrievals"),
    ("bm25+bm25", "twice"),
    ("bm25:sideways", "unknown layout"),
    ("none:lamp", "takes no layout"),
    ("lora:dialogue", "takes no layout"),
    ("lora+dense", "lora comes alone"),
    ("knn+bm25", "used alone"),
    ("prior", "needs a retrieval"),
    ("summary+bm25+prior", "not with notes"),
    ("", "a method is needed"),
])
def test_bad_methods_say_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_method(text)


def test_a_list_of_methods_refuses_the_same_method_twice_in_any_spelling() -> None:
    assert [str(m) for m in parse_methods("none, bm25:lamp,persona+bm25")] == ["none", "bm25:lamp", "persona+bm25"]
    with pytest.raises(ValueError, match="listed twice"):
        parse_methods("persona+bm25,bm25+persona")


def test_k_defaults_to_the_tasks_k_everywhere() -> None:
    def k_of(task: TaskSpec, k: int | None = None) -> int:
        personalizer = build_personalizer("bm25", task, k=k, count_tokens=len)
        assert isinstance(personalizer, RetrievalPersonalizer)
        return personalizer.k

    assert k_of(TASK) == TASK.k
    assert k_of(CHAT_TASK) == CHAT_TASK.k == 3
    assert k_of(TASK, 5) == 5


def test_embedder_needs_follow_the_registered_retriever() -> None:
    assert parse_method("hybrid").needs_embedder and parse_method("recency+dense").needs_embedder
    assert parse_method("persona").needs_embedder
    assert not parse_method("summary+bm25").needs_embedder and not parse_method("none").needs_embedder


def test_a_retriever_added_by_entry_point_is_a_method_everywhere(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tailor_test_retriever.py").write_text(
        "from tailor.types import RetrievalHit\n"
        "class LastRetriever:\n"
        "    name = 'last'\n"
        "    def retrieve(self, query, profile, k):\n"
        "        return [RetrievalHit(record=r, score=0.0, rank=i)\n"
        "                for i, r in enumerate(reversed(profile.records[-k:]))]\n")
    dist_info = tmp_path / "tailor_test_retriever-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: tailor-test-retriever\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[tailor.retrievers]\nlast = tailor_test_retriever:LastRetriever\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    builtins = tailor.retrieval.RETRIEVERS
    monkeypatch.setattr(tailor.retrieval, "RETRIEVERS", Registry(
        "retriever", {name: builtins._entries[name] for name in builtins.names()}, group="tailor.retrievers"))
    spec = parse_method("persona+last:lamp")
    assert spec.retrieval == "last" and spec.persona and not spec.adapter
    assert make_retriever("last", TASK).name == "last"
    profile = Profile("u", tuple(HistoryRecord(str(i), {"title": f"t{i}", "text": f"x{i}"}) for i in range(3)))
    decided = build_personalizer("last", TASK, k=1, count_tokens=len).personalize(TASK, "input", profile)
    assert decided.retrieved == ("2",)
    monkeypatch.delitem(sys.modules, "tailor_test_retriever")


def test_a_whole_method_added_by_entry_point_runs_in_eval_and_serve(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from tailor.backends.echo import EchoBackend
    from tailor.personalizers import methods
    from tailor.server import ServeConfig, create_app

    (tmp_path / "tailor_test_method.py").write_text(
        "from tailor.personalizers.base import Personalized\n"
        "def make(task, k, layout):\n"
        "    return Shout(k, layout)\n"
        "class Shout:\n"
        "    name = 'shout'\n"
        "    def __init__(self, k, layout):\n"
        "        self.k, self.layout = k, layout\n"
        "    def personalize(self, task, text, profile):\n"
        "        said = ' / '.join(r.text() for r in profile.records[:self.k])\n"
        "        return Personalized(messages=({'role': 'user', 'content': f'{said} | {text.upper()}'},),\n"
        "                            granularity='user')\n")
    dist_info = tmp_path / "tailor_test_method-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: tailor-test-method\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[tailor.personalizers]\nshout = tailor_test_method:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(methods, "PERSONALIZERS", Registry("personalizer", {}, group="tailor.personalizers"))

    spec = parse_method("shout:dialogue")
    assert spec.plugin == "shout" and str(spec) == "shout:dialogue" and not spec.needs_embedder
    with pytest.raises(ValueError, match="used alone"):
        parse_method("shout+bm25")
    profile = Profile("u", (HistoryRecord("1", {"text": "plays the oboe"}),))
    decided = build_personalizer("shout", TASK, count_tokens=len).personalize(TASK, "hi", profile)
    assert decided.messages[-1]["content"] == "plays the oboe | HI"

    backend = EchoBackend(lambda request: " ".join(f"[{m['role']}] {m['content']}" for m in request.messages))
    with TestClient(create_app(ServeConfig(store=str(tmp_path / "s.db"), method="shout", memory=False),
                               backend=backend)) as client:
        client.put("/v1/users/u", json={})
        client.post("/v1/users/u/records", json={"records": [{"id": "1", "text": "plays the oboe"}]})
        body = {"model": "m", "user": "u", "messages": [{"role": "user", "content": "hi"}]}
        assert client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"] == (
            "[user] plays the oboe | HI")
    monkeypatch.delitem(sys.modules, "tailor_test_method")
