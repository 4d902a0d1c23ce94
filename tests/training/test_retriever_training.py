"""The retriever trained from the model's feedback (issue 23, item 2): its inputs come from the
train split alone, it is saved as a folder and loaded by name (``dense:PATH``), it ranks, and
it learns the model's preference: on a scripted model to which only items about apples are
useful, the trained retriever puts them first where all-MiniLM-L6-v2 ranks by topic."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from tailor.backends.contract import approximate_token_count
from tailor.cli.main import main
from tailor.evaluation.usefulness import UsefulnessConfig, item_usefulness, rank_by_usefulness
from tailor.methods import BuildContext, parse_method
from tailor.tasks import get_task
from tailor.training.retriever import METADATA, RetrieverTrainingConfig, distillation_set, train_retriever
from tailor.types import GenerationRequest, GenerationResult, HistoryRecord, Profile

pytest.importorskip("sentence_transformers")
pytest.importorskip("datasets")
pytest.importorskip("accelerate")

PREFIX = "Generate a headline for the following article: "
TOPICS = ["the city council vote", "the football final", "a new bridge", "the winter storm", "a jazz festival",
          "the school budget", "a museum opening", "the river flood"]


class AppleLover:
    """A scripted model to which an item helps exactly when it is about apples."""

    name = "apple-lover"

    def count_tokens(self, text: str) -> int:
        return approximate_token_count(text)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = []
        for request in requests:
            assert request.candidates is not None
            prompt = " ".join(m["content"] for m in request.messages)
            score = -5.0 + (2.0 if "apples" in prompt else 0.0)
            results.append(GenerationResult(text=request.candidates[0], scores={request.candidates[0]: score}))
        return results


def split_data(folder: Path, split: str, offset: int, n: int) -> None:
    """``n`` questions: each about a topic, with a profile of one item on that topic, one about
    apples (on another topic's words) and two others."""
    questions, golds = [], []
    for number in range(offset, offset + n):
        topic = TOPICS[number % len(TOPICS)]
        other = TOPICS[(number + 3) % len(TOPICS)]
        profile = [
            {"id": f"{number}-same", "title": f"Report on {topic}", "text": f"More about {topic} today"},
            {"id": f"{number}-apples", "title": f"Apples sold near {other}", "text": f"apples and {other}"},
            {"id": f"{number}-x", "title": f"Notes on {TOPICS[(number + 5) % len(TOPICS)]}", "text": "a short note"},
            {"id": f"{number}-y", "title": f"Diary of {TOPICS[(number + 6) % len(TOPICS)]}", "text": "another note"},
        ]
        questions.append({"id": f"{split}{number}", "user_id": f"u{number}", "input": PREFIX + f"News on {topic}",
                          "profile": profile})
        golds.append({"id": f"{split}{number}", "output": f"Headline {number}"})
    (folder / f"{split}_questions.json").write_text(json.dumps(questions), encoding="utf-8")
    (folder / f"{split}_outputs.json").write_text(json.dumps({"task": "LaMP_4", "golds": golds}), encoding="utf-8")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ropg")
    data = root / "data"
    data.mkdir()
    split_data(data, "train", 0, 24)
    split_data(data, "dev", 100, 16)
    paths = {"data": data, "train": root / "train.jsonl", "dev": root / "dev.jsonl", "model": root / "model"}
    for split in ("train", "dev"):
        item_usefulness(UsefulnessConfig(task="LaMP-4", data=str(data), out=str(paths[split]), split=split, top_n=4),
                        backend=AppleLover(), progress=None)
    train_retriever(RetrieverTrainingConfig(task="LaMP-4", data=str(data), useful=str(paths["train"]),
                                            out=str(paths["model"]), epochs=3, batch_size=8, learning_rate=1e-4))
    return paths


def test_training_inputs_are_the_train_questions_and_their_usefulness(trained: dict[str, Path]) -> None:
    inputs = distillation_set(get_task("LaMP-4"), trained["data"], trained["train"])
    assert set(inputs.ids) == {f"train{n}" for n in range(24)}
    assert inputs.candidates == 4
    first = inputs.ids.index("train0")
    assert inputs.queries[first] == f"News on {TOPICS[0]}"
    apples = next(i for i, text in enumerate(inputs.documents[first]) if "apples" in text.lower())
    assert inputs.usefulness[first][apples] == pytest.approx(2.0)
    assert sorted(inputs.usefulness[first])[:-1] == [0.0, 0.0, 0.0]
    metadata = json.loads((trained["model"] / METADATA).read_text())
    assert metadata["split"] == "train" and metadata["question_ids"] == list(inputs.ids)
    assert not any(question.startswith("dev") for question in metadata["question_ids"])


def test_a_dev_usefulness_file_or_foreign_questions_are_refused(trained: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="measured on the 'dev' split"):
        distillation_set(get_task("LaMP-4"), trained["data"], trained["dev"])
    # A train-labelled file holding a dev question (edited by hand) is refused by id.
    forged = tmp_path / "forged.jsonl"
    lines = trained["train"].read_text().splitlines()
    row = json.loads(lines[0]) | {"id": "dev100"}
    forged.write_text("\n".join([*lines, json.dumps(row)]) + "\n")
    (tmp_path / "forged.jsonl.run.json").write_text((trained["train"].parent / "train.jsonl.run.json").read_text())
    with pytest.raises(ValueError, match="'dev100' is not in .* train split"):
        distillation_set(get_task("LaMP-4"), trained["data"], forged)


def test_the_folder_loads_by_name_and_ranks(trained: dict[str, Path]) -> None:
    spec = parse_method(f"dense:{trained['model']}")
    assert spec.retrieval.model == str(trained["model"]) and str(parse_method(str(spec))) == str(spec)
    task = get_task("LaMP-4")
    retriever = spec.retrieval.build_retriever(BuildContext(task, len))
    assert retriever is not None
    embedder = retriever.embedder  # type: ignore[attr-defined]
    assert embedder.name == json.loads((trained["model"] / METADATA).read_text())["name"]
    assert embedder.name != "all-MiniLM-L6-v2"
    profile = Profile("u", (HistoryRecord("1", {"title": "Report on the jazz festival"}),
                            HistoryRecord("2", {"title": "Apples sold near the school budget"}),
                            HistoryRecord("3", {"title": "Notes on a new bridge"})))
    hits = retriever.retrieve("News on the jazz festival", profile, 3)
    assert sorted(hit.record.id for hit in hits) == ["1", "2", "3"]
    assert hits[0].record.id == "2"  # learned: apples first, whatever the topic


def test_the_trained_retriever_beats_its_starting_embedder_on_dev_usefulness(trained: dict[str, Path]) -> None:
    check = rank_by_usefulness("LaMP-4", trained["data"], trained["dev"], ["dense", f"dense:{trained['model']}"])
    assert check.questions == 16
    base, learned = check.ndcg["dense"]["ndcg@1"], check.ndcg[f"dense:{trained['model']}"]["ndcg@1"]
    assert base < 0.5 and learned == 1.0
    assert check.versus_first[f"dense:{trained['model']}"]["ndcg@1"]["low"] > 0


def test_eval_runs_the_trained_retriever_and_the_cli_checks_it(trained: dict[str, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    method = f"dense:{trained['model']}"
    assert main(["eval", "--task", "LaMP-4", "--data", str(trained["data"]), "--backend", "echo", "--method",
                 f"none,{method}", "--limit", "4", "--out", str(tmp_path / "run"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert method in json.dumps(result)
    assert main(["eval-retriever", "--task", "LaMP-4", "--data", str(trained["data"]), "--useful",
                 str(trained["dev"]), "--method", f"bm25,{method}"]) == 0
    out = capsys.readouterr().out
    assert "16 questions with a useful item" in out and f"| {method} | 1.0000" in out
