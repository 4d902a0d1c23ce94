"""Fact extraction a small model can do: statements found by code, judged by the model, written by code."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tailor.backends.echo import EchoBackend
from tailor.memory.clauses import candidate_statements, split_clauses, statement_fact
from tailor.memory.extraction import JUDGE_INSTRUCTION, NO, YES, FactExtractor, judge_request
from tailor.memory.store import MemoryStore
from tailor.memory.worker import ExtractionWorker
from tailor.store.sqlite import SQLiteProfileStore
from tailor.types import GenerationRequest, GenerationResult

MARIA = ["I'm Maria, I live in Lisbon and I work as a nurse",
         "I'm vegetarian, so please never suggest meat recipes",
         "My daughter Ana turns 7 next week; she loves dinosaurs",
         "Actually I moved to Porto last month"]


class ScriptedJudge:
    """A model that says ``yes`` by a margin per statement (``default`` for the others)."""

    def __init__(self, margins: dict[str, float] | None = None, default: float = 2.0) -> None:
        self.margins = margins or {}
        self.default = default
        self.batches: list[list[GenerationRequest]] = []

    def __call__(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.batches.append(list(requests))
        results = []
        for request in requests:
            statement = request.messages[-1]["content"]
            margin = self.margins.get(statement, self.default)
            scores = {YES: -1.0 + margin / 2, NO: -1.0 - margin / 2}
            results.append(GenerationResult(text=YES if margin >= 0 else NO, scores=scores))
        return results


def test_a_message_is_cut_where_a_new_subject_starts() -> None:
    clauses = split_clauses("Oh and I'm Maria, I live in Lisbon and I work as a nurse. Where is Porto?")
    assert [clause.text for clause in clauses] == ["I'm Maria", "I live in Lisbon", "I work as a nurse", "Where is Porto"]
    assert [clause.question for clause in clauses] == [False, False, False, True]
    # A list is one clause: no subject follows its commas.
    assert [c.text for c in split_clauses("I like hiking, swimming and chess")] == ["I like hiking, swimming and chess"]


@pytest.mark.parametrize("message", [
    "Can you suggest a dinner for tonight?", "Am I supposed to tip in Japan?", "Thanks, that was great!",
    "Write me a poem about the sea.", "I need a recipe for pancakes.", "I think the city is too crowded.",
    "If I lived in Rome I would walk everywhere.", "I wish I had a boat.", "I might learn to surf someday.",
    "I'm exhausted today.", "I'm on the train right now.", "She says hi to you.",
    "Dogs are loyal animals.", "Fix this: 'I is happy'", "I agree.", "I like that.", "I'll do it later.",
])
def test_questions_requests_opinions_conditions_and_moments_are_no_candidates(message: str) -> None:
    assert candidate_statements(message) == []


def test_first_person_statements_are_candidates_and_lead_words_go() -> None:
    # About someone else, but in the first person: a candidate, and the model decides.
    assert candidate_statements("My cousin lives in Oslo, he says hi.") == ["My cousin lives in Oslo"]
    assert candidate_statements("Actually I moved to Porto last month") == ["I moved to Porto last month"]
    assert candidate_statements("I'm vegetarian, so please never suggest meat recipes") == ["I'm vegetarian"]
    assert candidate_statements("My daughter Ana turns 7 next week; she loves dinosaurs") == [
        "My daughter Ana turns 7 next week"]
    assert candidate_statements("I have two cats. I have two cats!") == ["I have two cats"]  # no repeats


@pytest.mark.parametrize(("statement", "text"), [
    ("I'm Maria", "user.name = Maria"),
    ("My name is Jo Ann", "user.name = Jo Ann"),
    ("Call me Sam", "user.name = Sam"),
    ("I moved to Porto last month", "user.city = Porto"),
    ("I live in New York with my wife", "user.city = New York"),
    ("We moved to Melbourne two years ago", "user.city = Melbourne"),
    ("I'm from Nairobi originally", "user.hometown = Nairobi"),
    ("I work as a nurse", "user.job = nurse"),
    ("I'm a software engineer in Osaka", "user.job = software engineer"),
    ("I work for a bank", "user.employer = a bank"),
    ("I'm vegetarian", "user.diet = vegetarian"),
    ("I've been vegan for years", "user.diet = vegan"),
    ("I'm 34 years old", "user.age = 34"),
    ("I'm allergic to peanuts", "user.allergies += peanuts"),
    ("I love jazz, especially Coltrane", "user.likes += jazz"),
    ("I can't stand horror movies", "user.dislikes += horror movies"),
    ("I speak Portuguese", "user.languages += Portuguese"),
    ("I'm a big fan of chess", "user.likes += chess"),
    # Not of a known kind, or a name-like word that is no name: kept as said.
    ("I'm a night owl", "I'm a night owl"),
    ("I'm Portuguese", "I'm Portuguese"),
    ("i live in a small flat", "I live in a small flat"),
    ("my daughter Ana turns 7", "My daughter Ana turns 7"),
])
def test_code_writes_a_kept_statement_as_a_fact(statement: str, text: str) -> None:
    fact = statement_fact(statement, 0.7)
    assert fact.text == text
    assert fact.confidence == 0.7


def test_the_model_decides_per_statement_by_its_margin_in_one_batch() -> None:
    judge = ScriptedJudge({"I live in Lisbon": 1.5, "I work as a nurse": -0.4, "I'm Maria": 0.1})
    extractor = FactExtractor(judge, threshold=0.0)
    facts = extractor.extract(MARIA[0])
    assert [fact.text for fact in facts] == ["user.name = Maria", "user.city = Lisbon"]
    assert len(judge.batches) == 1 and len(judge.batches[0]) == 3
    # Confidence is 0.5 at the threshold and grows with the margin.
    assert facts[0].confidence == pytest.approx(1 / (1 + math.exp(-0.1)))
    assert facts[1].confidence > facts[0].confidence > 0.5
    assert [fact.text for fact in FactExtractor(judge, threshold=1.0).extract(MARIA[0])] == ["user.city = Lisbon"]


def test_nothing_is_asked_of_the_model_without_a_candidate() -> None:
    judge = ScriptedJudge()
    assert FactExtractor(judge).extract("Suggest a dinner for tonight and a birthday gift idea") == []
    assert judge.batches == []


def test_the_judge_request_scores_yes_and_no_after_worked_examples() -> None:
    request = judge_request("I'm vegetarian")
    assert request.candidates == (YES, NO)
    assert request.messages[0] == {"role": "system", "content": JUDGE_INSTRUCTION}
    assert request.messages[-1] == {"role": "user", "content": "I'm vegetarian"}
    answers = [m["content"] for m in request.messages if m["role"] == "assistant"]
    assert set(answers) == {YES, NO}


def test_any_scoring_backend_can_judge() -> None:
    backend = EchoBackend()
    facts = FactExtractor(backend.generate, threshold=-100.0).extract("I live in Lisbon")
    assert [fact.text for fact in facts] == ["user.city = Lisbon"]
    assert backend.requests[-1].candidates == (YES, NO)
    with pytest.raises(ValueError, match="finite"):
        FactExtractor(backend.generate, threshold=math.nan)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteProfileStore]:
    with SQLiteProfileStore(tmp_path / "store.db") as opened:
        opened.set_attributes("maria", {})
        yield opened


def test_maria_moving_to_porto_supersedes_lisbon_and_keeps_the_history(store: SQLiteProfileStore) -> None:
    memory = MemoryStore(store)
    worker = ExtractionWorker(memory, FactExtractor(ScriptedJudge()))
    for index, message in enumerate(MARIA):
        worker.submit("maria", memory.add_exchange("maria", f"c{index}", message, "Noted."))
    assert worker.flush("maria", timeout=10)
    worker.close()
    active = [m.text for m in memory.list_memories("maria")]
    assert active == ["user.name = Maria", "user.job = nurse", "user.diet = vegetarian",
                      "My daughter Ana turns 7 next week", "user.city = Porto"]
    everything = memory.list_memories("maria", include_superseded=True)
    lisbon = next(m for m in everything if m.text == "user.city = Lisbon")
    porto = next(m for m in everything if m.text == "user.city = Porto")
    assert lisbon.superseded_by == porto.id
    assert [event["event"] for event in memory.history("maria")[lisbon.id]] == ["ADD", "SUPERSEDED"]


def test_statements_the_model_rejects_leave_no_memory(store: SQLiteProfileStore) -> None:
    memory = MemoryStore(store)
    worker = ExtractionWorker(memory, FactExtractor(ScriptedJudge(default=-1.0)))
    message = memory.add_exchange("maria", "c1", "I'm stuck in traffic", "Oh no.")
    worker.submit("maria", message)
    assert worker.flush("maria", timeout=10)
    worker.close()
    assert memory.list_memories("maria") == []
    assert memory.pending_messages() == []  # done, not left pending
