"""LoRA weights, stacking and the trainer, on a tiny random model (fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailor.adapters.data import encode_pairs, training_pairs
from tailor.adapters.lora import LoRAShape, LoRAWeights, compose, from_bytes, to_bytes
from tailor.adapters.train import LoRATrainConfig, LoRATrainer
from tailor.tasks import get_task
from tailor.types import HistoryRecord

from .conftest import history

torch = pytest.importorskip("torch")
TASK = get_task("LaMP-4")


def records(user_id: str, n: int = 8) -> list[HistoryRecord]:
    return [HistoryRecord(i["id"], {"title": i["title"], "text": i["text"]}, i["date"]) for i in history(user_id, n)]


def random_lora(rank: int, seed: int, modules: tuple[str, ...] = ("model.layers.0.self_attn.q_proj",)) -> LoRAWeights:
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for module in modules:
        tensors[module + ".lora_A.weight"] = torch.randn(rank, 6, generator=generator)
        tensors[module + ".lora_B.weight"] = torch.randn(5, rank, generator=generator)
    return LoRAWeights(LoRAShape(rank, 2.0 * rank, ("q_proj",), (0,)), tensors)


def test_weights_round_trip_through_bytes() -> None:
    weights = random_lora(4, 0)
    loaded = from_bytes(to_bytes(weights), weights.shape.to_dict())
    assert loaded.shape == weights.shape
    for key, value in weights.tensors.items():
        assert torch.equal(loaded.tensors[key], value)


def test_composing_two_loras_sums_their_updates() -> None:
    first = random_lora(4, 0)
    second = random_lora(2, 1, ("model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"))
    stacked = compose([first, second])
    assert stacked.shape.rank == 6 and stacked.shape.scaling == 1.0
    q0, q1 = "model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"
    assert torch.allclose(stacked.delta(q0), first.delta(q0) + second.delta(q0), atol=1e-5)
    assert torch.allclose(stacked.delta(q1), second.delta(q1), atol=1e-5)  # absent from the first: zero blocks


def test_pairs_follow_the_none_prompt_and_train_only_the_output(tiny_model_dir: Path) -> None:
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model_dir)
    pairs = training_pairs(TASK, records("alice", 3))
    assert pairs[0].output == "Breaking: the harbour story"
    encoded = encode_pairs(TASK, pairs, tokenizer, max_input_tokens=16, max_output_tokens=32)
    first = encoded[0]
    target = tokenizer.decode(first.ids[first.prompt_length:])
    assert target == "Breaking: the harbour story" + tokenizer.eos_token
    prompt = tokenizer.decode(first.ids[: first.prompt_length])
    assert TASK.instruction in prompt and prompt.endswith("assistant\n")


def test_pairs_of_a_task_without_item_turns_fall_back_to_the_items_text() -> None:
    tweets = get_task("LaMP-7")
    pairs = training_pairs(tweets, [HistoryRecord("t1", {"text": "loving the sunshine today"})])
    assert pairs[0].output == "loving the sunshine today" and pairs[0].input


def test_training_lowers_the_loss_and_respects_the_shape(tiny_model_dir: Path) -> None:
    trainer = LoRATrainer(tiny_model_dir)
    config = LoRATrainConfig(rank=4, top_layers=2, epochs=4, learning_rate=1e-2, batch_size=4, max_input_tokens=24)
    pairs = training_pairs(TASK, records("alice"))
    before = trainer.loss(TASK, pairs, config)
    result = trainer.train(TASK, pairs, config)
    after = trainer.loss(TASK, pairs, config, adapter=result.weights, shape=result.shape)
    assert after < before
    assert result.shape.layers == (2, 3) and result.steps == 4 * 2
    weights = from_bytes(result.weights, result.shape)
    layers = {int(module.split(".")[2]) for module in weights.modules()}
    assert layers == {2, 3}
    # 8 steps: the first and the last step are the tenths the learning curve is read from.
    assert result.first_steps_loss is not None and result.last_steps_loss is not None
    assert result.last_steps_loss < result.first_steps_loss


def test_one_epoch_still_shows_a_learning_curve(tiny_model_dir: Path) -> None:
    trainer = LoRATrainer(tiny_model_dir)
    config = LoRATrainConfig(rank=4, top_layers=2, epochs=1, learning_rate=3e-2, batch_size=1, max_input_tokens=24)
    # One item seen 20 times in one epoch: a curve the first and last tenths (2 steps each) must show.
    result = trainer.train(TASK, training_pairs(TASK, records("alice"))[:1] * 20, config)
    assert result.steps == 20
    # One epoch: its mean loss is both the first and the last epoch's; the steps' tenths differ.
    assert result.first_epoch_loss == result.last_epoch_loss
    assert result.first_steps_loss is not None and result.last_steps_loss is not None
    assert result.last_steps_loss < result.first_steps_loss


def test_the_frozen_pass_with_a_shared_prefix_matches_the_plain_one(tiny_model_dir: Path) -> None:
    trainer = LoRATrainer(tiny_model_dir)
    config = LoRATrainConfig(rank=4, top_layers=2, batch_size=4, max_input_tokens=24)
    trainer._fresh_lora(config.shape(trainer.num_layers), 0)
    encoded = trainer.encode(TASK, training_pairs(TASK, records("bob", 4)), config)
    batch = trainer._batches(encoded, 4)[0]
    shared = trainer._shared_prefix(encoded)
    assert shared > 10  # the system message and the instruction
    prefix = trainer._prefix_cache(encoded[0].ids[:shared], 2)
    with_prefix = trainer._lower_states(batch, 2, prefix)
    plain = trainer._lower_states(batch, 2)
    real = batch["attention"].bool()
    assert torch.allclose(with_prefix[real], plain[real], atol=1e-5)


def test_stacking_merges_and_restores_the_base_weights(tiny_model_dir: Path) -> None:
    trainer = LoRATrainer(tiny_model_dir)
    config = LoRATrainConfig(rank=4, top_layers=2, epochs=1, batch_size=4, max_input_tokens=24)
    pairs = training_pairs(TASK, records("carol", 4))
    below = trainer.train(TASK, pairs, config)
    weights = from_bytes(below.weights, below.shape)
    module = weights.modules()[0]
    original = trainer._linear(module).weight.detach().clone()
    trainer.stack_on(weights, "digest")
    assert torch.allclose(trainer._linear(module).weight, original + weights.delta(module), atol=1e-6)
    trainer.stack_on(None)
    assert torch.equal(trainer._linear(module).weight, original)


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="rank"):
        LoRATrainConfig(rank=0)
    with pytest.raises(ValueError, match="top_layers"):
        LoRATrainConfig(top_layers=-1)
    assert LoRATrainConfig(top_layers=0).shape(30).layers is None
    assert LoRATrainConfig(top_layers=6).shape(30).layers == tuple(range(24, 30))
