"""Examples side by side: chosen by a rule from the saved predictions, with what was retrieved."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tailor.backends.echo import EchoBackend
from tailor.evaluation.plots import load_run
from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.evaluation.side_by_side import side_by_side
from tailor.types import GenerationRequest

TOPICS = ("harbour", "election", "storm")


def _headline_task(folder: Path) -> Path:
    """Three writers with one headline per topic; each question's gold shares all (q0), half
    (q1) or none (q2) of its words with the headline bm25 retrieves for it."""
    golds = {"q0": "storm story by writer0", "q1": "storm story of nobody else", "q2": "nothing alike here"}
    questions = []
    for u, (question_id, _) in enumerate(golds.items()):
        profile = [{"id": f"u{u}-{t}", "title": f"{topic} story by writer{u}", "text": f"all about the {topic}",
                    "date": f"2020-01-{t + 1:02d}"} for t, topic in enumerate(TOPICS)]
        questions.append({"id": question_id, "user_id": f"user{u}", "profile": profile,
                          "input": "Generate a headline for the following article: news on the storm now"})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dev_questions.json").write_text(json.dumps(questions), encoding="utf-8")
    outputs = {"task": "LaMP_4", "golds": [{"id": i, "output": g} for i, g in golds.items()]}
    (folder / "dev_outputs.json").write_text(json.dumps(outputs), encoding="utf-8")
    return folder


def _copy_first_title(request: GenerationRequest) -> str:
    prompt = "\n".join(m["content"] for m in request.messages)
    match = re.search(r'"([^"]+)" is the title', prompt)
    return match.group(1) if match else "no idea"


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    evaluate(EvalConfig(task="LaMP-4", data=str(_headline_task(tmp_path / "data")), methods=("none", "bm25:lamp"),
                        backend="echo", k=1, out=str(out), n_resamples=50),
             backend=EchoBackend(_copy_first_title), progress=None)
    return out


def test_the_largest_gain_comes_first_then_the_median_one(run: Path) -> None:
    examples = side_by_side(load_run(run), "bm25:lamp")
    assert [e.example_id for e in examples] == ["q0", "q1"]  # gains 1.0, then the median of (0.0, ~0.5)
    best, typical = examples
    assert best.why.startswith("largest gain of bm25:lamp over none: rouge-1 +1.0000")
    assert typical.why.startswith("typical (median gain of bm25:lamp over none)")
    assert best.answers == {"none": "no idea", "bm25:lamp": "storm story by writer0"}
    assert best.scores["bm25:lamp"] == pytest.approx(1.0) and best.scores["none"] == pytest.approx(0.0)
    assert best.gold == "storm story by writer0" and best.user_id == "user0"
    assert best.input.endswith("news on the storm now")


def test_the_retrieved_item_is_the_users_own_record(run: Path) -> None:
    saved = [json.loads(line) for line in (run / "predictions" / "bm25-lamp.jsonl").read_text().splitlines()]
    for example in side_by_side(load_run(run), "bm25:lamp"):
        row = next(r for r in saved if r["id"] == example.example_id)
        assert [r.id for r in example.retrieved] == row["retrieved"]
        assert example.retrieved[0].fields["title"] == f"storm story by writer{example.user_id[-1]}"


def test_a_method_the_run_does_not_hold_is_named(run: Path) -> None:
    with pytest.raises(ValueError, match=r"holds no method dense \(it holds none, bm25:lamp\)"):
        side_by_side(load_run(run), "dense")
