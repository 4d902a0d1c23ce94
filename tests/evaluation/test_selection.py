"""The ``auto`` method (issue 23, item 3): a selector fitted on train-split outcomes picks
``none`` or a retrieval method per input, and falls back to ``none`` unless an option was
clearly better on held-out training folds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tailor.backends.echo import EchoBackend
from tailor.cli.main import main
from tailor.embeddings.hashing import HashingEmbedder
from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.evaluation.selection import SelectorConfig, train_selector
from tailor.methods import BuildContext, parse_method
from tailor.methods.auto import selector_of, with_selector
from tailor.personalizers.selector import FEATURES, LinearGain, Selector, fit_selector
from tailor.tasks import get_task
from tailor.types import GenerationRequest

TOPICS = ["river trees volunteers", "bridge repairs closing", "museum maps opening", "harvest farmers record",
          "school roof summer", "marathon runners city", "library books donation", "festival music night",
          "market prices fruit", "storm power outage", "hospital wing doctors", "airport runway delays"]
PREFIX = "Generate a headline for the following article: "


def write_split(folder: Path, split: str, questions: list[dict[str, object]], golds: list[str]) -> None:
    (folder / f"{split}_questions.json").write_text(json.dumps(questions), encoding="utf-8")
    (folder / f"{split}_outputs.json").write_text(json.dumps({"task": "LaMP_4", "golds": [
        {"id": q["id"], "output": gold} for q, gold in zip(questions, golds)]}), encoding="utf-8")


def headline_data(folder: Path, *, train: int = 12, dev: int = 4) -> Path:
    """LaMP-4 questions whose gold is the title of the one profile item that shares the
    article's words (BM25's top item); the newer items (recency's) are about other topics."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, count, offset in (("train", train, 0), ("dev", dev, 100)):
        questions, golds = [], []
        for number in range(count):
            topic = TOPICS[number % len(TOPICS)]
            others = [TOPICS[(number + step) % len(TOPICS)] for step in (3, 5)]
            qid = f"{split}{number}"
            profile = [{"id": f"{qid}-match", "title": topic.title(), "text": f"{topic} earlier report",
                        "date": "2019-01-01"}]
            profile += [{"id": f"{qid}-other{i}", "title": other.title(), "text": f"{other} news",
                         "date": f"2020-0{i + 1}-01"} for i, other in enumerate(others)]
            questions.append({"id": qid, "user_id": f"u{offset + number}",
                              "input": f"{PREFIX}{topic} {split} story {number}", "profile": profile})
            golds.append(topic.title())
        write_split(folder, split, questions, golds)
    return folder


def first_title(request: GenerationRequest) -> str:
    """Answers with the title of the first item shown, or 'No idea' when none is."""
    text = request.messages[-1]["content"]
    return text.split('- "', 1)[1].split('"', 1)[0] if '- "' in text else "No idea"


def article_without_items(request: GenerationRequest) -> str:
    """Answers with the article's topic when no item is shown, and is led astray by any item."""
    text = request.messages[-1]["content"]
    if '- "' in text:
        return text.split('- "', 1)[1].split('"', 1)[0]
    return " ".join(text.split(PREFIX, 1)[-1].split()[:3]).title()


def user_texts(backend: EchoBackend) -> list[str]:
    return [r.messages[-1]["content"] for r in backend.requests]


# -- fitting on synthetic outcomes -------------------------------------------------------------


def synthetic_features(n: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(0, 3) for _ in FEATURES] for _ in range(n)]


def test_an_option_that_is_always_best_is_learned() -> None:
    rng = random.Random(1)
    x = synthetic_features(40, 0)
    outcomes = {"none": [0.2] * 40, "bm25": [0.9] * 40, "recency": [rng.uniform(0.0, 0.4) for _ in x],
                "dense": [rng.uniform(0.1, 0.5) for _ in x]}
    selector = fit_selector(x, outcomes, task="LaMP-4")
    assert selector.margin is not None
    assert {selector.choose(features) for features in synthetic_features(30, 7)} == {"bm25"}


def test_when_none_is_best_it_keeps_to_none() -> None:
    rng = random.Random(2)
    x = synthetic_features(40, 3)
    outcomes = {"none": [0.5] * 40, "bm25": [rng.uniform(0.0, 0.55) for _ in x],
                "recency": [rng.uniform(0.0, 0.45) for _ in x]}
    selector = fit_selector(x, outcomes, task="LaMP-4")
    assert {selector.choose(features) for features in synthetic_features(30, 9)} == {"none"}


