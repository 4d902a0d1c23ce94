"""DecodedRow: the text of a row as a batch decodes, one token at a time, with the default
model's tokenizer (byte-level BPE: characters split across tokens, spaces inside tokens)."""

from __future__ import annotations

from typing import Any

import pytest

from tailor.backends.contract import DecodedRow
from tailor.types import GenerationRequest

TEXTS = [
    "Crème brûlée 🍰 costs 5€ — a naïve façade, 東京 and Zürich.",
    "fix(cache): don't  double-count\ttabs\n\nSigned-off-by: Ana <ana@example.org>",
    "  leading spaces, then 'quotes' and \"more\"...",
]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    transformers = pytest.importorskip("transformers")
    from tailor.backends.hf import default_model_dir

    return transformers.AutoTokenizer.from_pretrained(str(default_model_dir()), local_files_only=True)


def row_for(tokenizer: Any, **options: Any) -> DecodedRow:
    request = GenerationRequest(messages=({"role": "user", "content": "x"},), **options)
    return DecodedRow(request, tokenizer, {tokenizer.eos_token_id})


@pytest.mark.parametrize("text", TEXTS)
def test_text_grows_as_the_whole_decode_does(tokenizer: Any, text: str) -> None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    row = row_for(tokenizer, max_new_tokens=len(ids) + 5)
    for count, token in enumerate(ids, start=1):
        row.add(token)
        whole = tokenizer.decode(ids[:count], skip_special_tokens=True)
        # Never a broken character; always the start of what the whole decode says.
        assert "\ufffd" not in row.text and whole.startswith(row.text)
    assert row.text == tokenizer.decode(ids, skip_special_tokens=True) == text
    assert row.result().text == text.strip() and row.result().tokens == len(ids)
    assert not row.done


def test_ends_at_end_token_limit_and_stop_string(tokenizer: Any) -> None:
    ids = tokenizer("one two three four five", add_special_tokens=False)["input_ids"]
    ended = row_for(tokenizer, max_new_tokens=50)
    ended.add(ids[0])
    ended.add(tokenizer.eos_token_id)
    ended.add(ids[1])  # nothing after the end
    assert ended.done and ended.tokens == ids[:1]
    limited = row_for(tokenizer, max_new_tokens=2)
    for token in ids:
        limited.add(token)
    assert limited.done and len(limited.tokens) == 2
    stopped = row_for(tokenizer, max_new_tokens=50, stop=(" three",))
    for token in ids:
        stopped.add(token)
        if stopped.done:
            break
    assert stopped.done and stopped.result().text == "one two"
    assert len(stopped.tokens) < len(ids)
