"""``tailor eval --embedder``: the dense methods from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tailor.cli.main import main

FIXTURES = Path(__file__).parents[1] / "fixtures" / "lamp"


def test_eval_runs_the_dense_methods_with_the_chosen_embedder(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--task", "LaMP-4", "--data", str(FIXTURES / "LaMP_4"), "--method",
                 "dense,hybrid,recency+dense:dialogue", "--backend", "echo", "--embedder", "hashing", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in data["results"]] == ["dense", "hybrid", "recency+dense:dialogue"]


def test_eval_refuses_an_unknown_embedder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--task", "LaMP-4", "--data", str(FIXTURES / "LaMP_4"), "--method", "dense",
                 "--backend", "echo", "--embedder", "glove"]) == 1
    assert "unknown embedder 'glove'" in capsys.readouterr().err


def test_the_embedding_modules_stay_light() -> None:
    """Listing embedders and building the retrievers imports no torch; only MiniLM does."""
    code = ("import sys, tailor.embeddings, tailor.retrieval.dense, tailor.retrieval.hybrid, "
            "tailor.personalizers, tailor.evaluation.runner; "
            "tailor.embeddings.EMBEDDERS.names(); "
            "print(','.join(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