def test_noise_is_not_mistaken_for_a_gain() -> None:
    rng = random.Random(4)
    x = synthetic_features(60, 5)
    outcomes = {"none": [rng.choice((0.0, 1.0)) for _ in x], "bm25": [rng.choice((0.0, 1.0)) for _ in x]}
    assert fit_selector(x, outcomes, task="LaMP-4").margin is None


def test_too_few_examples_give_none() -> None:
    selector = fit_selector(synthetic_features(2, 0), {"none": [0.0, 0.0], "bm25": [1.0, 1.0]}, task="t")
    assert selector.margin is None and selector.choose([0.0] * len(FEATURES)) == "none"


def test_a_selector_round_trips_through_its_file(tmp_path: Path) -> None:
    x = synthetic_features(20, 0)
    selector = fit_selector(x, {"none": [0.0] * 20, "bm25": [1.0] * 20}, task="LaMP-4", training={"split": "train"})
    loaded = Selector.load(selector.save(tmp_path / "s.json"))
    assert loaded == selector
    assert [loaded.choose(f) for f in x] == [selector.choose(f) for f in x]
    with pytest.raises(FileNotFoundError, match="tailor train-selector"):
        Selector.load(tmp_path / "missing.json")


def test_the_choice_follows_the_predicted_gains_and_the_margin() -> None:
    zero = (0.0,) * len(FEATURES)
    gains = {"bm25": LinearGain(zero, (1.0,) * len(FEATURES), (1.0, *zero[1:]), -1.0),
             "recency": LinearGain(zero, (1.0,) * len(FEATURES), zero, 0.25)}
    selector = Selector("t", ("none", "bm25", "recency"), gains, margin=0.5)
    assert selector.choose([3.0, *zero[1:]]) == "bm25"  # bm25 predicts 2.0
    assert selector.choose([1.0, *zero[1:]]) == "none"  # best is recency's 0.25, below the margin
    assert Selector("t", ("none", "bm25", "recency"), gains, margin=0.1).choose([1.0, *zero[1:]]) == "recency"


# -- trained on the train split --------------------------------------------------------------


def test_train_selector_learns_the_best_retrieval_from_train_only(tmp_path: Path) -> None:
    data = headline_data(tmp_path / "data")
    # Dev and test golds that cannot be read: training must not touch them.
    (data / "dev_outputs.json").write_text("not json", encoding="utf-8")
    (data / "test_outputs.json").write_text("not json", encoding="utf-8")
    backend = EchoBackend(first_title)
    out = tmp_path / "selector.json"
    selector = train_selector(SelectorConfig(task="LaMP-4", data=str(data), out=str(out),
                                             options=("none", "bm25", "recency")), backend=backend, progress=None)
    train_ids = [q["id"] for q in json.loads((data / "train_questions.json").read_text())]
    assert selector.training["split"] == "train" and selector.training["example_ids"] == train_ids
    texts = user_texts(backend)
    assert texts and all(" train story " in text for text in texts)
    assert not any(" dev story " in text for text in texts)
    assert selector.training["outcomes"]["bm25"] > selector.training["outcomes"]["none"]
    assert Selector.load(out) == selector
    # Every dev input gets bm25, the option that was always best.
    (data / "dev_outputs.json").unlink()
    run = tmp_path / "run"
    evaluate(EvalConfig(task="LaMP-4", data=str(data), methods=("auto",), selector=str(out), embedder="hashing",
                        out=str(run)), backend=EchoBackend(first_title), progress=None)
    assert set(chosen(run).values()) == {"bm25"}


def test_train_selector_keeps_to_none_when_items_hurt(tmp_path: Path) -> None:
    data = headline_data(tmp_path / "data")
    selector = train_selector(SelectorConfig(task="LaMP-4", data=str(data), out=str(tmp_path / "s.json"),
                                             options=("none", "bm25", "recency")),
                              backend=EchoBackend(article_without_items), progress=None)
    assert selector.margin is None


def test_train_selector_resumes_from_its_saved_answers(tmp_path: Path) -> None:
    data = headline_data(tmp_path / "data")
    config = SelectorConfig(task="LaMP-4", data=str(data), out=str(tmp_path / "s.json"), options=("none", "bm25"))
    first = train_selector(config, backend=EchoBackend(first_title), progress=None)
    again = EchoBackend(first_title)
    assert train_selector(config, backend=again, progress=None).gains == first.gains
    assert again.requests == []


