"""The LongLaMP tasks end to end: ``tailor eval`` on LongLaMP-layout fixtures writes
predictions in LongLaMP's format, and ``tailor score`` gives METEOR, ROUGE-1 and ROUGE-L."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailor.cli.main import main
from tailor.tasks import get_task
from tailor.types import HistoryRecord

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "longlamp"
DATA = {"LongLaMP-2": ("abstract_generation_user", "val.json"), "LongLaMP-3": ("topic_writing_temporal", "val.json"),
        "LongLaMP-4": ("product_review_user", "val.jsonl")}


@pytest.mark.parametrize("name", list(DATA))
def test_eval_writes_longlamp_predictions_that_score_reads(name: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("nltk")
    folder, golds = DATA[name]
    out = tmp_path / "run"
    code = main(["eval", "--task", name, "--data", str(FIXTURES / folder), "--backend", "echo", "--method", "none,bm25",
                 "--limit", "3", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    if code != 0 and "WordNet" in captured.err:
        pytest.skip("no WordNet database (apt-get install wordnet-base)")
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert [r["method"] for r in result["results"]] == ["none", "bm25"]
    assert set(result["results"][1]["metrics"]) == {"rouge-1", "rouge-L", "meteor"}
    predictions = json.loads((out / "bm25_outputs.json").read_text())
    assert predictions["task"] == name.replace("-", "_")  # LongLaMP_2: LaMP's outputs layout
    assert [p["id"] for p in predictions["golds"]] == [str(i) for i in range(len(predictions["golds"]))]
    # The echo backend answers with the prompt: its multi-line answer is kept whole.
    assert all("\n" in p["output"] for p in predictions["golds"])

    assert main(["score", "--task", name, "--golds", str(FIXTURES / folder / golds),
                 "--preds", str(out / "bm25_outputs.json"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["task"] == name and scored["n"] == len(predictions["golds"])
    assert scored["metrics"] == pytest.approx(result["results"][1]["metrics"])


def test_long_form_defaults() -> None:
    for name in (*DATA, "news-openings"):
        task = get_task(name)
        assert task.kind == "generation" and task.stop == () and task.generation_stop == ()
        assert [m.name for m in task.scoring_metrics] == ["rouge-1", "rouge-L", "meteor"]
        assert task.generation_tokens == task.max_new_tokens >= 192
        # Paragraphs are kept: an announcing line goes, every line of the text stays.
        assert task.parse("Sure! Here is the response:\nFirst paragraph.\n\nSecond paragraph.") == \
            "First paragraph.\nSecond paragraph."


def test_items_are_shown_as_longlamp_shows_them() -> None:
    abstract = HistoryRecord("p", {"title": "T", "abstract": "A."})
    assert get_task("LongLaMP-2").render_item(abstract) == '"A." is the abstract for the title "T"'
    assert get_task("LongLaMP-2").item_turn(abstract) == ('Generate an abstract for the title "T".', "A.")
    post = HistoryRecord("p", {"summary": "S", "content": "C"})
    assert get_task("LongLaMP-3").render_item(post) == '"S" is a summary for "C"'
    review = HistoryRecord("p", {"overall": "4", "summary": "S", "description": "D", "reviewText": "R"})
    assert get_task("LongLaMP-4").render_item(review) == \
        '"4" is a rating for the product with description "D". "S" is summary for "R"'
    assert get_task("LongLaMP-4").item_turn(review)[1] == "R"
    assert get_task("LongLaMP-4").long_field(review) == "reviewText"


def test_a_longlamp_folder_says_which_splits_it_holds(tmp_path: Path) -> None:
    task = get_task("LongLaMP-4")
    folder = FIXTURES / "product_review_user"
    assert task.has_split(folder, "train") and task.has_split(folder, "dev") and task.has_golds(folder, "dev")
    assert not task.has_split(folder, "test") and not task.has_split(tmp_path, "train")
    # A LaMP folder's splits are its {split}_questions.json files.
    lamp = get_task("LaMP-4")
    assert not lamp.has_split(folder, "train")
    (tmp_path / "train_questions.json").write_text("[]")
    assert lamp.has_split(tmp_path, "train") and not lamp.has_golds(tmp_path, "train")
