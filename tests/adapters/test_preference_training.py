"""Preference adapters trained with TRL on a tiny model: the loss goes down, the weights
come out in tailor's adapter format and go into the adapter store."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from tailor.adapters.lora import from_bytes
from tailor.adapters.preference import (
    PreferenceExample,
    PreferenceTrainConfig,
    PreferenceTrainer,
    completion_log_likelihoods,
)

EXAMPLES = [PreferenceExample(({"role": "user", "content": f"question number {i}?"},),
                              "Yes, briefly.", "Well, it is a long story with many turns and many more words.")
            for i in range(8)]


@pytest.fixture(scope="module")
def trainer(tiny_model_dir: Path) -> PreferenceTrainer:
    return PreferenceTrainer(tiny_model_dir, threads=1)


@pytest.mark.parametrize("loss", ["dpo", "kto", "simpo"])
def test_the_loss_goes_down_and_the_weights_are_a_lora(trainer: PreferenceTrainer, loss: str) -> None:
    config = PreferenceTrainConfig(loss=loss, epochs=4, batch_size=4, learning_rate=2e-2, top_layers=2)  # type: ignore[arg-type]
    result = trainer.train(EXAMPLES, config)
    assert result.steps == len(result.losses) >= 4
    assert result.last_loss < result.first_loss
    weights = from_bytes(result.weights, result.shape)
    assert weights.modules() and all(".layers.2." in m or ".layers.3." in m for m in weights.modules())
    if loss != "kto":
        assert result.examples == len(EXAMPLES)
    else:  # a pair is one liked and one disliked reply
        assert result.examples == 2 * len(EXAMPLES)


def test_a_log_likelihood_term_pulls_the_adapter_towards_the_chosen_replies(trainer: PreferenceTrainer) -> None:
    config = PreferenceTrainConfig(loss="dpo", epochs=4, batch_size=4, learning_rate=2e-2, top_layers=2, sft_weight=0.0)
    plain = trainer.train(EXAMPLES, config)
    pulled = trainer.train(EXAMPLES, PreferenceTrainConfig(**{**config.to_dict(), "sft_weight": 1.0}))
    items = [(EXAMPLES[0].messages, EXAMPLES[0].chosen)]
    base = completion_log_likelihoods(trainer, items, None)[0]
    after_plain = completion_log_likelihoods(trainer, items, from_bytes(plain.weights, plain.shape))[0]
    after_pulled = completion_log_likelihoods(trainer, items, from_bytes(pulled.weights, pulled.shape))[0]
    assert after_pulled > max(base, after_plain)


def test_pairs_are_required_except_for_kto(trainer: PreferenceTrainer) -> None:
    rated = [PreferenceExample(({"role": "user", "content": "hi"},), chosen="hello")]
    with pytest.raises(ValueError, match="--loss kto"):
        trainer.train(rated, PreferenceTrainConfig(loss="dpo"))


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="loss must be one of"):
        PreferenceTrainConfig(loss="ppo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size >= 2"):
        PreferenceTrainConfig(loss="kto", batch_size=1)
    with pytest.raises(ValueError, match="sft_weight adds a term to DPO"):
        PreferenceTrainConfig(loss="simpo", sft_weight=1.0)
    assert PreferenceTrainConfig(loss="dpo").sft_weight == 1.0
    assert PreferenceTrainConfig(loss="kto").sft_weight == PreferenceTrainConfig(loss="simpo").sft_weight == 0.0
    with pytest.raises(ValueError, match="sft_weight must be 0 or more"):
        PreferenceTrainConfig(sft_weight=-1.0)
