"""tailor eval's library function, end to end with the scripted backend."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tailor.backends.echo import EchoBackend
from tailor.data.lamp import read_outputs
from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.types import GenerationRequest

TOPICS = ["volcano eruption", "football final", "stock market", "election results", "rocket launch", "flood warning"]


def write_headline_task(folder: Path, users: int = 4) -> Path:
    """A LaMP-4 split where each user's profile holds one headline per topic, and each
    question is an article on one topic whose gold is that user's headline on it."""
    questions, golds = [], []
    for u in range(users):
        profile = [
            {"id": f"u{u}-{t}", "title": f"{topic} story by writer{u}", "text": f"all about the {topic} today",
             "date": f"2020-01-{t + 1:02d}"}
            for t, topic in enumerate(TOPICS)
        ]
        topic_index = (u * 2 + 1) % len(TOPICS)
        topic = TOPICS[topic_index]
        question_id = f"q{u}"
        questions.append({"id": question_id, "user_id": f"user{u}", "profile": profile,
                          "input": f"Generate a headline for the following article: news on the {topic} now"})
        golds.append({"id": question_id, "output": f"{topic} story by writer{u}"})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dev_questions.json").write_text(json.dumps(questions), encoding="utf-8")
    (folder / "dev_outputs.json").write_text(json.dumps({"task": "LaMP_4", "golds": golds}), encoding="utf-8")
    return folder


def copy_first_title(request: GenerationRequest) -> str:
    """A scripted model that answers with the first quoted title in its prompt, if any."""
    prompt = "\n".join(m["content"] for m in request.messages)
    match = re.search(r'"([^"]+)" is the title', prompt)
    return match.group(1) if match else "no idea"


def test_retrieval_reaches_the_model_and_the_metrics(tmp_path: Path) -> None:
    data = write_headline_task(tmp_path / "data")
    config = EvalConfig(task="LaMP-4", data=str(data), methods=("none", "bm25:lamp", "recency"),
                        backend="echo", n_resamples=200)
    report = evaluate(config, backend=EchoBackend(copy_first_title), progress=None)
    by_method = {r.method: r for r in report.results}
    assert report.n == 4
    # bm25 finds the profile headline on the question's topic, which is the gold.
    assert by_method["bm25:lamp"].metrics["rouge-1"] == pytest.approx(1.0)
    assert by_method["none"].metrics["rouge-1"] == pytest.approx(0.0)
    # recency shows the latest item (the last topic), which is the gold for no question.
    assert by_method["recency"].metrics["rouge-1"] < 1.0
    comparison = by_method["bm25:lamp"].versus_none["rouge-1"]
    assert comparison["delta"] == pytest.approx(1.0)
    assert comparison["p_better"] == pytest.approx(1.0)
    low, high = by_method["bm25:lamp"].ci95["rouge-1"]
    assert low <= by_method["bm25:lamp"].metrics["rouge-1"] <= high
    assert by_method["bm25:lamp"].granularity == {"user": 4}
    assert by_method["none"].granularity == {"global": 4}


def test_outputs_files_results_json_and_contract(tmp_path: Path) -> None:
    data = write_headline_task(tmp_path / "data")
    out = tmp_path / "run"
    config = EvalConfig(task="LaMP_4", data=str(data), methods=("none", "bm25"), backend="echo",
                        out=str(out), n_resamples=100)
    report = evaluate(config, backend=EchoBackend(copy_first_title), progress=None)
    task, predictions = read_outputs(out / "bm25_outputs.json")
    assert task == "LaMP_4"  # what the official evaluator reads
    assert set(predictions) == {"q0", "q1", "q2", "q3"}
    saved = json.loads((out / "results.json").read_text())
    assert saved["task"] == "LaMP-4" and saved["split"] == "dev" and saved["n"] == 4
    assert [r["method"] for r in saved["results"]] == ["none", "bm25"]
    for result in saved["results"]:
        assert set(result["metrics"]) >= {"rouge-1", "rouge-L"}
        assert set(result["ci95"]) == set(result["metrics"])
        assert isinstance(result["seconds"], float)
    assert saved["config"]["methods"] == ["none", "bm25"]
    assert saved["tailor_version"]
    assert "git_commit" in saved
    assert report.to_json()["results"][1]["metrics"] == saved["results"][1]["metrics"]


