"""Adapters on the real default model (SmolLM2-135M-Instruct): training helps, and it is per user."""

from __future__ import annotations

import pytest

from tailor.adapters.data import training_pairs
from tailor.adapters.store import AdapterKey, AdapterStore
from tailor.adapters.train import LoRATrainConfig, LoRATrainer
from tailor.methods import build_personalizer
from tailor.tasks import get_task
from tailor.types import GenerationRequest, HistoryRecord, Profile

from .conftest import history

pytestmark = pytest.mark.model
TASK = get_task("LaMP-4")
# Small enough to train in seconds on 2 cores, big enough to move the model.
QUICK = LoRATrainConfig(rank=4, top_layers=2, epochs=3, learning_rate=5e-3, batch_size=8, max_input_tokens=24,
                        max_output_tokens=16)


@pytest.fixture(scope="module")
def trainer() -> LoRATrainer:
    from tailor.backends.hf import default_model_dir

    return LoRATrainer(default_model_dir())


def records(user_id: str) -> list[HistoryRecord]:
    return [HistoryRecord(i["id"], {"title": i["title"], "text": i["text"]}, i["date"]) for i in history(user_id, 8)]


def test_a_few_steps_lower_the_loss_on_the_users_items(trainer: LoRATrainer) -> None:
    pairs = training_pairs(TASK, records("alice"))
    before = trainer.loss(TASK, pairs, QUICK)
    result = trainer.train(TASK, pairs, QUICK)
    after = trainer.loss(TASK, pairs, QUICK, adapter=result.weights, shape=result.shape)
    assert result.steps == 3
    assert after < before - 0.5, (before, after)


def test_a_users_adapter_changes_that_users_output_and_no_one_elses(trainer: LoRATrainer,
                                                                   adapter_store: AdapterStore) -> None:
    from tailor.backends.hf import DefaultBackend

    result = trainer.train(TASK, training_pairs(TASK, records("alice")), QUICK)
    adapter_store.save(AdapterKey("user", "alice", TASK.name), result.weights,
                       config={"lora": result.shape.to_dict(), "train": QUICK.to_dict()}, base_model=trainer.identity)
    backend = DefaultBackend(batch_size=4)
    none = build_personalizer("none", TASK, count_tokens=backend.count_tokens)
    article = ("Generate a headline for the following article: Heavy rain flooded the harbour overnight and "
               "fishermen said their boats were damaged.")
    messages = none.personalize(TASK, article, history_profile("bob")).messages
    requests = [GenerationRequest(messages=messages, max_new_tokens=8, stop=TASK.stop, user_id=user_id)
                for user_id in ("alice", "bob")]
    plain = backend.generate(requests)
    adapted = backend.with_adapters(adapter_store, TASK.name).generate(requests)
    assert plain[0].text == plain[1].text  # same prompt: the base model answers both alike
    assert adapted[0].text != plain[0].text, adapted[0].text
    assert adapted[1].text == plain[1].text


def history_profile(user_id: str) -> Profile:
    return Profile(user_id, tuple(records(user_id)))

