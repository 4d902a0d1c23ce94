"""Summary, persona and refine personalizers with the scripted backend and the hashing embedder."""

from __future__ import annotations

import pytest

from tailor.backends.echo import EchoBackend
from tailor.embeddings.hashing import HashingEmbedder
from tailor.methods import build_personalizer
from tailor.personalizers.contract import personalize_steps
from tailor.personalizers.notes import PersonaNote, SummaryNote
from tailor.personalizers.prompt import PromptPersonalizer
from tailor.personalizers.refine import RefinePersonalizer
from tailor.personas.builder import build_personas_across_users
from tailor.personas.chooser import PersonaChooser
from tailor.prompting.refine import STYLE_INSTRUCTION, StyleNoteWriter
from tailor.prompting.summary import SUMMARY_KIND, ProfileSummarizer
from tailor.retrieval.bm25 import BM25Retriever
from tailor.store import InMemoryProfileStore
from tailor.tasks import get_task
from tailor.types import GenerationRequest, HistoryRecord, Profile, TaskExample

TASK = get_task("LaMP-4")


def count_words(text: str) -> int:
    return len(text.split())


WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


def headline(i: int, topic: str) -> HistoryRecord:
    return HistoryRecord(f"{topic}-{i}", {"title": f"{topic} news {WORDS[i]}",
                                          "text": f"an article about {topic} {WORDS[i]}"},
                         date=f"2020-01-{i + 1:02d}")


def describe(request: GenerationRequest) -> str:
    """A scripted model: describes whichever topic its prompt is about."""
    prompt = request.messages[-1]["content"]
    for topic in ("football", "cooking", "finance"):
        if topic in prompt:
            return f"Writes short {topic} headlines.\n\nextra paragraph"
    return "Writes headlines."


def make_store() -> InMemoryProfileStore:
    store = InMemoryProfileStore()
    for user, topic in [("ana", "football"), ("ben", "football"), ("cy", "cooking"), ("di", "cooking"),
                        ("ed", "finance"), ("flo", "finance")]:
        store.add_records(user, [headline(i, topic) for i in range(5)])
    return store


def example(user: str, text: str = "Generate a headline for the following article: a match today") -> TaskExample:
    return TaskExample(id=f"q-{user}", user_id=user, input=text, profile=Profile(user))


def test_summaries_are_written_once_stored_and_invalidated_by_new_records() -> None:
    store = make_store()
    backend = EchoBackend(describe)
    summarizer = ProfileSummarizer(backend, TASK, store)
    first = summarizer.summaries(["ana", "cy"])
    assert first == {"ana": "Writes short football headlines.", "cy": "Writes short cooking headlines."}
    calls = len(backend.requests)
    assert summarizer.summaries(["ana", "cy"]) == first
    assert len(backend.requests) == calls  # read back from the store, not regenerated
    artifact = store.get_artifact("ana", SUMMARY_KIND, summarizer.key)
    assert artifact is not None and artifact.value["model"] == "echo" and artifact.value["prompt"]
    store.add_records("ana", [headline(9, "cooking")])
    assert summarizer.cached("ana") is None  # stale after the profile changed
    summarizer.summaries(["ana"])
    assert len(backend.requests) == calls + 1


def test_summary_method_puts_the_summary_and_items_in_the_prompt() -> None:
    store = make_store()
    summarizer = ProfileSummarizer(EchoBackend(describe), TASK, store)
    method = PromptPersonalizer("summary+bm25", notes=[SummaryNote(summarizer)], retriever=BM25Retriever(TASK.document),
                                k=1, count_tokens=count_words)
    assert method.prepare is not None
    method.prepare(TASK, [example("cy")], None)
    decided = method.personalize(TASK, "Generate a headline for the following article: cooking delta",
                                 store.get_profile("cy"))
    prompt = decided.messages[-1]["content"]
    assert "About this user: Writes short cooking headlines." in prompt
    assert decided.retrieved == ("cooking-3",) and decided.granularity == "user"


def test_personas_cluster_users_and_cold_start_takes_the_nearest() -> None:
    store = make_store()
    embedder = HashingEmbedder(dim=256)
    personas = build_personas_across_users(store, embedder, EchoBackend(describe), TASK, k=3)
    assert sorted(p.size for p in personas) == [2, 2, 2]
    assert store.persona_of("ana") == store.persona_of("ben") != store.persona_of("cy")
    method = PromptPersonalizer("persona", notes=[PersonaNote(PersonaChooser(store, embedder),
                                                              backend=EchoBackend(describe))], count_tokens=count_words)
    assert method.prepare is not None
    method.prepare(TASK, [example("ana")], None)
    own = method.personalize(TASK, "Generate a headline for the following article: x", store.get_profile("ana"))
    assert own.granularity == "persona" and "football" in own.messages[-1]["content"]
    # A new user with no history: the persona nearest to what the input is about.
    cold = method.personalize(TASK, "Generate a headline for the following article: cooking news about cooking",
                              Profile("newcomer"))
    assert cold.granularity == "persona" and "cooking" in cold.messages[-1]["content"]


