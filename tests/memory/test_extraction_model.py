"""Fact extraction on the real default model (SmolLM2-135M-Instruct through ONNX Runtime GenAI):
the issue's Maria messages give her diet and her new city; a passing remark gives nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailor.memory.extraction import FactExtractor
from tailor.memory.store import MemoryStore
from tailor.store.sqlite import SQLiteProfileStore

pytestmark = pytest.mark.model

MARIA = ["I'm Maria, I live in Lisbon and I work as a nurse",
         "I'm vegetarian, so please never suggest meat recipes",
         "My daughter Ana turns 7 next week; she loves dinosaurs",
         "Actually I moved to Porto last month"]


def test_maria_on_the_default_model(tmp_path: Path) -> None:
    from tailor.backends import load_backend

    extractor = FactExtractor(load_backend("default").generate)
    with SQLiteProfileStore(tmp_path / "store.db") as store:
        store.set_attributes("maria", {})
        memory = MemoryStore(store)
        for message in MARIA:
            memory.add_facts("maria", [fact for fact in extractor.extract(message) if fact.confidence >= 0.5])
        active = {m.text for m in memory.list_memories("maria")}
        assert {"user.diet = vegetarian", "user.city = Porto"} <= active
        assert "user.city = Lisbon" not in active  # superseded, by code
    assert extractor.extract("I have no idea") == []  # a candidate the model turns down
    assert extractor.extract("Suggest a dinner for tonight and a birthday gift idea") == []
