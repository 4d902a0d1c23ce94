"""tailor eval with the label methods (profile priors, kNN, mean baselines) and calibrated
scoring, end to end on a small rating task, with scripted backends."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from tailor.backends.echo import EchoBackend
from tailor.cli.main import main
from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.types import GenerationRequest, GenerationResult

PROMPT = "What rating from 1 to 5 would this user give the following movie? Answer with a single number. movie: "
GENRES = ("Comedy", "Horror", "Western")


def write_rating_task(folder: Path) -> Path:
    """A movielens-ratings split (LaMP-3 layout): each user rates every genre alike, each
    user differently (user u gives genre g the rating 1 + (u + 2 * g) % 5), and the
    question asks for one more movie of one genre."""
    questions, golds = [], []
    for u in range(6):
        profile = [{"id": f"u{u}-{g}-{i}", "text": f"Film {g}{i} (1990), genres: {genre}",
                    "score": str(1 + (u + 2 * g) % 5), "date": f"1997-10-{i + 1:02d}"}
                   for g, genre in enumerate(GENRES) for i in range(3)]
        g = u % len(GENRES)
        questions.append({"id": f"q{u}", "user_id": f"user{u}", "profile": profile,
                          "input": f"{PROMPT}New film (1998), genres: {GENRES[g]}"})
        golds.append({"id": f"q{u}", "output": str(1 + (u + 2 * g) % 5)})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dev_questions.json").write_text(json.dumps(questions), encoding="utf-8")
    (folder / "dev_outputs.json").write_text(json.dumps({"task": "LaMP_3", "golds": golds}), encoding="utf-8")
    return folder


class OneLovingModel:
    """A scripted model that scores "1" far above the rest whatever it reads, and whose
    only evidence is mild: each retrieved item of the asked movie's genre makes its rating
    twice as likely. (Evidence from the items alone, whatever the input, is the context's
    bias, which calibration rightly divides out.)"""

    name = "one-loving"

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.requests.extend(requests)
        results = []
        for request in requests:
            prompt = request.messages[-1]["content"]
            asked = prompt.rpartition("movie: ")[2].rpartition("genres: ")[2]
            scores = dict.fromkeys(request.candidates or (), 0.0)
            for line in prompt.splitlines():
                if asked and line.startswith("- ") and line.endswith(f'genres: {asked}"'):
                    scores[line[2:].partition(" ")[0]] += math.log(2.0)
            scores["1"] += 5.0
            results.append(GenerationResult(text=max(scores, key=scores.__getitem__), scores=scores))
        return results


def test_model_free_methods_ask_no_model_and_keep_the_contract(tmp_path: Path) -> None:
    data = write_rating_task(tmp_path / "data")
    backend = EchoBackend()
    methods = ("profile-prior", "knn", "user-mean", "global-mean")
    report = evaluate(EvalConfig(task="movielens-ratings", data=str(data), methods=methods, backend="echo",
                                 scoring="likelihood", n_resamples=50, out=str(tmp_path / "out")),
                      backend=backend, progress=None)
    assert backend.requests == []
    by_method = {r.method: r for r in report.results}
    # Every rating of a genre is the same: the kNN vote over the genre's items is exact.
    assert by_method["knn"].metrics["mae"] == pytest.approx(0.0)
    assert by_method["user-mean"].metrics["mae"] > 0
    assert by_method["global-mean"].granularity == {"global": 6}
    saved = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert [r["method"] for r in saved["results"]] == list(methods)
    assert all(set(r) >= {"method", "metrics", "ci95", "seconds"} for r in saved["results"])


def test_calibration_stops_a_biased_model_answering_one_constant(tmp_path: Path) -> None:
    data = write_rating_task(tmp_path / "data")
    outputs = {}
    for scoring in ("likelihood", "calibrated"):
        out = tmp_path / scoring
        evaluate(EvalConfig(task="movielens-ratings", data=str(data), methods=("bm25",), k=3, scoring=scoring,
                            n_resamples=50, out=str(out)), backend=OneLovingModel(), progress=None)
        rows = [json.loads(line) for line in (out / "predictions" / "bm25.jsonl").read_text().splitlines()]
        outputs[scoring] = {row["id"]: row["output"] for row in rows}
    assert set(outputs["likelihood"].values()) == {"1"}
    golds = {f"q{u}": str(1 + (u + 2 * (u % 3)) % 5) for u in range(6)}
    # Calibrated, the retrieved items' ratings decide: the three retrieved items share the gold's genre.
    assert outputs["calibrated"] == golds


def test_prior_methods_calibrate_and_share_the_models_scores(tmp_path: Path) -> None:
    data = write_rating_task(tmp_path / "data")
    backend = OneLovingModel()
    report = evaluate(EvalConfig(task="movielens-ratings", data=str(data), methods=("none", "none+prior", "profile-prior"),
                                 scoring="calibrated", n_resamples=50), backend=backend, progress=None)
    # 3 distinct real prompts (one per genre) and one content-free prompt, shared by both methods.
    assert len(backend.requests) == 3 + 1
    by_method = {r.method: r for r in report.results}
    assert by_method["none+prior"].granularity == {"user": 6}
    # With the bias divided out, the bare input holds no evidence (a uniform distribution): the user's prior decides.
    assert by_method["none+prior"].metrics == by_method["profile-prior"].metrics
    assert by_method["none"].metrics["mae"] == pytest.approx(sum(abs(3 - (1 + (u + 2 * (u % 3)) % 5))
                                                                 for u in range(6)) / 6)


def test_the_command_line_runs_label_methods_on_the_echo_backend(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = write_rating_task(tmp_path / "data")
    code = main(["eval", "--task", "movielens-ratings", "--data", str(data), "--backend", "echo", "--json",
                 "--method", "none,profile-prior,knn,bm25+prior,user-mean,global-mean", "--scoring", "calibrated"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in printed["results"]][1:] == ["profile-prior", "knn", "bm25+prior", "user-mean",
                                                             "global-mean"]
    assert all("mae" in r["metrics"] and "mae" in r["ci95"] for r in printed["results"])


# -- evidence weights fitted on the train split --------------------------------------------------


def write_hinted_task(folder: Path, *, train_hints_right: bool) -> Path:
    """A rating task whose every movie carries a hint (a rating the scripted model below
    favours): on dev the hint is the gold; on train it is the gold, or (when
    ``train_hints_right`` is false) a rating unrelated to it. Profiles rate every rating,
    4 most often (the population's median)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, right in (("train", train_hints_right), ("dev", True)):
        questions, golds = [], []
        for q in range(20):
            hint = 1 + (q * 3) % 5
            gold = hint if right else 1 + (q * 7 + 2) % 5
            profile = [{"id": f"{split}{q}-{i}", "text": f"Old film {i} (1980), genres: Drama",
                        "score": rating, "date": f"1997-01-{i + 1:02d}"} for i, rating in enumerate("1234544435")]
            questions.append({"id": f"{split}{q}", "user_id": f"{split}-user{q}", "profile": profile,
                              "input": f"{PROMPT}Film {q} hint {hint} (1998), genres: Comedy"})
            golds.append({"id": f"{split}{q}", "output": str(gold)})
        (folder / f"{split}_questions.json").write_text(json.dumps(questions), encoding="utf-8")
        (folder / f"{split}_outputs.json").write_text(json.dumps({"task": "LaMP_3", "golds": golds}),
                                                      encoding="utf-8")
    return folder


class HintReadingModel:
    """Scores the movie's hinted rating 4 times above the others (and "1" above all, a
    bias calibration removes); a content-free input has no hint."""

    name = "hint-reading"

    def __init__(self) -> None:
        self.asked = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.asked += len(requests)
        results = []
        for request in requests:
            prompt = request.messages[-1]["content"]
            scores = dict.fromkeys(request.candidates or (), 0.0)
            scores["1"] += 3.0
            hint = prompt.partition(" hint ")[2][:1]
            if hint in scores:
                scores[hint] += math.log(4.0)
            results.append(GenerationResult(text="1", scores=scores))
        return results


def _fitted_run(data: Path, out: Path, split: str = "dev") -> tuple[dict[str, str], dict[str, object]]:
    evaluate(EvalConfig(task="movielens-ratings", data=str(data), split=split, methods=("none",),
                        n_resamples=50, out=str(out)), backend=HintReadingModel(), progress=None)
    rows = [json.loads(line) for line in (out / "predictions" / "none.jsonl").read_text().splitlines()]
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {row["id"]: row["output"] for row in rows}, saved["results"][0]["calibration"]


def test_evidence_that_predicts_the_train_golds_is_trusted_and_answers_dev(tmp_path: Path) -> None:
    data = write_hinted_task(tmp_path / "data", train_hints_right=True)
    outputs, calibration = _fitted_run(data, tmp_path / "out")  # calibrated by default on a rating task
    assert calibration["fitted_on"] == "train" and calibration["n"] == 20
    assert calibration["evidence_weight"] > 1.0  # always right: sharpened
    assert outputs == {f"dev{q}": str(1 + (q * 3) % 5) for q in range(20)}


def test_evidence_that_does_not_predict_the_train_golds_is_ignored(tmp_path: Path) -> None:
    data = write_hinted_task(tmp_path / "data", train_hints_right=False)
    outputs, calibration = _fitted_run(data, tmp_path / "out")
    assert calibration["evidence_weight"] == 0.0
    # The population's prior decides alone: its median, 4, for every movie.
    assert set(outputs.values()) == {"4"}


def test_the_train_split_itself_is_not_fitted_on(tmp_path: Path) -> None:
    data = write_hinted_task(tmp_path / "data", train_hints_right=True)
    outputs, calibration = _fitted_run(data, tmp_path / "out", split="train")
    assert calibration == {"evidence_weight": 1.0, "fitted_on": None, "n": 0}
    # Bayes' rule at full weight. train0's hint is 1: the prior (about 1:1:2:4:2) times the
    # evidence (4:1:1:1:1) is 4:1:2:4:2, whose median is 3; a weight fitted on it would say 1.
    assert outputs["train0"] == "3"


def test_a_folder_of_predictions_decided_the_old_way_is_not_resumed(tmp_path: Path) -> None:
    data = write_hinted_task(tmp_path / "data", train_hints_right=True)
    out = tmp_path / "out"
    _fitted_run(data, out)
    marker = json.loads((out / "run.json").read_text(encoding="utf-8"))
    del marker["label_decision"]  # as a run made before the rule existed saved it
    (out / "run.json").write_text(json.dumps(marker), encoding="utf-8")
    with pytest.raises(ValueError, match="label_decision"):
        _fitted_run(data, out)


def test_a_resumed_run_reuses_its_fit(tmp_path: Path) -> None:
    data = write_hinted_task(tmp_path / "data", train_hints_right=True)
    out = tmp_path / "out"
    _, first = _fitted_run(data, out)
    saved = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
    assert saved == {"none": first}
    model = HintReadingModel()
    evaluate(EvalConfig(task="movielens-ratings", data=str(data), methods=("none",), n_resamples=50, out=str(out)),
             backend=model, progress=None)
    assert model.asked == 0  # neither the dev answers nor the fit are asked again
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["results"][0]["calibration"] == first
