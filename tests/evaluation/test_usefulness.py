"""Per-item usefulness from the model (issue 23, item 1): the log-likelihood of the gold with
one item in the prompt minus without it, on a scripted backend whose log-likelihoods are
known by hand."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from tailor.backends.contract import approximate_token_count
from tailor.cli.main import main
from tailor.evaluation.usefulness import UsefulnessConfig, item_usefulness, read_usefulness
from tailor.types import GenerationRequest, GenerationResult

PREFIX = "Generate a headline for the following article: "
BASE = -6.0
WEIGHTS = {"apples": 1.5, "rocks": -0.5, "gravel": -2.25}
"""What an item mentioning each word adds to the gold's log-likelihood."""


class LikelihoodScript:
    """Scores the one candidate at BASE plus WEIGHTS of the words the prompt holds; records each batch."""

    name = "likelihood-script"

    def __init__(self) -> None:
        self.batches: list[list[GenerationRequest]] = []

    def count_tokens(self, text: str) -> int:
        return approximate_token_count(text)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.batches.append(list(requests))
        results = []
        for request in requests:
            assert request.candidates is not None and len(request.candidates) == 1
            prompt = " ".join(m["content"] for m in request.messages)
            score = BASE + sum(weight for word, weight in WEIGHTS.items() if word in prompt)
            results.append(GenerationResult(text=request.candidates[0], scores={request.candidates[0]: score}))
        return results

    @property
    def requests(self) -> list[GenerationRequest]:
        return [request for batch in self.batches for request in batch]


def headline_data(folder: Path, split: str = "train") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    questions = [
        {"id": "q1", "user_id": "u1", "input": PREFIX + "orchard news about the fruit harvest",
         "profile": [{"id": "a", "title": "Apples", "text": "apples in the orchard"},
                     {"id": "r", "title": "Rocks", "text": "rocks and stones"},
                     {"id": "p", "title": "Plain", "text": "nothing of note"}]},
        {"id": "q2", "user_id": "u2", "input": PREFIX + "the quarry reopens",
         "profile": [{"id": "g", "title": "Gravel", "text": "gravel from the quarry"},
                     {"id": "a2", "title": "Apples", "text": "apples again"}]},
        {"id": "q3", "user_id": "u3", "input": PREFIX + "a user with no history", "profile": []},
    ]
    (folder / f"{split}_questions.json").write_text(json.dumps(questions), encoding="utf-8")
    (folder / f"{split}_outputs.json").write_text(json.dumps({"task": "LaMP_4", "golds": [
        {"id": "q1", "output": "Harvest is in"}, {"id": "q2", "output": "Quarry open"},
        {"id": "q3", "output": "Hello"}]}), encoding="utf-8")
    return folder


def rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_usefulness_is_the_gold_likelihood_with_the_item_minus_without(tmp_path: Path) -> None:
    data = headline_data(tmp_path / "data")
    out = tmp_path / "useful.jsonl"
    backend = LikelihoodScript()
    report = item_usefulness(UsefulnessConfig(task="LaMP-4", data=str(data), out=str(out), top_n=3, batch_size=4),
                             backend=backend, progress=None)
    assert read_usefulness(out) == {"q1": {"a": 1.5, "r": -0.5, "p": 0.0}, "q2": {"g": -2.25, "a2": 1.5}}
    by_item = {(row["id"], row["item"]): row for row in rows(out)}
    assert by_item[("q1", "a")]["rank"] == 0  # BM25's best: it shares "orchard" with the article
    assert by_item[("q2", "g")]["rank"] == 0
    assert by_item[("q1", "a")]["loglik"] == BASE + 1.5 and by_item[("q1", "a")]["loglik_without"] == BASE
    # One request without an item and one per item, for the two questions with a profile.
    assert report.examples == 2 and report.items == 5 and report.requests == 7 and report.skipped == 1
    assert all(len(batch) <= 4 for batch in backend.batches) and len(backend.batches) == 2
    assert all(r.candidates == ("Harvest is in",) for r in backend.requests[:4])
    bare = backend.requests[0].messages[-1]["content"]
    assert bare == PREFIX + "orchard news about the fruit harvest"  # the task's prompt without any item
    cost = json.loads((tmp_path / "useful.jsonl.run.json").read_text())["cost"]
    assert cost["examples"] == 2 and cost["requests"] == 7
    assert report.to_json()["requests_per_example"] == 3.5


def test_top_n_limits_the_candidates(tmp_path: Path) -> None:
    data = headline_data(tmp_path / "data")
    out = tmp_path / "useful.jsonl"
    item_usefulness(UsefulnessConfig(task="LaMP-4", data=str(data), out=str(out), top_n=1),
                    backend=LikelihoodScript(), progress=None)
    assert read_usefulness(out) == {"q1": {"a": 1.5}, "q2": {"g": -2.25}}


def test_a_rerun_resumes_and_a_torn_file_is_repaired(tmp_path: Path) -> None:
    data = headline_data(tmp_path / "data")
    out = tmp_path / "useful.jsonl"
    config = UsefulnessConfig(task="LaMP-4", data=str(data), out=str(out), top_n=3, limit=1)
    item_usefulness(config, backend=LikelihoodScript(), progress=None)
    assert set(read_usefulness(out)) == {"q1"}
    # A kill in the middle of q1's rows: its rows are dropped and measured again.
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:2]) + lines[2][:10], encoding="utf-8")
    rest = LikelihoodScript()
    report = item_usefulness(UsefulnessConfig(task="LaMP-4", data=str(data), out=str(out), top_n=3),
                             backend=rest, progress=None)
    assert report.examples == 2 and report.total_examples == 3
    assert read_usefulness(out) == {"q1": {"a": 1.5, "r": -0.5, "p": 0.0}, "q2": {"g": -2.25, "a2": 1.5}}
    again = LikelihoodScript()
    assert item_usefulness(UsefulnessConfig(task="LaMP-4", data=str(data), out=str(out), top_n=3),
                           backend=again, progress=None).examples == 0
    assert again.batches == []


def test_a_file_made_with_other_settings_is_refused(tmp_path: Path) -> None:
    data = headline_data(tmp_path / "data")
    out = tmp_path / "useful.jsonl"
    item_usefulness(UsefulnessConfig(task="LaMP-4", data=str(data), out=str(out), top_n=3),
                    backend=LikelihoodScript(), progress=None)
    with pytest.raises(ValueError, match="top_n"):
        item_usefulness(UsefulnessConfig(task="LaMP-4", data=str(data), out=str(out), top_n=2),
                        backend=LikelihoodScript(), progress=None)


def test_a_backend_without_likelihoods_is_refused(tmp_path: Path) -> None:
    data = headline_data(tmp_path / "data")

    class TextOnly(LikelihoodScript):
        def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
            return [GenerationResult(text="x") for _ in requests]

    with pytest.raises(ValueError, match="log-likelihood"):
        item_usefulness(UsefulnessConfig(task="LaMP-4", data=str(data), out=str(tmp_path / "u.jsonl")),
                        backend=TextOnly(), progress=None)


def test_the_command_reports_the_cost_per_question(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = headline_data(tmp_path / "data")
    out = tmp_path / "useful.jsonl"
    assert main(["usefulness", "--task", "LaMP-4", "--data", str(data), "--split", "train", "--out", str(out),
                 "--top-n", "2", "--backend", "echo", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 2 and report["items"] == 4 and report["requests_per_example"] == 3.0
    assert "seconds_per_example" in report
    assert set(read_usefulness(out)) == {"q1", "q2"}
