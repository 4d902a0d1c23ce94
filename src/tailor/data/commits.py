"""``commits``: a commit's subject from its body, per author (LaMP-6's file layout).

A git history is the richest per-user writing on a developer's machine. This module turns
one (``git log`` of a repository, or a saved log) into a LaMP-6-layout task: each question's
input is ``Generate a subject for the following commit message: `` and the commit's body,
its gold output the subject; the user is the author, under a pseudonymous id; the profile
is that author's strictly earlier commits as items ``{id, title, text, date}``.

What is kept (defaults in :class:`CommitsConfig`, chosen as general rules, not fitted to
any one repository):

- merges are skipped (``git log --no-merges``; in a saved log, subjects such as
  ``Merge pull request #12 ...`` or ``Merge branch 'x'``);
- bodies are cleaned of trailers (``Signed-off-by:``, ``Co-authored-by:``, any ``*-by:``
  line, and a last paragraph of ``Key: value`` lines such as ``Fixes:``, ``Change-Id:``) and
  of the notes tools add (``This reverts commit ...``, ``(cherry picked from commit ...)``, a
  ``--HG--`` block from a Mercurial conversion);
  commits whose cleaned body has fewer than ``min_body_words`` words are skipped (near-empty);
- a body seen before (cherry-picks, backports) keeps only its earliest commit, so that no
  question has a copy of itself in its profile;
- bots (``[bot]`` names, names ending in "bot", dependabot, pre-commit-ci, renovate, ...) are
  left out unless ``keep_bots``; ``dataset.json`` records which it was;
- authors with fewer than ``min_commits`` usable commits are left out.

Splits, per author in time order: the latest ``test_fraction`` of their commits are ``test``
questions, the ``dev_fraction`` before them ``dev`` (each at least one, at most
``questions_per_user``, so that many authors appear in a small evaluation), and up to
``train_per_user`` commits before those are ``train`` questions. Every question's profile is
the author's latest ``profile_size`` usable commits dated strictly before it (questions with
none are dropped). Authors are interleaved in each file, so the first N questions of a split
cover as many authors as N allows. The output depends only on the history and the options.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from tailor.data.packaged.build import (
    BuildOptionError,
    BuildReport,
    Question,
    check_at_least_one,
    words,
    write_splits,
)

SUBJECT_PROMPT = "Generate a subject for the following commit message: "
GIT_LOG_FORMAT = "%H%x1f%aN%x1f%ad%x1f%s%x1f%b%x1e"
GIT_LOG_ARGUMENTS = ("log", "--no-merges", "--date=iso-strict", f"--format={GIT_LOG_FORMAT}")

_MERGE_SUBJECT = re.compile(r"^Merge (?:pull request #\d+|(?:remote-tracking )?branch |tag |commit |.+ into \S)")
# Trailer keys that are trailers wherever they stand ("Signed-off-by", "Reviewed-by", "Co-Authored-By").
_BY_TRAILER = re.compile(r"^\s*[A-Za-z][\w-]*-by\s*:", re.IGNORECASE)
# A "Key: value" line whose key is one token (git's trailer shape), hyphenated or a known issue-link key.
_TRAILER_LINE = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+|Fixes|Closes|Resolves|Ref|Refs|Cc|Bug|Issue|Issues|Link|See)"
    r"\s*:(?:\s|$)", re.IGNORECASE)
_GIT_NOTE = re.compile(r"^\s*(?:This reverts commit [0-9a-f]{7,40}\.?|\(cherry picked from commit [0-9a-f]{7,40}\))\s*$",
                       re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w'-]*")
_KNOWN_BOTS = re.compile(
    r"^(?:dependabot(?:-preview)?|pre-commit-ci|renovate|greenkeeper(?:io)?|github-actions|allcontributors"
    r"|mergify|imgbot|pyup(?:-bot|\.io)?|snyk-bot|web-flow)(?:\[bot\])?$", re.IGNORECASE)
_BOT_SUFFIX = re.compile(r"\[bot\]$|(?:^|[\s_.-])bot$", re.IGNORECASE)
_CAMEL_BOT = re.compile(r"[a-z]Bot$")  # "LaRoyBot", not "Abbot"


@dataclass(frozen=True)
class Commit:
    """One commit of a history, as ``git log`` gives it (body not yet cleaned)."""

    hash: str
    author: str
    date: str
    """ISO 8601 with its offset, as git writes it (``2024-05-01T10:00:00+02:00``)."""
    subject: str
    body: str

    @property
    def instant(self) -> datetime:
        """The date as an aware datetime (UTC if the log gave no offset), for ordering."""
        moment = datetime.fromisoformat(self.date)
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class CommitsConfig:
    """The choices of a ``commits`` build (keyword arguments of :func:`build_commits`)."""

    min_commits: int = 8
    """Authors with fewer usable commits are left out (too little history for a profile)."""
    min_body_words: int = 3
    """Cleaned bodies with fewer words are near-empty: nothing to write a subject from."""
    dev_fraction: float = 0.2
    test_fraction: float = 0.2
    questions_per_user: int = 30
    """At most this many dev (and test) questions per author, so many authors appear."""
    train_per_user: int = 50
    profile_size: int = 100
    """The author's latest earlier commits kept in a question's profile."""
    item_words: int = 120
    input_words: int = 300
    keep_bots: bool = False

    def __post_init__(self) -> None:
        check_at_least_one(min_commits=self.min_commits, min_body_words=self.min_body_words,
                           questions_per_user=self.questions_per_user, train_per_user=self.train_per_user,
                           profile_size=self.profile_size, item_words=self.item_words, input_words=self.input_words)
        for name in ("dev_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 < value < 0.5:
                raise ValueError(f"{name} must be between 0 and 0.5 (exclusive), got {value!r}")


# -- reading a history ----------------------------------------------------------------------


def parse_git_log(text: str) -> list[Commit]:
    """Commits from ``git log --format='%H%x1f%aN%x1f%ad%x1f%s%x1f%b%x1e'`` output."""
    commits = []
    for number, record in enumerate(text.split("\x1e"), start=1):
        record = record.lstrip("\r\n")
        if not record.strip():
            continue
        fields = record.split("\x1f")
        if len(fields) != 5:
            raise ValueError(f"git log record {number} has {len(fields)} fields, expected 5 "
                             "(hash, author, date, subject, body separated by 0x1f)")
        commit_hash, author, date, subject, body = fields
        commits.append(Commit(commit_hash.strip(), author.strip(), date.strip(), subject.strip(), body))
    return commits


def read_log_file(path: str | Path) -> list[Commit]:
    """Commits from a saved log (gzipped or not) in :data:`GIT_LOG_FORMAT`."""
    path = Path(path)
    with path.open("rb") as stream:
        gzipped = stream.read(2) == b"\x1f\x8b"
    raw = gzip.decompress(path.read_bytes()) if gzipped else path.read_bytes()
    return parse_git_log(raw.decode("utf-8", errors="replace"))


def read_repository(repo: str | Path) -> list[Commit]:
    """Commits of the git repository at ``repo`` (its current branch), by running ``git log``."""
    try:
        result = subprocess.run(["git", "-C", str(repo), *GIT_LOG_ARGUMENTS], capture_output=True, check=False)
    except FileNotFoundError:
        raise FileNotFoundError("git is not installed; use --log with a saved log instead") from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", errors="replace").strip()
        raise ValueError(f"git log failed in {repo}: {message}")
    return parse_git_log(result.stdout.decode("utf-8", errors="replace"))


# -- cleaning -------------------------------------------------------------------------------


def clean_body(body: str) -> str:
    """The body without trailers and git's notes, paragraphs kept, outer blank lines dropped."""
    lines = [line.rstrip() for line in body.replace("\r\n", "\n").split("\n")
             if not _BY_TRAILER.match(line) and not _GIT_NOTE.match(line)]
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    # "--HG--" opens the metadata block that hg-git conversions append (branch, renames).
    paragraphs = [p for p in paragraphs if p and p[0].strip() != "--HG--"]
    while paragraphs and _is_trailer_block(paragraphs[-1]):
        paragraphs.pop()
    return "\n\n".join("\n".join(p) for p in paragraphs)


