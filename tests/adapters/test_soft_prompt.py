"""User embeddings as soft prompts, on a tiny model with the hashing embedder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tailor.adapters.soft_prompt import SoftPromptConfig, SoftPromptModel, SoftPromptTrainer, user_vector
from tailor.adapters.store import AdapterKey, AdapterStore
from tailor.personalizers.adapters import UserEmbeddingPersonalizer
from tailor.tasks import get_task
from tailor.types import GenerationRequest, HistoryRecord, Profile

from .conftest import history

torch = pytest.importorskip("torch")
TASK = get_task("LaMP-4")


def profile(user_id: str, n: int = 6) -> Profile:
    return Profile(user_id, tuple(HistoryRecord(i["id"], {"title": i["title"], "text": i["text"]}, i["date"])
                                  for i in history(user_id, n)))


def test_the_user_vector_weights_items_by_relevance() -> None:
    items = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    near_first = user_vector(np.array([1.0, 0.0], dtype=np.float32), items, temperature=0.1)
    assert near_first[0] > 0.99 and near_first[1] < 0.01
    even = user_vector(np.array([0.0, 0.0], dtype=np.float32), items, temperature=0.1)
    assert np.allclose(even, [0.5, 0.5])
    assert not user_vector(np.ones(2, dtype=np.float32), np.zeros((0, 2), dtype=np.float32), 0.1).any()


def test_the_projector_makes_virtual_tokens_of_the_models_width() -> None:
    config = SoftPromptConfig(virtual_tokens=3, hidden=8)
    projector = SoftPromptModel(16, 32, config, init_embedding=torch.full((32,), 0.5))
    out = projector(torch.randn(5, 16))
    assert out.shape == (5, 3, 32)
    assert projector.prefix(np.zeros(16, dtype=np.float32)).shape == (3, 32)
    # Starts near the given embedding (the mean token).
    assert torch.allclose(projector.prefix(np.zeros(16, dtype=np.float32)).mean(), torch.tensor(0.5), atol=0.1)
    again = SoftPromptModel.from_bytes(projector.to_bytes(), 16, 32, config)
    vector = torch.randn(2, 16)
    assert torch.allclose(again(vector), projector(vector))


def test_training_the_projector_lowers_the_loss(tiny_model_dir: Path) -> None:
    trainer = SoftPromptTrainer(tiny_model_dir)
    config = SoftPromptConfig(embedder="hashing", virtual_tokens=2, hidden=16, steps=25, batch_size=4,
                              learning_rate=1e-2, max_input_tokens=24)
    profiles = [profile(u) for u in ("alice", "bob", "carol")]
    _, facts = trainer.train(TASK, profiles, config)
    assert facts["users"] == 3 and facts["items"] == 18
    assert facts["last_loss"] < facts["first_loss"]


def test_the_user_embedding_method_sends_each_user_their_own_soft_prompt(tiny_model_dir: Path,
                                                                          adapter_store: AdapterStore) -> None:
    from tailor.backends.hf import TransformersBackend

    trainer = SoftPromptTrainer(tiny_model_dir)
    config = SoftPromptConfig(embedder="hashing", virtual_tokens=2, hidden=16, steps=2, max_input_tokens=24)
    projector, facts = trainer.train(TASK, [profile("alice"), profile("bob")], config)
    adapter_store.save(AdapterKey.global_(TASK.name, "soft-prompt"), projector.to_bytes(),
                       config={"soft_prompt": config.to_dict(), "task": TASK.name,
                               "projector": {"input_dim": projector.input_dim, "output_dim": projector.output_dim,
                                             "embedder_name": facts["embedder_name"]}},
                       base_model=trainer.identity)
    backend = TransformersBackend(str(tiny_model_dir), batch_size=4)
    personalizer = UserEmbeddingPersonalizer(adapter_store, TASK, count_tokens=backend.count_tokens)
    view = personalizer.bind(backend)
    text = "Generate a headline for the following article: the harbour reopened after the storm."
    requests = []
    for user_id in ("alice", "bob"):
        decided = personalizer.personalize(TASK, text, profile(user_id))
        assert decided.granularity == "user" and decided.notes["adapter"] == "soft-prompt"
        requests.append(GenerationRequest(messages=decided.messages, max_new_tokens=5, user_id=user_id))
    prefixes = [personalizer._pending[(r.user_id, r.messages[-1]["content"])] for r in requests]
    assert not torch.allclose(prefixes[0], prefixes[1])
    answers = view.generate(requests)
    assert len(answers) == 2 and not personalizer._pending  # each soft prompt was used once
    # Generating with the prefixes directly gives the same answers, batched or alone.
    alone = [backend.generate([r], prefixes=[p])[0].text for r, p in zip(requests, prefixes)]
    assert [a.text for a in answers] == alone


def test_the_llm_embedder_needs_no_sentence_model(tiny_model_dir: Path, adapter_store: AdapterStore) -> None:
    from tailor.backends.hf import TransformersBackend

    trainer = SoftPromptTrainer(tiny_model_dir)
    config = SoftPromptConfig(embedder="llm", virtual_tokens=2, hidden=8, steps=2, max_input_tokens=16)
    projector, facts = trainer.train(TASK, [profile("alice"), profile("bob")], config)
    assert facts["embedder_name"].startswith("llm-mean-") and facts["embedder_dim"] == 32
    adapter_store.save(AdapterKey.global_(TASK.name, "soft-prompt"), projector.to_bytes(),
                       config={"soft_prompt": config.to_dict(), "task": TASK.name,
                               "projector": {"input_dim": projector.input_dim, "output_dim": projector.output_dim,
                                             "embedder_name": facts["embedder_name"]}},
                       base_model=trainer.identity)
    backend = TransformersBackend(str(tiny_model_dir))
    personalizer = UserEmbeddingPersonalizer(adapter_store, TASK, count_tokens=backend.count_tokens)
    with pytest.raises(RuntimeError, match="bind"):
        personalizer.personalize(TASK, "Generate a headline for the following article: x", profile("alice"))
    view = personalizer.bind(backend)
    decided = personalizer.personalize(TASK, "Generate a headline for the following article: x", profile("alice"))
    request = GenerationRequest(messages=decided.messages, max_new_tokens=3, user_id="alice")
    assert len(view.generate([request])) == 1


def test_candidate_scoring_takes_a_soft_prefix(tiny_model_dir: Path) -> None:
    from tailor.backends.hf import TransformersBackend

    backend = TransformersBackend(str(tiny_model_dir))
    request = GenerationRequest(messages=({"role": "user", "content": "Rate it."},), candidates=("1", "5"))
    plain = backend.generate([request])[0].scores
    prefix = torch.randn(3, 32, generator=torch.Generator().manual_seed(0))
    prefixed = backend.generate([request], prefixes=[prefix])[0].scores
    assert plain is not None and prefixed is not None and plain != prefixed
    assert backend.generate([request], prefixes=[None])[0].scores == plain
