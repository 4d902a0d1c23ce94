"""Methods that packages add: a retriever is a retrieval method everywhere a method is
taken; a whole method runs in eval and serve; both show in help."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.plugins import installed_plugin

from tailor.cli import choices
from tailor.methods import METHODS, build_personalizer, parse_method
from tailor.retrieval import RETRIEVERS
from tailor.tasks import get_task
from tailor.types import HistoryRecord, Profile

TASK = get_task("LaMP-4")

LAST = ("from tailor.types import RetrievalHit\n"
        "class LastRetriever:\n"
        "    '''the user's last records, newest first'''\n"
        "    name = 'last'\n"
        "    def retrieve(self, query, profile, k):\n"
        "        return [RetrievalHit(record=r, score=0.0, rank=i)\n"
        "                for i, r in enumerate(reversed(profile.records[-k:]))]\n")

SHOUT = ("from tailor.methods import whole_method\n"
         "from tailor.personalizers.contract import Personalized\n"
         "class Shout:\n"
         "    name = 'shout'\n"
         "    def __init__(self, k, layout):\n"
         "        self.k, self.layout = k, layout\n"
         "    def personalize(self, task, text, profile):\n"
         "        said = ' / '.join(r.text() for r in profile.records[:self.k])\n"
         "        return Personalized(messages=({'role': 'user', 'content': f'{said} | {text.upper()}'},),\n"
         "                            granularity='user')\n"
         "shout = whole_method('shout', lambda k, layout: Shout(k, layout), help='the input, shouted')\n")


def test_a_retriever_added_by_entry_point_is_a_method_everywhere(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with installed_plugin(tmp_path, monkeypatch, "tailor_test_retriever", LAST,
                          {"tailor.retrievers": {"last": "tailor_test_retriever:LastRetriever"}}, [RETRIEVERS]):
        spec = parse_method("persona+last:lamp")
        assert spec.retrieval.name == "last" and spec.has("persona") and not spec.needs("adapters")
        assert METHODS.method("last").help == "the user's last records, newest first"
        assert "last" in choices.method_help() and "last" in choices.method_help(served=True)
        profile = Profile("u", tuple(HistoryRecord(str(i), {"title": f"t{i}", "text": f"x{i}"}) for i in range(3)))
        decided = build_personalizer("last", TASK, k=1, count_tokens=len).personalize(TASK, "input", profile)
        assert decided.retrieved == ("2",)
    assert "last" not in METHODS


def test_a_whole_method_added_by_entry_point_runs_in_eval_and_serve(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from tailor.backends.echo import EchoBackend
    from tailor.server import ServeConfig, create_app

    with installed_plugin(tmp_path, monkeypatch, "tailor_test_method", SHOUT,
                          {"tailor.methods": {"shout": "tailor_test_method:shout"}}, [METHODS]):
        spec = parse_method("shout:dialogue")
        assert spec.whole is not None and str(spec) == "shout:dialogue" and not spec.needs("embedder")
        assert "shout" in choices.method_help(served=True)
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


def test_a_registered_object_that_is_not_a_method_is_refused(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with installed_plugin(tmp_path, monkeypatch, "tailor_test_bad_method", "thing = object()\n",
                          {"tailor.methods": {"thing": "tailor_test_bad_method:thing"}}, [METHODS]), \
            pytest.raises(TypeError, match="is not a tailor.methods.Method"):
        parse_method("thing")
