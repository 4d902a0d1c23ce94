"""``tailor eval-memory``: evidence recall against hand-made cases, the JSON layout, and
LoCoMo's answer F1 against hand-computed values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailor.backends.echo import EchoBackend
from tailor.cli.main import main
from tailor.data.locomo import read_locomo
from tailor.evaluation.memory import evaluate_method, evidence_recall
from tailor.memory.episodes import EpisodeMethod
from tailor.metrics.locomo import locomo_f1, token_f1

CONVERSATION = [{
    "sample_id": "conv-t",
    "conversation": {
        "speaker_a": "Ana", "speaker_b": "Rui",
        "session_1_date_time": "9:00 am on 2 March, 2023",
        "session_1": [
            {"speaker": "Ana", "dia_id": "D1:1", "text": "I started learning the violin."},
            {"speaker": "Rui", "dia_id": "D1:2", "text": "Which teacher do you have?"},
            {"speaker": "Ana", "dia_id": "D1:3", "text": "It is Clara, she is great."},
        ],
        "session_2_date_time": "6:00 pm on 9 June, 2023",
        "session_2": [
            {"speaker": "Rui", "dia_id": "D2:1", "text": "We moved to a bigger flat in Porto."},
            {"speaker": "Ana", "dia_id": "D2:2", "text": "Congratulations on the new home!"},
        ],
    },
    "qa": [
        {"question": "What instrument is Ana learning?", "answer": "violin", "evidence": ["D1:1"], "category": 4},
        {"question": "Where did Rui move?", "answer": "Porto", "evidence": ["D2:1"], "category": 4},
        {"question": "What is the name of Ana's violin teacher?", "answer": "Clara", "evidence": ["D1:3"],
         "category": 4},
        {"question": "What car does Ana drive?", "adversarial_answer": "a van", "evidence": ["D2:2"], "category": 5},
    ],
}]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(CONVERSATION))
    return path


def test_evidence_recall_hand_made() -> None:
    assert evidence_recall(["a", "b", "c"], ["b"], 1) == 0.0
    assert evidence_recall(["a", "b", "c"], ["b"], 2) == 1.0
    assert evidence_recall(["a", "b", "c"], ["a", "z"], 5) == 0.5
    assert evidence_recall(["a", "b"], ["a", "a"], 1) == 1.0  # a repeated id counts once
    with pytest.raises(ValueError, match="evidence"):
        evidence_recall(["a"], [], 1)


def test_bm25_recall_on_a_hand_made_conversation(data_file: Path) -> None:
    metrics = evaluate_method(read_locomo(data_file), EpisodeMethod.parse("bm25"))
    # Q1 and Q2 share a word with their evidence turn only; Q3 ("violin teacher") ranks D1:1
    # (violin) and D1:2 (teacher) but not D1:3, which names neither.
    assert metrics["recall@1"] == pytest.approx(2 / 3)
    assert metrics["recall@10"] == pytest.approx(2 / 3)
    assert metrics["questions"] == 3 and metrics["adversarial_questions"] == 1
    assert metrics["ms_p95"] >= metrics["ms_p50"] >= 0.0


def test_context_finds_the_answer_to_a_question_in_the_previous_turn(data_file: Path) -> None:
    metrics = evaluate_method(read_locomo(data_file), EpisodeMethod.parse("bm25+context"))
    assert metrics["recall@5"] == pytest.approx(1.0)  # D1:3 carries "teacher" from D1:2


def test_cli_json_layout(data_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval-memory", "--data", str(data_file), "--method", "bm25,memory", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 4
    assert [result["method"] for result in report["results"]] == [
        "bm25", "memory (bm25+speaker+date+caption+context=2)"]
    for result in report["results"]:
        assert {"recall@1", "recall@5", "recall@10", "ms_p50", "ms_p95"} <= set(result["metrics"])


def test_cli_rejects_an_unknown_method(data_file: Path) -> None:
    with pytest.raises(SystemExit):
        main(["eval-memory", "--data", str(data_file), "--method", "bm26"])


def test_qa_scores_the_backends_answers(data_file: Path) -> None:
    answers = {"instrument": "violin", "move": "to Porto", "teacher": "Clara", "car": "no information available"}

    def reply(request: object) -> str:
        question = request.messages[-1]["content"].rsplit("Question:", 1)[1]  # type: ignore[attr-defined]
        return next(answer for word, answer in answers.items() if word in question)

    metrics = evaluate_method(read_locomo(data_file), EpisodeMethod.parse("bm25"), backend=EchoBackend(reply))
    assert metrics["f1"] == pytest.approx((1.0 + token_f1("to Porto", "Porto") + 1.0) / 3)
    assert metrics["adversarial_f1"] == 1.0


def test_locomo_f1_hand_computed() -> None:
    assert token_f1("The violin", "violin") == 1.0  # articles dropped
    assert token_f1("to Porto", "Porto") == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert token_f1("running", "runs") == 1.0  # Porter stems
    assert locomo_f1("pottery, painting", "painting, pottery, camping", 1) == pytest.approx(2 / 3)
    assert locomo_f1("Clara", "Clara; her teacher", 3) == 1.0
    assert locomo_f1("Not mentioned in the conversation", "", 5) == 1.0
    assert locomo_f1("a van", "", 5) == 0.0