def _is_trailer_block(paragraph: list[str]) -> bool:
    """Whether a paragraph is a trailer block: ``Key: value`` lines, values possibly continued
    on indented lines (git's rule for the last paragraph of a message)."""
    if not _TRAILER_LINE.match(paragraph[0]):
        return False
    return all(_TRAILER_LINE.match(line) or line[:1].isspace() for line in paragraph[1:])


def is_bot(author: str) -> bool:
    """Whether an author name is an automation account (dependabot, ``x[bot]``, ``pytest bot``)."""
    name = author.strip()
    return bool(_KNOWN_BOTS.match(name) or _BOT_SUFFIX.search(name) or _CAMEL_BOT.search(name))


def is_merge(commit: Commit) -> bool:
    """Whether a commit from a saved log is a merge (``git log --no-merges`` already drops them)."""
    return bool(_MERGE_SUBJECT.match(commit.subject))


def user_id(author: str) -> str:
    """A pseudonymous, stable id for an author name."""
    return "u" + hashlib.sha256(("tailor-commits\0" + author.strip()).encode("utf-8")).hexdigest()[:12]


# -- building -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Usable:
    commit: Commit
    body: str


def usable_commits(commits: Iterable[Commit], config: CommitsConfig) -> tuple[dict[str, list[_Usable]], dict[str, int]]:
    """The usable commits per author, in time order, and counts of what was skipped and why."""
    skipped = {"merge": 0, "near_empty_body": 0, "repeated_body": 0, "bot": 0, "no_subject": 0}
    ordered = sorted(commits, key=lambda c: (c.instant, c.hash))
    seen_bodies: set[str] = set()
    by_author: dict[str, list[_Usable]] = defaultdict(list)
    for commit in ordered:
        if is_merge(commit):
            skipped["merge"] += 1
            continue
        if not config.keep_bots and is_bot(commit.author):
            skipped["bot"] += 1
            continue
        if not commit.subject:
            skipped["no_subject"] += 1
            continue
        body = clean_body(commit.body)
        if len(_WORD.findall(body)) < config.min_body_words:
            skipped["near_empty_body"] += 1
            continue
        key = " ".join(body.lower().split())
        if key in seen_bodies:
            skipped["repeated_body"] += 1
            continue
        seen_bodies.add(key)
        by_author[commit.author].append(_Usable(commit, body))
    return dict(by_author), skipped


