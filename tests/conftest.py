"""Fixtures shared by every test folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# The throwaway PostgreSQL server (one per session) and a schema per test, for every folder.
from tests.postgres_fixtures import other_postgres_url, postgres_server_url, postgres_url  # noqa: F401


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-layer random Llama with the default model's tokenizer, saved as a model directory."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-model"), hidden_size=32)


@pytest.fixture(scope="session")
def tiny_model_dir_wide_heads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same kind of model with 16-wide attention heads (ONNX Runtime's CPU attention needs them)."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-model-16"), hidden_size=64)


def make_tiny_llama(target: Path, *, hidden_size: int) -> Path:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    from tailor.backends.hf import default_model_dir

    source = default_model_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=True)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    for name in ("chat_template.jinja",):
        if (source / name).exists() and not (target / name).exists():
            shutil.copy(source / name, target / name)
    (target / "SOURCE").write_text("tiny random llama for tests\n", encoding="utf-8")
    return target