def test_a_data_folder_without_a_train_split_is_refused(tmp_path: Path) -> None:
    data = headline_data(tmp_path / "data")
    (data / "train_questions.json").unlink()
    with pytest.raises(ValueError, match="no train split"):
        train_selector(SelectorConfig(task="LaMP-4", data=str(data), out=str(tmp_path / "s.json")),
                       backend=EchoBackend(first_title), progress=None)


# -- auto in tailor eval ---------------------------------------------------------------------


def chosen(run: Path) -> dict[str, str]:
    rows = [json.loads(line) for line in (run / "predictions" / "auto.jsonl").read_text().splitlines()]
    return {row["id"]: row["notes"]["chosen"] for row in rows}


def test_auto_in_eval_trains_a_selector_on_first_use_and_records_its_choices(tmp_path: Path) -> None:
    data = headline_data(tmp_path / "data")
    backend = EchoBackend(first_title)
    run = tmp_path / "run"
    report = evaluate(EvalConfig(task="LaMP-4", data=str(data), methods=("none", "bm25", "auto"), embedder="hashing",
                                 n_resamples=20, out=str(run)), backend=backend, progress=None)
    by_method = {r.method: r for r in report.results}
    assert by_method["auto"].metrics["rouge-1"] >= by_method["none"].metrics["rouge-1"]
    choices = chosen(run)
    assert set(choices) == {f"dev{i}" for i in range(4)} and "none" not in choices.values()
    # The selector learned from the train split alone, and is kept in the run folder.
    (saved,) = (run / "selectors").glob("*.json")
    train_ids = [q["id"] for q in json.loads((data / "train_questions.json").read_text())]
    assert Selector.load(saved).training["example_ids"] == train_ids
    dev_inputs = [r for r in user_texts(backend) if " dev story " in r]
    assert len(dev_inputs) == 3 * 4  # none, bm25 and auto answered the dev questions; training never saw them


def test_auto_without_out_caches_its_selector_in_tailor_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAILOR_HOME", str(tmp_path / "home"))
    data = headline_data(tmp_path / "data")
    config = EvalConfig(task="LaMP-4", data=str(data), methods=("none", "auto"), embedder="hashing", n_resamples=20)
    evaluate(config, backend=EchoBackend(first_title), progress=None)
    assert len(list((tmp_path / "home" / "selectors").glob("LaMP-4-*.json"))) == 1
    second = EchoBackend(first_title)
    evaluate(config, backend=second, progress=None)
    assert not any(" train story " in text for text in user_texts(second))  # not trained again


def test_auto_takes_a_given_selector_and_refuses_to_learn_from_the_split_it_evaluates(tmp_path: Path) -> None:
    data = headline_data(tmp_path / "data")
    path = tmp_path / "s.json"
    zero = (0.0,) * len(FEATURES)
    Selector("LaMP-4", ("none", "recency"), {"recency": LinearGain(zero, (1.0,) * len(FEATURES), zero, 1.0)},
             margin=0.0).save(path)
    backend = EchoBackend(first_title)
    run = tmp_path / "run"
    evaluate(EvalConfig(task="LaMP-4", data=str(data), methods=("auto",), selector=str(path), embedder="hashing",
                        n_resamples=20, out=str(run)), backend=backend, progress=None)
    assert set(chosen(run).values()) == {"recency"}
    assert not any(" train story " in text for text in user_texts(backend))
    with pytest.raises(ValueError, match="learns from the train split"):
        evaluate(EvalConfig(task="LaMP-4", data=str(data), split="train", methods=("auto",), embedder="hashing"),
                 backend=EchoBackend(first_title), progress=None)


def test_the_selector_travels_with_the_method() -> None:
    spec = parse_method("auto")
    assert selector_of(spec) is None
    carried = with_selector(spec, "x.json")
    assert selector_of(carried) == "x.json" and carried == spec and str(carried) == "auto"
    assert spec.serve_refusal is None
    with pytest.raises(ValueError, match="--selector"):
        spec.build(BuildContext(get_task("LaMP-4"), len, embedder=HashingEmbedder()))


# -- the command line -----------------------------------------------------------------------


def test_train_selector_and_eval_auto_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = headline_data(tmp_path / "data")
    out = tmp_path / "selector.json"
    assert main(["train-selector", "--task", "LaMP-4", "--data", str(data), "--out", str(out), "--backend", "echo",
                 "--embedder", "hashing", "--limit", "8", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 8 and summary["options"] == ["none", "bm25", "recency", "dense", "hybrid"]
    assert main(["eval", "--task", "LaMP-4", "--data", str(data), "--method", "none,auto", "--backend", "echo",
                 "--embedder", "hashing", "--selector", str(out), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["method"] for r in results] == ["none", "auto"]
