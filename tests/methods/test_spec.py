"""The one method grammar: every method eval takes and serve takes, parsed once into a spec
that composes registered method objects."""

from __future__ import annotations

import pytest

from tailor.methods import (
    METHODS,
    ModifierMethod,
    NoteMethod,
    RecommenderMethod,
    RetrievalMethod,
    WholeMethod,
    build_personalizer,
    parse_method,
    parse_methods,
)
from tailor.personalizers.prompt import PromptPersonalizer
from tailor.tasks import get_task
from tailor.tasks.chat import CHAT_TASK
from tailor.tasks.spec import TaskSpec

TASK = get_task("LaMP-4")


@pytest.mark.parametrize(("text", "canonical", "roles"), [
    ("none", "none", ["retrieval"]),
    ("bm25", "bm25", ["retrieval"]),
    ("bm25:dialogue", "bm25:dialogue", ["retrieval"]),
    ("recency+dense", "recency+dense", ["retrieval"]),
    ("summary+bm25", "summary+bm25", ["notes", "retrieval"]),
    ("persona+bm25", "persona+bm25", ["notes", "retrieval"]),
    ("BM25+Persona", "persona+bm25", ["notes", "retrieval"]),
    ("persona+summary", "summary+persona", ["notes", "notes"]),
    ("none+summary", "summary", ["notes"]),
    ("summary+persona+hybrid:lamp", "summary+persona+hybrid:lamp", ["notes", "notes", "retrieval"]),
    ("persona+recency+dense", "persona+recency+dense", ["notes", "retrieval"]),
    ("lora+bm25", "lora+bm25", ["modifier", "retrieval"]),
    ("bm25+lora", "lora+bm25", ["modifier", "retrieval"]),
    ("lora+none", "lora", ["modifier"]),
    ("lora+dense", "lora+dense", ["modifier", "retrieval"]),
    ("user-embedding", "user-embedding", ["whole"]),
    ("none+prior", "none+prior", ["retrieval", "modifier"]),
    ("prior+bm25", "bm25+prior", ["retrieval", "modifier"]),
    ("knn", "knn", ["whole"]),
    ("refine", "refine", ["whole"]),
])
def test_methods_parse_into_registered_objects_and_back(text: str, canonical: str, roles: list[str]) -> None:
    spec = parse_method(text)
    assert str(spec) == canonical
    assert [part.role for part in spec.parts] == roles
    assert all(part is METHODS.method(part.name) or part == METHODS.method(part.name) for part in spec.parts)
    assert parse_method(str(spec)) == spec


def test_canonical_names_keep_the_names_eval_results_use() -> None:
    for name in ("none", "bm25", "recency", "random", "dense", "hybrid", "recency+dense", "summary", "summary+bm25",
                 "persona", "refine", "lora", "lora+bm25", "user-embedding", "none+prior", "bm25+prior",
                 "profile-prior", "knn", "user-mean", "global-mean", "item-bias"):
        assert parse_method(name).name == name
    assert parse_method("bm25+summary").name == "summary+bm25"
    assert parse_method("hybrid+persona+summary").name == "summary+persona+hybrid"


@pytest.mark.parametrize(("text", "message"), [
    ("bm99", "unknown method 'bm99'"),
    ("summary+bm99", "unknown part 'bm99'"),
    ("bm25+dense", "2 retrievals"),
    ("bm25+bm25", "twice"),
    ("bm25:sideways", "unknown layout"),
    ("none:lamp", "takes no layout"),
    ("lora:dialogue", "takes no layout"),
    ("lora+summary", "lora comes alone"),
    ("lora+bm25+prior", "lora comes alone"),
    ("knn+bm25", "used alone"),
    ("knn:dialogue", "takes no layout"),
    ("prior", "needs a retrieval"),
    ("summary+bm25+prior", "combines with a retrieval only"),
    ("", "a method is needed"),
])
def test_bad_methods_say_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_method(text)


def test_an_unknown_part_lists_every_registered_name() -> None:
    with pytest.raises(ValueError) as error:
        parse_method("bm99")
    for name in METHODS.names():
        assert name in str(error.value)


def test_a_list_of_methods_refuses_the_same_method_twice_in_any_spelling() -> None:
    assert [str(m) for m in parse_methods("none, bm25:lamp,persona+bm25")] == ["none", "bm25:lamp", "persona+bm25"]
    with pytest.raises(ValueError, match="listed twice"):
        parse_methods("persona+bm25,bm25+persona")
    parsed = parse_methods("none,bm25")
    assert parse_methods(parsed) == parsed  # parsed methods pass through as they are


def test_k_is_settled_by_the_task_when_the_caller_gives_none() -> None:
    def k_of(task: TaskSpec, k: int | None = None) -> int:
        personalizer = build_personalizer("bm25", task, k=k, count_tokens=len)
        assert isinstance(personalizer, PromptPersonalizer)
        return personalizer.k

    assert k_of(TASK) == TASK.k == TASK.items_per_input()
    assert k_of(CHAT_TASK) == CHAT_TASK.k == 3
    assert k_of(TASK, 5) == 5 == TASK.items_per_input(5)


def test_needs_come_from_the_objects() -> None:
    assert parse_method("hybrid").needs("embedder") and parse_method("recency+dense").needs("embedder")
    assert parse_method("persona").needs("embedder")
    assert not parse_method("summary+bm25").needs("embedder") and not parse_method("none").needs("embedder")
    assert parse_method("lora+bm25").needs("adapters") and parse_method("user-embedding").needs("adapters")
    assert parse_method("bm25+prior").needs("labels") and parse_method("item-bias").needs("ratings")
    assert parse_method("refine").needs("backend") and not parse_method("bm25").needs("backend")


def test_every_registered_method_is_an_object_with_a_role_help_and_serving_answer() -> None:
    roles = {RetrievalMethod: "retrieval", NoteMethod: "notes", ModifierMethod: "modifier", WholeMethod: "whole",
             RecommenderMethod: "recommender"}
    for name in METHODS.names():
        method = METHODS.method(name)
        assert method.name == name and method.help, name
        assert method.role == roles[type(method)]
        assert method.serve_refusal is None or method.serve_refusal.strip()


def test_the_serving_answer_is_the_objects() -> None:
    assert parse_method("summary+hybrid").serve_refusal is None
    assert parse_method("refine").serve_refusal is None
    assert "--adapter-task" in (parse_method("lora+bm25").serve_refusal or "")
    assert "a chat has none" in (parse_method("bm25+prior").serve_refusal or "")
    assert "a chat has none" in (parse_method("knn").serve_refusal or "")


@pytest.mark.parametrize(("text", "model", "layout", "name"), [
    ("dense:/runs/Retriever", "/runs/Retriever", None, "dense:/runs/Retriever"),
    ("hybrid:./r:lamp", "./r", "lamp", "hybrid:./r"),
    ("summary+recency+dense:~/R2:dialogue", "~/R2", "dialogue", "summary+recency+dense:~/R2"),
])
def test_a_retrieval_names_a_trained_model_folder(text: str, model: str, layout: str | None, name: str) -> None:
    spec = parse_method(text)
    assert spec.retrieval.model == model  # its case kept, though the method's names are not
    assert spec.layout == layout and spec.name == name
    assert parse_method(str(spec)) == spec


@pytest.mark.parametrize(("text", "error"), [
    ("bm25:/runs/r", "ranks without an embedder, so it takes no model folder"),
    ("dense:sideways", "unknown layout"),
    ("dense:", "names no model folder"),
])
def test_a_model_folder_where_none_is_taken_is_refused(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_method(text)