def _share(count: int, fraction: float, cap: int) -> int:
    return min(cap, max(1, round(count * fraction)))


def build_commits(out: str | Path, *, repo: str | Path | None = None, log: str | Path | None = None,
                  config: CommitsConfig | None = None, keep_bots: bool | None = None,
                  min_commits: int | None = None) -> BuildReport:
    """Commit subjects per author from any git history (--repo PATH or --log FILE), LaMP-6 layout.

    The history is the repository ``repo`` or the saved ``log``; ``keep_bots`` and
    ``min_commits``, when given, replace those of ``config``."""
    config = config or CommitsConfig()
    if keep_bots is not None:
        config = replace(config, keep_bots=keep_bots)
    if min_commits is not None:
        config = replace(config, min_commits=min_commits)
    if repo is not None and log is None:
        commits, source = read_repository(repo), f"git log of {Path(repo).resolve().name}"
    elif log is not None and repo is None:
        commits, source = read_log_file(log), f"git log file {Path(log).name}"
    else:
        raise BuildOptionError("commits needs exactly one source: a repository (--repo PATH) or a saved log "
                               "(--log FILE)")
    by_author, skipped = usable_commits(commits, config)
    splits: dict[str, dict[str, list[Question]]] = {"train": {}, "dev": {}, "test": {}}
    authors_left_out = 0
    for author in sorted(by_author, key=user_id):
        history = by_author[author]
        if len(history) < config.min_commits:
            authors_left_out += 1
            continue
        uid = user_id(author)
        n_test = _share(len(history), config.test_fraction, config.questions_per_user)
        n_dev = _share(len(history), config.dev_fraction, config.questions_per_user)
        test_start = len(history) - n_test
        dev_start = test_start - n_dev
        ranges = {"train": (max(0, dev_start - config.train_per_user), dev_start),
                  "dev": (dev_start, test_start), "test": (test_start, len(history))}
        for split, (start, end) in ranges.items():
            questions = [question for position in range(start, end)
                         if (question := _question(uid, history, position, config)) is not None]
            if questions:
                splits[split][uid] = questions
    if not any(splits.values()):
        reasons = ", ".join(f"{count} {why.replace('_', ' ')}" for why, count in skipped.items() if count)
        raise ValueError(f"no author has {config.min_commits} usable commits in {source} ({len(commits)} commits "
                         f"read; skipped: {reasons or 'none'})")
    details = {"config": asdict(config), "bots_excluded": not config.keep_bots, "commits_read": len(commits),
               "skipped": skipped, "authors_left_out": authors_left_out,
               "layout": "LaMP-6: input = prompt + cleaned body, output = subject, profile items "
                         "{id, title: subject, text: body, date}"}
    report = write_splits(out, name="commits", data_format="LaMP-6", source=source, splits=splits, details=details)
    bots = "kept" if config.keep_bots else "left out (--keep-bots keeps them)"
    return replace(report, notes=(f"bot authors {bots}; what was skipped and why: {Path(report.out) / 'dataset.json'}",))


def _question(uid: str, history: list[_Usable], position: int, config: CommitsConfig) -> Question | None:
    """The question of ``history[position]``, its profile the author's commits strictly before it."""
    target = history[position]
    moment = target.commit.instant
    # History is in time order; commits at the very same instant are not "earlier".
    earlier = [item for item in history[:position] if item.commit.instant < moment][-config.profile_size:]
    if not earlier:
        return None
    profile = [{"id": item.commit.hash, "title": item.commit.subject, "text": words(item.body, config.item_words),
                "date": item.commit.date} for item in earlier]
    question = {"id": target.commit.hash, "user_id": uid,
                "input": SUBJECT_PROMPT + words(target.body, config.input_words), "profile": profile}
    return question, target.commit.subject


__all__ = [
    "GIT_LOG_ARGUMENTS",
    "GIT_LOG_FORMAT",
    "SUBJECT_PROMPT",
    "Commit",
    "CommitsConfig",
    "build_commits",
    "clean_body",
    "is_bot",
    "parse_git_log",
    "read_log_file",
    "read_repository",
    "user_id",
]
