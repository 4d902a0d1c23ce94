"""Serving adapters on a tiny model: fallback, LRU cache, mixed batches, no base reloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailor.adapters.lora import LoRAWeights, to_bytes
from tailor.adapters.runtime import AdapterResolver
from tailor.adapters.store import AdapterKey, AdapterStore
from tailor.testing.adapters import TEST_SHAPE as SHAPE
from tailor.testing.adapters import random_adapter, save_adapter
from tailor.types import GenerationRequest, Persona

torch = pytest.importorskip("torch")
TASK = "LaMP-4"


def save(store: AdapterStore, key: AdapterKey, weights: LoRAWeights, model_dir: Path,
         on_top_of: str | None = None) -> str:
    return save_adapter(store, key, weights, model_dir, on_top_of=on_top_of,
                        contributors=["alice", "bob", "carol"] if key.scope != "user" else ())


@pytest.fixture()
def backend(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    from tailor.backends.hf import TransformersBackend

    return TransformersBackend(str(tiny_model_dir), batch_size=4, adapter_capacity=2)


def ask(user_id: str | None, text: str = "Write a headline about the harbour.") -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},), max_new_tokens=6, user_id=user_id)


def test_resolution_falls_back_from_user_to_persona_to_global_to_none(adapter_store: AdapterStore,
                                                                       tiny_model_dir: Path) -> None:
    resolver = AdapterResolver(adapter_store, TASK, personas={"carol": "p1"})
    assert resolver.resolve("alice").label == "none" and resolver.resolve("alice").choice is None
    global_digest = save(adapter_store, AdapterKey.global_(TASK), random_adapter(tiny_model_dir, 0), tiny_model_dir)
    save(adapter_store, AdapterKey("user", "alice", TASK), random_adapter(tiny_model_dir, 1), tiny_model_dir,
         on_top_of=global_digest)
    save(adapter_store, AdapterKey("persona", "p1", TASK), random_adapter(tiny_model_dir, 2), tiny_model_dir,
         on_top_of=global_digest)
    alice, bob, carol = (resolver.resolve(u) for u in ("alice", "bob", "carol"))
    assert (alice.granularity, alice.label, len(alice.stack)) == ("user", "user", 2)
    assert (carol.granularity, carol.label) == ("persona", "persona:p1")
    assert (bob.granularity, bob.label, len(bob.stack)) == ("global", "global", 1)
    # The store's own personas come first.
    adapter_store.profiles.put_personas([Persona("p1", "d")], {"bob": "p1"})
    assert resolver.resolve("bob").label == "persona:p1"


def test_an_adapter_trained_on_another_global_adapter_is_skipped(adapter_store: AdapterStore,
                                                                  tiny_model_dir: Path) -> None:
    save(adapter_store, AdapterKey.global_(TASK), random_adapter(tiny_model_dir, 0), tiny_model_dir)
    save(adapter_store, AdapterKey("user", "alice", TASK), random_adapter(tiny_model_dir, 1), tiny_model_dir,
         on_top_of="0000000000000000")
    assert AdapterResolver(adapter_store, TASK).resolve("alice").label == "global"


def test_a_users_adapter_changes_only_that_users_output_in_a_mixed_batch(adapter_store: AdapterStore, backend,  # type: ignore[no-untyped-def]
                                                                        tiny_model_dir: Path) -> None:
    save(adapter_store, AdapterKey("user", "alice", TASK), random_adapter(tiny_model_dir, 1), tiny_model_dir)
    plain = backend.generate([ask("alice"), ask("bob")])
    view = backend.with_adapters(adapter_store, TASK)
    mixed = view.generate([ask("alice"), ask("bob")])
    assert mixed[0].text != plain[0].text
    assert mixed[1].text == plain[1].text
    assert [r.label for r in view.last_resolutions] == ["user", "none"]
    # The same rows alone give the same answers as in the mixed batch.
    assert view.generate([ask("alice")])[0].text == mixed[0].text
    # The plain backend stays plain after the view has loaded adapters.
    assert [r.text for r in backend.generate([ask("alice"), ask("bob")])] == [r.text for r in plain]


def test_candidate_scoring_applies_the_users_adapter(adapter_store: AdapterStore, backend,  # type: ignore[no-untyped-def]
                                                     tiny_model_dir: Path) -> None:
    save(adapter_store, AdapterKey("user", "alice", TASK), random_adapter(tiny_model_dir, 1), tiny_model_dir)
    request = GenerationRequest(messages=({"role": "user", "content": "Pick one."},), candidates=("yes", "no"),
                                user_id="alice")
    plain = backend.generate([request])[0].scores
    adapted = backend.with_adapters(adapter_store, TASK).generate([request])[0].scores
    assert plain is not None and adapted is not None and plain != adapted


def test_switching_users_uses_an_lru_cache_and_never_reloads_the_base(  # type: ignore[no-untyped-def]
        adapter_store: AdapterStore, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    from tailor.backends.hf import TransformersBackend

    loads = []
    original = transformers.AutoModelForCausalLM.from_pretrained

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        loads.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", counting)
    backend = TransformersBackend(str(tiny_model_dir), batch_size=4, adapter_capacity=2)
    for i, user_id in enumerate(("alice", "bob", "carol")):
        save(adapter_store, AdapterKey("user", user_id, TASK), random_adapter(tiny_model_dir, i), tiny_model_dir)
    view = backend.with_adapters(adapter_store, TASK)
    model = backend.model
    for user_id in ("alice", "bob", "alice", "bob", "carol", "alice"):
        view.generate([ask(user_id)])
    stats = backend.adapter_runtime.stats
    # alice, bob load; alice, bob hit; carol loads (evicts alice); alice loads again (evicts bob).
    assert (stats.loads, stats.hits, stats.evictions) == (4, 2, 2)
    assert len(backend.adapter_runtime.loaded) == 2
    # Two PEFT adapter slots, made once and refilled on each miss.
    assert stats.slots_created == 2 and len(backend.adapter_runtime.slots) == 2
    assert len(loads) == 1 and backend.model is model


def test_a_batch_may_need_more_adapters_than_the_cache_holds(adapter_store: AdapterStore, backend,  # type: ignore[no-untyped-def]
                                                             tiny_model_dir: Path) -> None:
    for i, user_id in enumerate(("alice", "bob", "carol")):
        save(adapter_store, AdapterKey("user", user_id, TASK), random_adapter(tiny_model_dir, i), tiny_model_dir)
    view = backend.with_adapters(adapter_store, TASK)
    together = view.generate([ask("alice"), ask("bob"), ask("carol")])
    alone = [view.generate([ask(u)])[0].text for u in ("alice", "bob", "carol")]
    assert [r.text for r in together] == alone
    assert len(backend.adapter_runtime.slots) <= 2  # the extra slot went once free


def test_an_adapter_of_another_base_model_is_refused(adapter_store: AdapterStore, backend,  # type: ignore[no-untyped-def]
                                                     tiny_model_dir: Path) -> None:
    weights = random_adapter(tiny_model_dir, 1)
    adapter_store.save(AdapterKey("user", "alice", TASK), to_bytes(weights), config={"lora": SHAPE.to_dict()},
                       base_model={"path": "/elsewhere", "fingerprint": "other"})
    with pytest.raises(ValueError, match="trained on /elsewhere"):
        backend.with_adapters(adapter_store, TASK).generate([ask("alice")])


def test_a_lower_rank_adapter_in_a_larger_slot_gives_the_same_answers(adapter_store: AdapterStore, backend,  # type: ignore[no-untyped-def]
                                                                      tiny_model_dir: Path) -> None:
    from tailor.adapters.lora import compose

    low = random_adapter(tiny_model_dir, 3)
    # A rank-8 stack occupies the only slot first; the rank-4 adapter then reuses it, zero-padded.
    stacked = compose([random_adapter(tiny_model_dir, 1), random_adapter(tiny_model_dir, 2)])
    save(adapter_store, AdapterKey("user", "alice", TASK), stacked, tiny_model_dir)
    save(adapter_store, AdapterKey("user", "bob", TASK), low, tiny_model_dir)
    backend.adapter_capacity = 1
    view = backend.with_adapters(adapter_store, TASK)
    view.generate([ask("alice")])
    reused = view.generate([ask("bob")])[0].text
    assert backend.adapter_runtime.stats.slots_created == 1
    from tailor.backends.hf import TransformersBackend

    fresh = TransformersBackend(str(tiny_model_dir), batch_size=4, adapter_capacity=1)
    assert fresh.with_adapters(adapter_store, TASK).generate([ask("bob")])[0].text == reused
