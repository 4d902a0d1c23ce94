"""The ``commits`` task built from a small git repository made here, and from saved logs."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from tailor.cli.main import main
from tailor.data.commits import (
    GIT_LOG_ARGUMENTS,
    SUBJECT_PROMPT,
    CommitsConfig,
    build_commits,
    clean_body,
    is_bot,
    parse_git_log,
    user_id,
)
from tailor.tasks import get_task

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

SMALL = CommitsConfig(min_commits=4, dev_fraction=0.2, test_fraction=0.2, questions_per_user=2, train_per_user=10)


def _git(repo: Path, *args: str, author: str = "Ada Lovelace", date: str = "2024-01-01T10:00:00+00:00") -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": "a@example.org", "GIT_AUTHOR_DATE": date,
           "GIT_COMMITTER_NAME": author, "GIT_COMMITTER_EMAIL": "a@example.org", "GIT_COMMITTER_DATE": date,
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def _commit(repo: Path, author: str, day: int, subject: str, body: str = "") -> None:
    (repo / f"{author.split()[0].lower()}.txt").write_text(f"{subject}\n", encoding="utf-8")
    _git(repo, "add", "-A", author=author)
    message = subject + ("\n\n" + body if body else "")
    _git(repo, "commit", "-q", "-m", message, author=author, date=f"2024-01-{day:02d}T10:00:00+01:00")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("repo")
    _git(repo, "init", "-q", "-b", "main")
    # Two real authors, six commits each with bodies, on interleaved days.
    for index in range(6):
        _commit(repo, "Ada Lovelace", 1 + 2 * index, f"Ada change {index}",
                f"Rework the analytical engine part {index} so that it computes faster.\n\n"
                f"Signed-off-by: Ada Lovelace <a@example.org>\nCo-authored-by: Bob <b@example.org>")
        _commit(repo, "Grace Hopper", 2 + 2 * index, f"Grace change {index}",
                f"Teach the compiler about construct {index} and its corner cases.\n\nReviewed-by: Someone <s@x.org>")
    _commit(repo, "Grace Hopper", 20, "Grace empty body")
    _commit(repo, "Grace Hopper", 21, "Grace tiny body", "Fixes #12")
    _commit(repo, "dependabot[bot]", 22, "Bump lib from 1 to 2", "Bumps lib from 1 to 2 with many words here.")
    _commit(repo, "dependabot[bot]", 23, "Bump lib from 2 to 3", "Bumps lib from 2 to 3 with many words here.")
    _commit(repo, "dependabot[bot]", 24, "Bump lib from 3 to 4", "Bumps lib from 3 to 4 with many words here.")
    _commit(repo, "dependabot[bot]", 25, "Bump lib from 4 to 5", "Bumps lib from 4 to 5 with many words here.")
    # A merge of a side branch: the merge itself is skipped, the branch's commit is kept.
    _git(repo, "checkout", "-q", "-b", "side")
    _commit(repo, "Ada Lovelace", 26, "Ada side change", "A side branch change to the engine with enough words.")
    _git(repo, "checkout", "-q", "main")
    _commit(repo, "Grace Hopper", 27, "Grace main change", "A main branch change to the compiler with enough words.")
    _git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'side'", "side", author="Ada Lovelace",
         date="2024-01-28T10:00:00+01:00")
    return repo


@pytest.fixture(scope="module")
def built(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("commits")
    build_commits(out, repo=repo, config=SMALL)
    return out


def _all_questions(folder: Path) -> dict[str, list[dict]]:
    return {split: json.loads((folder / f"{split}_questions.json").read_text(encoding="utf-8"))
            for split in ("train", "dev", "test")}


def test_layout_is_lamp_6(built: Path) -> None:
    for split, questions in _all_questions(built).items():
        outputs = json.loads((built / f"{split}_outputs.json").read_text(encoding="utf-8"))
        assert outputs["task"] == "LaMP_6"
        assert [gold["id"] for gold in outputs["golds"]] == [q["id"] for q in questions]
        for question in questions:
            assert set(question) == {"id", "user_id", "input", "profile"}
            assert question["input"].startswith(SUBJECT_PROMPT)
            for item in question["profile"]:
                assert set(item) == {"id", "title", "text", "date"}
                datetime.fromisoformat(item["date"])  # ISO 8601
    dataset = json.loads((built / "dataset.json").read_text(encoding="utf-8"))
    assert dataset["data_format"] == "LaMP-6" and dataset["bots_excluded"] is True
    assert dataset["users"] == 2 and dataset["skipped"]["bot"] == 4


def test_gold_is_the_subject_and_trailers_are_gone(built: Path) -> None:
    dev = get_task("commits").load(built, "dev")
    assert dev and all(e.gold and e.gold.split()[0] in ("Ada", "Grace") for e in dev)
    for questions in _all_questions(built).values():
        for question in questions:
            texts = [question["input"], *(item["text"] for item in question["profile"])]
            assert not any(word in text for text in texts for word in ("Signed-off-by", "Co-authored-by",
                                                                        "Reviewed-by"))


def test_merges_empty_bodies_and_bots_are_skipped(built: Path) -> None:
    subjects: set[str | None] = set()
    for split, questions in _all_questions(built).items():
        subjects.update(e.gold for e in get_task("commits").load(built, split))
        subjects.update(item["title"] for q in questions for item in q["profile"])
    assert "Ada side change" in subjects and "Grace main change" in subjects
    assert not {s for s in subjects if s and s.startswith(("Merge", "Bump"))}
    assert "Grace empty body" not in subjects and "Grace tiny body" not in subjects


def test_users_are_pseudonymous_and_stable(built: Path) -> None:
    users = {q["user_id"] for questions in _all_questions(built).values() for q in questions}
    assert users == {user_id("Ada Lovelace"), user_id("Grace Hopper")}
    assert not any("Ada" in u or "Grace" in u for u in users)


def test_profiles_hold_only_strictly_earlier_commits_of_the_same_author(built: Path, repo: Path) -> None:
    log = subprocess.run(["git", "-C", str(repo), *GIT_LOG_ARGUMENTS], check=True, capture_output=True, text=True)
    commits = {c.hash: c for c in parse_git_log(log.stdout)}
    for questions in _all_questions(built).values():
        for question in questions:
            asked = commits[question["id"]]
            assert question["profile"], "a question without history is dropped"
            for item in question["profile"]:
                # Leakage check: nothing dated at or after its question, nobody else's commit.
                assert datetime.fromisoformat(item["date"]) < asked.instant
                assert commits[item["id"]].author == asked.author


def test_splits_are_time_ordered_per_author(built: Path, repo: Path) -> None:
    log = subprocess.run(["git", "-C", str(repo), *GIT_LOG_ARGUMENTS], check=True, capture_output=True, text=True)
    instants = {c.hash: c.instant for c in parse_git_log(log.stdout)}
    splits = {split: get_task("commits").load(built, split) for split in ("train", "dev", "test")}
    assert all(splits.values())
    ids = [e.id for examples in splits.values() for e in examples]
    assert len(ids) == len(set(ids))
    for user in {e.user_id for e in splits["dev"]}:
        train, dev, test = ([instants[e.id] for e in splits[name] if e.user_id == user]
                            for name in ("train", "dev", "test"))
        assert max(train) < min(dev) and max(dev) < min(test)


def test_build_is_deterministic(built: Path, repo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_commits(again, repo=repo, config=SMALL)
    for name in sorted(p.name for p in built.iterdir()):
        assert (again / name).read_bytes() == (built / name).read_bytes(), name


def test_a_saved_log_gzipped_or_not_builds_the_same_task(built: Path, repo: Path, tmp_path: Path) -> None:
    log = subprocess.run(["git", "-C", str(repo), *GIT_LOG_ARGUMENTS], check=True, capture_output=True).stdout
    # The shared log format allows a line break after each record separator.
    (tmp_path / "log.gz").write_bytes(gzip.compress(log.replace(b"\x1e", b"\x1e\n")))
    (tmp_path / "log.txt").write_bytes(log)
    for name in ("log.gz", "log.txt"):
        out = tmp_path / name.replace(".", "-")
        build_commits(out, log=tmp_path / name, config=SMALL)
        for split in ("train", "dev", "test"):
            assert (out / f"{split}_questions.json").read_bytes() == (built / f"{split}_questions.json").read_bytes()


def test_bots_are_kept_on_request(repo: Path, tmp_path: Path) -> None:
    build_commits(tmp_path, repo=repo, config=CommitsConfig(min_commits=4, questions_per_user=2, keep_bots=True))
    dataset = json.loads((tmp_path / "dataset.json").read_text(encoding="utf-8"))
    assert dataset["bots_excluded"] is False and dataset["users"] == 3


def test_the_task_reads_the_build_and_evaluates(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = get_task("commits")
    assert task.lamp_format == "LaMP-6" and task.kind == "generation" and task.stop == ("\n",)
    example = task.load(built, "dev")[0]
    assert task.query(example.input) == example.input.removeprefix(SUBJECT_PROMPT).strip()
    assert main(["eval", "--task", "commits", "--data", str(built), "--backend", "echo", "--method", "none,bm25",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "commits" and result["n"] == len(task.load(built, "dev"))
    assert "rouge-1" in result["results"][0]["metrics"]


def test_command_line_build(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "build", "commits", "--repo", str(repo), "--out", str(tmp_path), "--min-commits", "4"]) == 0
    assert "bot authors left out" in capsys.readouterr().out
    assert main(["data", "build", "commits", "--out", str(tmp_path)]) == 2
    assert "commits needs exactly one source" in capsys.readouterr().err
    assert main(["data", "build", "tweets", "--repo", str(repo), "--out", str(tmp_path)]) == 2
    assert "the tweets data set takes no option 'repo'" in capsys.readouterr().err


def test_too_little_history_is_an_error(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no author has 50 usable commits"):
        build_commits(tmp_path, repo=repo, config=CommitsConfig(min_commits=50))
    with pytest.raises(ValueError, match="exactly one source"):
        build_commits(tmp_path, config=SMALL)


@pytest.mark.parametrize(("body", "cleaned"), [
    ("Fix the thing.\n\nSigned-off-by: A <a@x>", "Fix the thing."),
    ("Fix the thing.\n\nCo-Authored-By: B <b@x>\nReviewed-by: C <c@x>", "Fix the thing."),
    ("Fix it.\n\nFixes: #12\nChange-Id: I1234", "Fix it."),
    ("Fix it.\nAcked-by: D <d@x>\nMore text here.", "Fix it.\nMore text here."),
    ('Revert the thing.\n\nThis reverts commit 0123456789abcdef.', "Revert the thing."),
    ("Port it.\n\n(cherry picked from commit 0123456789abcdef)", "Port it."),
    ("Old commit.\n\n--HG--\nbranch : trunk", "Old commit."),
    ("Bump it.\n\nupdated-dependencies:\n  dependency-name: x\n  dependency-type: direct", "Bump it."),
    # A "Key: value" paragraph in the middle, or a sentence with a colon, is content.
    ("Note: this keeps the old API.\n\nIt only adds a flag.", "Note: this keeps the old API.\n\nIt only adds a flag."),
    ("Before: slow\nAfter: fast", "Before: slow\nAfter: fast"),
    ("Closes #12 by handling None.", "Closes #12 by handling None."),
])
def test_clean_body(body: str, cleaned: str) -> None:
    assert clean_body(body) == cleaned


@pytest.mark.parametrize(("name", "bot"), [
    ("dependabot[bot]", True), ("pre-commit-ci[bot]", True), ("github-actions[bot]", True), ("pytest bot", True),
    ("codetriage-readme-bot", True), ("LaRoyBot", True), ("renovate", True), ("dependabot", True),
    ("robotherapist", False), ("Abbot Smith", False), ("Talbot", False), ("ralf@brainbot.com", False),
    ("Ada Lovelace", False),
])
def test_is_bot(name: str, bot: bool) -> None:
    assert is_bot(name) is bot


def test_config_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError, match="min_commits must be an integer of at least 1"):
        CommitsConfig(min_commits=0)
    with pytest.raises(ValueError, match="dev_fraction must be between 0 and 0.5"):
        CommitsConfig(dev_fraction=0.7)
