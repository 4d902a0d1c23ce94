"""RAG-aware fine-tuning: adapters trained on the prompt their method builds at inference,
with no record dated at or after a query in any training or inference prompt, and no dev
or test gold in any training pair."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tailor.adapters.prompts import items_before_questions
from tailor.adapters.store import AdapterKey, open_adapter_store
from tailor.cli.main import main
from tailor.methods import build_personalizer
from tailor.tasks import get_task
from tailor.training.jobs import TrainAdapterConfig, training_data
from tailor.training.pairs import method_pairs, training_prompt
from tailor.types import HistoryRecord, Profile, TaskExample

from .test_cli_adapters import SMALL, run_json

TASK = get_task("commits")
PROMPT = "Generate a subject for the following commit message: "
START = datetime(2024, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=2)))
VERBS = {"ann": "Fix", "ben": "Add", "cat": "Refactor"}
THINGS = ["parser", "cache", "fixtures", "plugin hooks", "assertion rewriting", "the junit report",
          "tmp_path", "capture", "marks", "the warnings filter", "doctest", "collection", "logging", "config"]


def words(text: str) -> int:
    return len(text.split())


def commit(user: str, i: int) -> dict[str, str]:
    """The i-th commit of ``user``; the users' commits interleave in time, offsets differ."""
    moment = START + timedelta(hours=3 * i + list(VERBS).index(user))
    zone = timezone(timedelta(hours=[2, -5, 0][list(VERBS).index(user)]))
    thing = THINGS[i % len(THINGS)]
    return {"id": f"{user}-{i:02d}", "title": f"{VERBS[user]} {thing} (#{100 + i})",
            "text": f"The {thing} code path needed work: {user} changed how {thing} behaves in case {i}.",
            "date": moment.astimezone(zone).isoformat()}


def write_commits(folder: Path, users: tuple[str, ...] = tuple(VERBS)) -> dict[str, dict[str, str]]:
    """A commits task in LaMP-6 layout, split by time per author as `tailor data build
    commits` does: commits 0-5 are history only, 6-8 train questions, 9-10 dev, 11-12 test;
    each question's profile is every earlier commit of its author (so a dev question's
    profile holds the dev questions before it). Returns each question's commit by id."""
    folder.mkdir(parents=True, exist_ok=True)
    commits = {user: [commit(user, i) for i in range(13)] for user in users}
    asked: dict[str, dict[str, str]] = {}
    for split, numbers in {"train": range(6, 9), "dev": range(9, 11), "test": range(11, 13)}.items():
        questions, golds = [], []
        for user in users:
            for i in numbers:
                item = commits[user][i]
                questions.append({"id": item["id"], "user_id": user, "input": PROMPT + item["text"],
                                  "profile": commits[user][:i]})
                golds.append({"id": item["id"], "output": item["title"]})
                asked[item["id"]] = item | {"split": split}
        (folder / f"{split}_questions.json").write_text(json.dumps(questions), encoding="utf-8")
        (folder / f"{split}_outputs.json").write_text(json.dumps({"task": "LaMP_6", "golds": golds}),
                                                      encoding="utf-8")
    return asked


def when(date: str) -> datetime:
    return datetime.fromisoformat(date)


def record(item: dict[str, str]) -> HistoryRecord:
    return HistoryRecord(item["id"], {"title": item["title"], "text": item["text"]}, item["date"])


# -- the pairs ----------------------------------------------------------------------------------


def test_each_item_is_trained_on_the_eval_prompt_built_from_strictly_earlier_items() -> None:
    history = [record(commit("ann", i)) for i in range(8)]
    # Same instant as item 5, written in another offset: not earlier, so never shown with it.
    twin = HistoryRecord("ann-twin", {"title": "Fix twin", "text": "the parser twin"},
                         when(history[5].date or "").astimezone(timezone.utc).isoformat())
    records = list(reversed(history)) + [twin]
    personalizer = build_personalizer("bm25", TASK, k=2, count_tokens=words)
    pairs = method_pairs(TASK, personalizer, "ann", records)
    by_id = {r.id: r for r in records}
    assert [p.record_id for p in pairs][:2] == ["ann-00", "ann-01"] and len(pairs) == 9
    assert pairs[0].context == ()  # the oldest item has nothing before it
    for pair in pairs:
        moment = when(by_id[pair.record_id].date or "")
        assert all(when(by_id[shown].date or "") < moment for shown in pair.context), pair.record_id
        earlier = Profile("ann", tuple(r for r in records if when(r.date or "") < moment))
        # Exactly what tailor eval's bm25 personalizer shows for this input and history.
        assert pair.messages == personalizer.personalize(TASK, pair.input, earlier).messages
        assert pair.output == by_id[pair.record_id].fields["title"]
    assert "ann-twin" not in next(p for p in pairs if p.record_id == "ann-05").context