def test_limit_takes_the_first_examples_in_file_order(tmp_path: Path) -> None:
    data = write_headline_task(tmp_path / "data", users=5)
    backend = EchoBackend(copy_first_title)
    report = evaluate(EvalConfig(task="LaMP-4", data=str(data), methods=("bm25",), backend="echo", limit=2,
                                 n_resamples=50), backend=backend, progress=None)
    assert report.n == 2
    prompts = [r.messages[-1]["content"] for r in backend.requests]
    assert len(prompts) == 2 and "volcano" not in prompts[0]  # q0's topic is TOPICS[1]
    assert "football final" in prompts[0]


class FailingBackend(EchoBackend):
    """Answers ``allowed`` requests, then fails as a crashed process would."""

    def __init__(self, allowed: int) -> None:
        super().__init__(copy_first_title)
        self.allowed = allowed

    def generate(self, requests):  # type: ignore[no-untyped-def]
        if len(self.requests) + len(requests) > self.allowed:
            raise RuntimeError("killed")
        return super().generate(requests)


def test_a_killed_run_resumes_from_saved_predictions(tmp_path: Path) -> None:
    data = write_headline_task(tmp_path / "data", users=6)
    out = tmp_path / "run"
    config = EvalConfig(task="LaMP-4", data=str(data), methods=("bm25",), backend="echo", out=str(out),
                        batch_size=2, n_resamples=50)
    with pytest.raises(RuntimeError, match="killed"):
        evaluate(config, backend=FailingBackend(allowed=4), progress=None)
    saved = (out / "predictions" / "bm25.jsonl").read_text().splitlines()
    assert len(saved) == 4
    # A kill in the middle of a write leaves a torn last line; it must be dropped, not crash.
    with (out / "predictions" / "bm25.jsonl").open("a") as handle:
        handle.write('{"id": "q4", "outp')
    resumed = EchoBackend(copy_first_title)
    report = evaluate(config, backend=resumed, progress=None)
    assert len(resumed.requests) == 2  # only q4 and q5 were predicted again
    assert report.results[0].metrics["rouge-1"] == pytest.approx(1.0)
    lines = (out / "predictions" / "bm25.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == [f"q{i}" for i in range(6)]


def test_results_json_keeps_the_methods_of_earlier_runs_into_the_same_folder(tmp_path: Path) -> None:
    data = write_headline_task(tmp_path / "data", users=4)
    out = tmp_path / "run"

    def run(*methods: str, limit: int | None = None) -> dict:
        evaluate(EvalConfig(task="LaMP-4", data=str(data), methods=methods, backend="echo", out=str(out),
                            n_resamples=50, limit=limit), backend=EchoBackend(copy_first_title), progress=None)
        return json.loads((out / "results.json").read_text())

    first = run("none", "recency")
    saved = run("bm25", "recency")  # recency measured again: this run's result replaces the earlier one
    assert [r["method"] for r in saved["results"]] == ["none", "bm25", "recency"]
    assert saved["config"]["methods"] == ["none", "bm25", "recency"]
    assert saved["results"][0] == first["results"][0]
    # On other examples, the earlier results are not this run's: only this run's are kept.
    assert [r["method"] for r in run("bm25", limit=2)["results"]] == ["bm25"]


def test_an_out_folder_refuses_a_run_with_other_settings(tmp_path: Path) -> None:
    data = write_headline_task(tmp_path / "data")
    out = tmp_path / "run"
    evaluate(EvalConfig(task="LaMP-4", data=str(data), methods=("none",), backend="echo", out=str(out), k=1,
                        n_resamples=50), backend=EchoBackend(), progress=None)
    with pytest.raises(ValueError, match="k differ"):
        evaluate(EvalConfig(task="LaMP-4", data=str(data), methods=("none",), backend="echo", out=str(out), k=2,
                            n_resamples=50), backend=EchoBackend(), progress=None)


def test_likelihood_scoring_sends_the_label_set(tmp_path: Path) -> None:
    data = Path(__file__).parents[1] / "fixtures" / "lamp" / "LaMP_3"
    backend = EchoBackend()
    report = evaluate(EvalConfig(task="LaMP-3", data=str(data), methods=("none", "bm25"), backend="echo",
                                 scoring="likelihood", n_resamples=50), backend=backend, progress=None)
    assert all(r.candidates == ("1", "2", "3", "4", "5") for r in backend.requests)
    assert set(report.results[0].metrics) == {"mae", "rmse"}


def test_bad_config_is_rejected_before_any_work() -> None:
    with pytest.raises(ValueError, match="unknown method 'bm99'"):
        EvalConfig(task="LaMP-4", data="x", methods=("bm99",))
    with pytest.raises(ValueError, match="k must be at least 1"):
        EvalConfig(task="LaMP-4", data="x", k=0)