def test_persona_without_any_personas_falls_back_to_global() -> None:
    store = InMemoryProfileStore()
    method = PromptPersonalizer("persona", notes=[PersonaNote(PersonaChooser(store, HashingEmbedder(dim=64)))],
                                count_tokens=count_words)
    decided = method.personalize(TASK, "Generate a headline for the following article: x", Profile("nobody"))
    assert decided.granularity == "global" and len(decided.messages) == 2


def test_refine_rewrites_the_instruction_from_retrieved_items() -> None:
    store = make_store()
    backend = EchoBackend(describe)
    method = RefinePersonalizer(BM25Retriever(TASK.document), StyleNoteWriter(backend, TASK), k=2,
                                count_tokens=count_words)
    decided = method.personalize(TASK, "Generate a headline for the following article: finance charlie",
                                 store.get_profile("ed"))
    assert decided.messages[0]["role"] == "system"
    assert decided.messages[0]["content"].startswith(TASK.instruction)
    assert "Follow this user's conventions: Writes short finance headlines." in decided.messages[0]["content"]
    assert "finance news" not in decided.messages[-1]["content"]  # items shape the instruction, not pasted
    calls = len(backend.requests)
    method.personalize(TASK, "Generate a headline for the following article: finance charlie", store.get_profile("ed"))
    assert len(backend.requests) == calls  # same items: the note is cached


def test_refine_as_steps_asks_for_its_note_and_builds_the_same_messages() -> None:
    store = make_store()
    text = "Generate a headline for the following article: finance charlie"
    backend = EchoBackend(describe)

    def refine() -> RefinePersonalizer:
        return RefinePersonalizer(BM25Retriever(TASK.document), StyleNoteWriter(backend, TASK), k=2,
                                  count_tokens=count_words)

    expected = refine().personalize(TASK, text, store.get_profile("ed"))
    steps = refine().personalize_steps(TASK, text, store.get_profile("ed"))
    (request,) = next(steps)  # the style note's request, for the caller to send to the model
    assert STYLE_INSTRUCTION in request.messages[-1]["content"] and request.user_id is None
    with pytest.raises(StopIteration) as done:
        steps.send(EchoBackend(describe).generate([request]))
    assert done.value.value == expected
    # A method that asks the model nothing decides at once, as steps too.
    bm25 = build_personalizer("bm25", TASK, k=2, count_tokens=count_words)
    with pytest.raises(StopIteration) as done:
        next(personalize_steps(bm25, TASK, text, store.get_profile("ed")))
    assert done.value.value == bm25.personalize(TASK, text, store.get_profile("ed"))


def test_style_notes_are_cached_by_the_items_contents_and_forgotten_with_the_user() -> None:
    backend = EchoBackend(describe)
    writer = StyleNoteWriter(backend, TASK)
    records = [headline(0, "finance")]
    assert writer.notes([("ed", records)]) == ["Writes short finance headlines."]
    assert writer.notes([("ed", records)]) == ["Writes short finance headlines."] and len(backend.requests) == 1
    # The same id with other contents (a record replaced) is another note.
    replaced = [HistoryRecord(records[0].id, {"title": "cooking news", "text": "an article about cooking"})]
    assert writer.notes([("ed", replaced)]) == ["Writes short cooking headlines."]
    writer.forget("ed")
    assert writer.notes([("ed", records)]) == ["Writes short finance headlines."] and len(backend.requests) == 3


@pytest.mark.parametrize("user", ["ana", "cy"])
def test_user_isolation_of_summaries(user: str) -> None:
    store = make_store()
    summarizer = ProfileSummarizer(EchoBackend(describe), TASK, store)
    summarizer.summaries(["ana", "cy"])
    other = "cy" if user == "ana" else "ana"
    store.delete_user(other)
    assert summarizer.cached(user) is not None
    assert not store.has_user(other)


def test_every_llm_method_runs_through_eval(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from tailor.evaluation.runner import EvalConfig, evaluate

    questions, golds = [], []
    for u, topic in enumerate(["football", "cooking", "finance", "football", "cooking", "finance"]):
        profile = [headline(i, topic).to_dict() for i in range(5)]
        questions.append({"id": f"q{u}", "user_id": f"user{u}", "profile": profile,
                          "input": f"Generate a headline for the following article: {topic} {WORDS[u]}"})
        golds.append({"id": f"q{u}", "output": f"{topic} news"})
    (tmp_path / "dev_questions.json").write_text(json.dumps(questions))
    (tmp_path / "dev_outputs.json").write_text(json.dumps({"task": "LaMP_4", "golds": golds}))
    backend = EchoBackend(describe)
    config = EvalConfig(task="LaMP-4", data=str(tmp_path), methods=("none", "summary", "summary+bm25", "persona",
                                                                     "refine"),
                        backend="echo", embedder="hashing", out=str(tmp_path / "run"), n_resamples=50)
    report = evaluate(config, backend=backend, progress=None)
    by_method = {r.method: r for r in report.results}
    assert by_method["summary"].granularity == {"user": 6}
    assert by_method["persona"].granularity == {"persona": 6}
    assert by_method["refine"].granularity == {"user": 6}
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions" / "persona.jsonl").read_text().splitlines()]
    assert all(row["notes"]["persona"].startswith("p") for row in rows)
