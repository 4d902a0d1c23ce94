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
    completion_log_likelihoods_under,
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


def _whole_pass_score(trainer: PreferenceTrainer, messages: tuple[dict[str, str], ...], completion: str) -> float:
    """One text's completion log-likelihood from one plain forward pass of the whole model."""
    torch, tokenizer = trainer.torch, trainer.tokenizer
    prompt = list(tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"])
    target = list(tokenizer(completion, add_special_tokens=False)["input_ids"]) + [tokenizer.eos_token_id]
    with torch.no_grad():
        logits = trainer.model(input_ids=torch.tensor([prompt + target])).logits[0]
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return sum(float(log_probs[len(prompt) - 1 + j, t]) for j, t in enumerate(target))


def test_scores_under_many_adapters_share_the_layers_below_them(trainer: PreferenceTrainer) -> None:
    import peft

    config = PreferenceTrainConfig(loss="dpo", epochs=2, batch_size=4, learning_rate=2e-2, top_layers=2)
    trained = [trainer.train(EXAMPLES[:4], config),
               trainer.train(EXAMPLES[4:], PreferenceTrainConfig(**{**config.to_dict(), "seed": 1}))]
    adapters = [from_bytes(r.weights, r.shape) for r in trained]
    items = [(e.messages, text) for e in EXAMPLES[:3] for text in (e.chosen, e.rejected)] + \
            [((EXAMPLES[0].messages[0], {"role": "assistant", "content": "ok"}, {"role": "user", "content": "and?"}),
              "A longer reply, with more words in it than the others have.")]
    bottom_layer = trainer.model.get_decoder().layers[0]
    calls: list[int] = []
    hook = bottom_layer.register_forward_hook(lambda *_: calls.append(1))
    try:
        scores = completion_log_likelihoods_under(trainer, items, [None, *adapters], batch_size=3)
        # Three batches: the bottom layer ran once for each, plus once for the whole pass that
        # checks the first batch; not once per adapter and batch (that would be 9).
        assert len(calls) == 3 + 1
        # Kept two batches at a time (each adapter loaded once per pair of batches): the same.
        grouped = completion_log_likelihoods_under(trainer, items, [None, *adapters], batch_size=3, group_texts=6)
        assert all(g == pytest.approx(s, abs=1e-4) for g, s in zip(grouped, scores, strict=True))
        assert len(calls) == 2 * (3 + 1)
        # One model alone shares nothing: one whole pass per batch, no check pass.
        completion_log_likelihoods(trainer, items, adapters[0], batch_size=3)
        assert len(calls) == 2 * (3 + 1) + 3
    finally:
        hook.remove()
    for adapter, got in zip([None, *adapters], scores):
        if adapter is not None:
            lora = trainer._fresh_lora(adapter.shape, 0)
            peft.set_peft_model_state_dict(lora, adapter.to_peft(), adapter_name="default")
            expected = [_whole_pass_score(trainer, tuple(m), c) for m, c in items]
        else:
            with trainer._peft.disable_adapter():
                expected = [_whole_pass_score(trainer, tuple(m), c) for m, c in items]
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-3)
    assert scores[1] != pytest.approx(scores[0], abs=1e-3) and scores[2] != pytest.approx(scores[1], abs=1e-3)
    assert completion_log_likelihoods(trainer, items[:2], adapters[0]) == pytest.approx(scores[1][:2], abs=1e-4)


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