def test_questions_train_on_their_gold_and_replace_their_own_item() -> None:
    items = [record(commit("ben", i)) for i in range(5)]
    asked = commit("ben", 5)
    question = TaskExample(asked["id"], "ben", PROMPT + asked["text"], Profile("ben", tuple(items)), asked["title"])
    personalizer = build_personalizer("bm25", TASK, k=1, count_tokens=words)
    # The question's commit is also a later question's profile item: it is trained once, as the question.
    pairs = method_pairs(TASK, personalizer, "ben", [*items, record(asked)], [question])
    assert [p.record_id for p in pairs] == ["ben-00", "ben-01", "ben-02", "ben-03", "ben-04", "ben-05"]
    assert pairs[-1].output == asked["title"] and pairs[-1].input == question.input
    assert pairs[-1].messages == personalizer.personalize(TASK, question.input, question.profile).messages


def test_undated_history_is_ordered_as_given() -> None:
    records = [HistoryRecord(f"r{i}", {"title": f"Fix {t}", "text": f"the {t} code"}) for i, t in enumerate(THINGS[:4])]
    pairs = method_pairs(TASK, build_personalizer("bm25", TASK, k=3, count_tokens=words), "u", records)
    assert [set(p.context) for p in pairs] == [set(), {"r0"}, {"r0", "r1"}, {"r0", "r1", "r2"}]


def test_items_before_questions_leave_out_every_question_of_the_split(tmp_path: Path) -> None:
    asked = write_commits(tmp_path / "data")
    dev = [e for e in TASK.load(tmp_path / "data", "dev") if e.user_id == "cat"]
    kept = items_before_questions(dev)
    assert sorted(r.id for r in kept) == [f"cat-{i:02d}" for i in range(9)]
    assert not {r.id for r in kept} & {i for i, a in asked.items() if a["split"] != "train"}
    undated = [TaskExample(e.id, e.user_id, e.input, Profile(e.user_id, tuple(
        HistoryRecord(r.id, r.fields) for r in e.profile.records))) for e in dev]
    assert sorted(r.id for r in items_before_questions(undated)) == [f"cat-{i:02d}" for i in range(9)]


def test_training_prompt_names_and_checks() -> None:
    assert training_prompt("bm25", TASK, k=3).id == f"bm25:{TASK.layout}:k=3"  # the task's default layout
    assert training_prompt("bm25:lamp", TASK, k=3).id == "bm25:lamp:k=3"
    assert training_prompt("bm25:dialogue", TASK).spec == "bm25:dialogue"
    assert training_prompt("none", TASK, k=4).id == "none"
    # Any retrieval method's prompt can be trained for (served as lora+dense), with the task's k by default.
    assert training_prompt("dense", TASK).id == f"dense:{TASK.layout}:k={TASK.k}"
    for composed in ("summary+bm25", "knn", "bm25+prior"):
        with pytest.raises(ValueError, match="one retrieval method"):
            training_prompt(composed, TASK)
    with pytest.raises(ValueError, match="unknown method"):
        training_prompt("bm26", TASK)


# -- the job: no leakage ------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "dev"])
def test_no_training_pair_shows_a_later_record_or_holds_a_dev_or_test_gold(
        tmp_path: Path, tiny_model_dir: Path, split: str) -> None:
    asked = write_commits(tmp_path / "data")
    items = {a["id"]: a for user in VERBS for a in (commit(user, i) for i in range(13))}
    config = TrainAdapterConfig(task="commits", data=str(tmp_path / "data"), out=str(tmp_path / "adapters"),
                                split=split, model=str(tiny_model_dir), method="bm25", k=2)
    pairs = training_data(config)
    assert sorted(pairs) == sorted(VERBS)
    held_out = {i: a for i, a in asked.items() if a["split"] != "train"}
    trained = {p.record_id for user_pairs in pairs.values() for p in user_pairs}
    # On dev: the commits before each author's first dev question (0-8), never a dev gold.
    # On train: history 0-5 and the train questions 6-8, each with its gold.
    assert trained == {f"{user}-{i:02d}" for user in VERBS for i in range(9)}
    for user, user_pairs in pairs.items():
        for pair in user_pairs:
            target = items[pair.record_id]
            assert pair.record_id not in held_out and pair.record_id.startswith(user)
            shown = " ".join(m["content"] for m in pair.messages or ())
            for later in held_out.values():
                assert later["title"] not in shown and later["title"] != pair.output
            assert all(when(items[r]["date"]) < when(target["date"]) for r in pair.context)
            assert len(pair.context) == min(int(pair.record_id[4:]), 2)  # k=2 once there is history


