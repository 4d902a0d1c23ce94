"""Answer extraction: chatter around a generated answer removed, answers themselves kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailor.backends.echo import EchoBackend
from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.tasks import TASKS, get_task
from tailor.tasks.answers import extract_answer, raw_answer
from tailor.tasks.spec import ANNOUNCEMENT_TOKENS

SUBJECT = "Fix crash when the cache is empty"
HEADLINE = "Trees line the river"


@pytest.mark.parametrize(("raw", "answer"), [
    # announcing preambles, on the answer's line or on their own
    ("Here's a revised subject for the commit message:\n\n" + SUBJECT, SUBJECT),
    ("Here's a revised subject for the previous commit message: " + SUBJECT, SUBJECT),
    ("Sure! Here is a headline: " + HEADLINE, HEADLINE),
    ("Sure! Here is a headline:\n" + HEADLINE, HEADLINE),
    ("Sure!\n" + HEADLINE, HEADLINE),
    ("Certainly, here's a possible title:\n\n" + HEADLINE, HEADLINE),
    ("Here you go:\n" + HEADLINE, HEADLINE),
    ("Here is my suggestion: " + SUBJECT, SUBJECT),
    ("I'd suggest the subject: " + SUBJECT, SUBJECT),
    ("A possible subject line for this commit: " + SUBJECT, SUBJECT),
    ("The revised headline is: " + HEADLINE, HEADLINE),
    ("The subject line for this commit message would be: " + SUBJECT, SUBJECT),
    (f'Here is a possible headline for the article "{HEADLINE}"', HEADLINE),
    # labels
    ("Subject: " + SUBJECT, SUBJECT),
    ("Subject line: " + SUBJECT, SUBJECT),
    ("Commit message: " + SUBJECT, SUBJECT),
    ("headline:" + HEADLINE, HEADLINE),
    ("Title: " + HEADLINE, HEADLINE),
    ("Revised headline: " + HEADLINE, HEADLINE),
    ("Answer: " + HEADLINE, HEADLINE),
    ("Subject line:\n" + SUBJECT, SUBJECT),
    # quotes
    (f'"{HEADLINE}"', HEADLINE),
    (f"“{HEADLINE}”", HEADLINE),
    (f"'{HEADLINE}'", HEADLINE),
    (f'Headline: "{HEADLINE}"', HEADLINE),
    # markdown
    (f"**{HEADLINE}**", HEADLINE),
    (f"**Subject:** {SUBJECT}", SUBJECT),
    (f"**Subject:**\n**{SUBJECT}**", SUBJECT),
    (f"# {HEADLINE}", HEADLINE),
    (f"## Headline: {HEADLINE}", HEADLINE),
    (f"`{SUBJECT}`", SUBJECT),
    (f"- {SUBJECT}", SUBJECT),
    (f"1. {SUBJECT}\n2. Handle an empty cache", SUBJECT),
    # trailing explanations
    (f"{HEADLINE}\nThis headline captures the article.", HEADLINE),
    (f"{HEADLINE}\n\nThis headline is concise and informative.", HEADLINE),
    (f"{HEADLINE}. This headline highlights the planting.", HEADLINE + "."),
    (f'"{HEADLINE}" - this headline captures the essence of the article', HEADLINE),
    (f"{SUBJECT} (This subject line summarizes the change.)", SUBJECT),
    (f"{SUBJECT} — it concisely describes the fix", SUBJECT),
    (f'Sure! Here is a headline:\n"{HEADLINE}"\n\nThis headline captures the essence of the article.', HEADLINE),
    # whitespace
    (f"\n\n  {HEADLINE}  \n", HEADLINE),
])
def test_chatter_is_removed(raw: str, answer: str) -> None:
    assert extract_answer(raw) == answer


@pytest.mark.parametrize("answer", [
    "capture: fix a leak when the fixture fails",  # a scope before a colon is part of a commit subject
    "summary: show skipped tests",
    "Rivers: a new hope for city trees",
    "Breaking: Trees line the river",
    "Fix #1234: crash when the summary is empty",
    "Here's why vaccines matter",
    "Here's the thing: vaccines work",
    "Great news for runners in Boston",
    "The line between art and science: a new study",
    'Add "strict" option to `pytest.raises`',
    "Use `tmp_path` in tests",
    "__init__ cleanups",
    "It is clear the economy is slowing",
    "This is the best day of the year",
    "Don't stop believing",
    "'tis the season for flu shots",
    '"Yes" she said, and the crowd cheered',
    "Yes",
    "Title IX rules change again",
    "Subjects of the crown gather in London",
    "1.5x faster collection on large suites",
    "Tweet of the day: a cat on a keyboard",
])
def test_answers_without_chatter_are_kept_as_they_are(answer: str) -> None:
    assert extract_answer(answer) == answer


@pytest.mark.parametrize("raw", [
    "",
    "   \n ",
    "Here's a revised subject for the previous commit message:",
    "Sure! Here is a headline:",
    "Subject:",
])
def test_only_chatter_is_no_answer(raw: str) -> None:
    assert extract_answer(raw) == ""


def test_multi_line_answers_keep_their_later_lines() -> None:
    assert extract_answer("Sure! Here is the reply:\nFirst line.\nSecond line.", single_line=False) == \
        "First line.\nSecond line."


def test_raw_answer_is_the_first_line_unchanged() -> None:
    assert raw_answer('\n  Subject: "Fix it"  \nThis subject ...') == 'Subject: "Fix it"'
    assert raw_answer("") == ""


# Tasks whose answer is one line (every LaMP-style one); the preference task's is the whole reply.
@pytest.mark.parametrize("name", [name for name in TASKS.names()
                                  if get_task(name).kind == "generation" and "\n" in get_task(name).stop])
def test_every_generation_task_extracts_or_keeps_raw_answers(name: str) -> None:
    from dataclasses import replace

    task = get_task(name)
    raw = "Sure! Here is the answer:\n**Trees line the river**\nThis answer captures it."
    assert task.answers == "extract"
    assert task.parse(raw) == "Trees line the river"
    # Extracting, a one-line task generates past a preamble's line break, with room for it.
    assert "\n" not in task.generation_stop
    assert task.generation_tokens == task.max_new_tokens + ANNOUNCEMENT_TOKENS
    kept = replace(task, answers="raw")
    assert kept.parse(raw) == "Sure! Here is the answer:"
    assert kept.generation_stop == task.stop and kept.generation_tokens == task.max_new_tokens


@pytest.mark.parametrize("name", ["LaMP-2", "LaMP-3", "movielens-ratings"])
def test_label_and_rating_tasks_are_untouched(name: str) -> None:
    task = get_task(name)
    assert task.generation_stop == task.stop and task.generation_tokens == task.max_new_tokens


def _commit_task(folder: Path) -> Path:
    questions = [{"id": f"q{i}", "user_id": f"user{i}", "input": "Generate a subject for the following commit "
                  f"message: The cache was read before it was filled {i}.",
                  "profile": [{"id": f"p{i}", "title": "Old subject", "text": "old body", "date": "2020-01-01"}]}
                 for i in range(3)]
    golds = [{"id": f"q{i}", "output": SUBJECT} for i in range(3)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dev_questions.json").write_text(json.dumps(questions), encoding="utf-8")
    (folder / "dev_outputs.json").write_text(json.dumps({"task": "LaMP_6", "golds": golds}), encoding="utf-8")
    return folder


def test_eval_measures_none_with_and_without_extraction(tmp_path: Path) -> None:
    data = _commit_task(tmp_path / "data")
    chatter = f"Here's a revised subject for the commit message:\n\n**{SUBJECT}**\n\nThis subject line is short."
    scores = {}
    for answers in ("extract", "raw"):
        backend = EchoBackend([chatter])
        out = tmp_path / answers
        config = EvalConfig(task="commits", data=str(data), methods=("none",), backend="echo", out=str(out),
                            answers=answers, n_resamples=50)  # type: ignore[arg-type]
        report = evaluate(config, backend=backend, progress=None)
        scores[answers] = report.results[0].metrics["rouge-1"]
        results = json.loads((out / "results.json").read_text(encoding="utf-8"))
        assert results["config"]["answers"] == answers
        task = get_task("commits")
        expected_stop, expected_tokens = ((), task.max_new_tokens + ANNOUNCEMENT_TOKENS) if answers == "extract" \
            else (("\n",), task.max_new_tokens)
        assert all(r.stop == expected_stop and r.max_new_tokens == expected_tokens for r in backend.requests)
    assert scores["extract"] == pytest.approx(1.0)
    assert scores["raw"] < 0.5
    # A folder made one way refuses a rerun the other way: its predictions were taken differently.
    with pytest.raises(ValueError, match="answers"):
        evaluate(EvalConfig(task="commits", data=str(data), methods=("none",), backend="echo",
                            out=str(tmp_path / "raw"), n_resamples=50), backend=EchoBackend([chatter]), progress=None)


def test_eval_rejects_an_unknown_answer_mode() -> None:
    with pytest.raises(ValueError, match="answers must be one of extract, raw"):
        EvalConfig(task="commits", data=".", answers="clean")  # type: ignore[arg-type]
