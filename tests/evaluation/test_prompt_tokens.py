"""The prompt's length beside the seconds: each prediction row holds its prompt's token
count where the backend tokenizes locally, results.json and the table hold the mean."""

from __future__ import annotations

import json
from pathlib import Path

from tailor.backends.echo import EchoBackend
from tailor.evaluation.report import format_table
from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.types import GenerationRequest

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "lamp" / "LaMP_4"


class WordTokens(EchoBackend):
    """An echo model whose tokens are the words of its messages."""

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        return [0] * sum(len(message["content"].split()) for message in request.messages)


def test_rows_results_and_table_carry_the_prompt_tokens(tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = EvalConfig(task="LaMP-4", data=str(DATA), methods=("none", "bm25"), k=1, out=str(out))
    report = evaluate(config, backend=WordTokens(), progress=None)
    rows = {method: [json.loads(line) for line in (out / "predictions" / f"{method}.jsonl").read_text().splitlines()]
            for method in ("none", "bm25")}
    for method, found in rows.items():
        assert all(row["prompt_tokens"] > 0 for row in found)
        mean = sum(row["prompt_tokens"] for row in found) / len(found)
        result = next(r for r in report.results if r.method == method)
        assert result.prompt_tokens == round(mean, 1)
    # A retrieved item makes the prompt longer, example by example.
    none = {row["id"]: row["prompt_tokens"] for row in rows["none"]}
    assert all(row["prompt_tokens"] > none[row["id"]] for row in rows["bm25"] if row["retrieved"])
    saved = json.loads((out / "results.json").read_text())
    assert [r["prompt_tokens"] for r in saved["results"]] == [r.prompt_tokens for r in report.results]
    assert "prompt tokens" in format_table(report).splitlines()[1]


def test_no_token_column_where_the_backend_does_not_count(tmp_path: Path) -> None:
    config = EvalConfig(task="LaMP-4", data=str(DATA), methods=("none",), out=str(tmp_path / "run"))
    report = evaluate(config, backend=EchoBackend(), progress=None)
    assert report.results[0].prompt_tokens is None and "prompt tokens" not in format_table(report)