def test_train_then_eval_lora_bm25_uses_the_adapters_of_its_prompt(tmp_path: Path, tiny_model_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    asked = write_commits(tmp_path / "data")
    data, out = tmp_path / "data", tmp_path / "adapters"

    def train(*extra: str) -> list[dict]:  # type: ignore[type-arg]
        return run_json(["train-adapter", "--task", "commits", "--data", str(data), "--out", str(out), "--model",
                         str(tiny_model_dir), "--json", *SMALL, "--min-history", "4", *extra], capsys)["adapters"]

    # ann and ben get adapters of their own; cat is left to the global adapter (unseen by user adapters).
    rows = train("--method", "bm25", "--k", "2", "--users", "ann,ben")
    assert [(r["key"], r["status"]) for r in rows] == [
        ("global/all/commits/lora/bm25:dialogue:k=2", "trained"), ("user/ann/commits/lora/bm25:dialogue:k=2", "trained"),
        ("user/ben/commits/lora/bm25:dialogue:k=2", "trained")]
    store = open_adapter_store(out)
    info = store.info(AdapterKey("user", "ann", "commits", prompt="bm25:dialogue:k=2"))
    assert info is not None and info.config["prompt"]["k"] == 2 and info.metadata["prompt"] == "bm25:dialogue:k=2"
    assert info.metadata["golds"] == 3 and info.metadata["split"] == "train"
    assert store.info(AdapterKey("user", "ann", "commits")) is None  # nothing trained for the none prompt yet
    store.profiles.close()

    evaluate = ["eval", "--task", "commits", "--data", str(data), "--backend", f"transformers:{tiny_model_dir}",
                "--adapters", str(out), "--json"]
    # Adapters trained for k=2 do not serve k=1 prompts, nor the none prompt: the error names the command.
    assert main([*evaluate, "--method", "lora+bm25", "--k", "1"]) == 1
    assert "tailor train-adapter --task commits --data DIR --method bm25:dialogue --k 1 --out DIR" in \
        capsys.readouterr().err
    assert main([*evaluate, "--method", "none,lora", "--k", "2"]) == 1
    assert "trained on the none prompt" in capsys.readouterr().err

    run_json([*evaluate, "--method", "lora+bm25", "--k", "2", "--out", str(tmp_path / "run")], capsys)
    predictions = [json.loads(line) for line in (tmp_path / "run" / "predictions" / "lora-bm25.jsonl").open()]
    # cat, whom no user adapter saw, falls back to the global adapter trained on bm25 prompts.
    assert {p["id"][:3]: p["notes"]["adapter"] for p in predictions} == {"ann": "user", "ben": "user",
                                                                           "cat": "global"}
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    trained = next(r for r in saved["results"] if r["method"] == "lora+bm25")["adapter"]
    assert trained["prompt"] == "bm25:dialogue:k=2" and trained["k"] == 2 and trained["split"] == "train"
    assert trained["adapters"] == {"user": 2, "global": 1}
    # No record dated at or after its question in any inference prompt.
    for method in ("lora-bm25",):
        for line in (tmp_path / "run" / "predictions" / f"{method}.jsonl").open():
            row = json.loads(line)
            question = asked[row["id"]]
            assert row["retrieved"] and all(when(commit(r[:3], int(r[4:]))["date"]) < when(question["date"])
                                            for r in row["retrieved"])
    # lora (the none prompt) needs its own adapters; once trained, both are served side by side.
    train("--users", "ann")
    result = run_json([*evaluate, "--method", "lora,lora+bm25", "--k", "2", "--users", "ann,cat"], capsys)
    assert [r["adapter"]["prompt"] for r in result["results"]] == ["none", "bm25:dialogue:k=2"]
    assert result["results"][0]["granularity"] == {"user": 2, "global": 2}


def test_budgets_of_training_and_eval_must_match(tmp_path: Path, tiny_model_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    write_commits(tmp_path / "data", users=("ann",))
    out = tmp_path / "adapters"
    run_json(["train-adapter", "--task", "commits", "--data", str(tmp_path / "data"), "--out", str(out), "--model",
              str(tiny_model_dir), "--json", *SMALL, "--scope", "global", "--input-tokens", "64"], capsys)
    assert main(["eval", "--task", "commits", "--data", str(tmp_path / "data"), "--backend",
                 f"transformers:{tiny_model_dir}", "--adapters", str(out), "--method", "lora"]) == 1
    error = capsys.readouterr().err
    assert "input 64 / context 384" in error and "--input-tokens 64 --context-tokens 384" in error
