"""Serving methods: parsing, dense and hybrid retrieval over records, summaries written in
the background, personas per tenant with the nearest one for users who have none, refine's
style note written through the model queue before the reply."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailor.backends.contract import BackendError, approximate_token_count
from tailor.backends.echo import EchoBackend
from tailor.methods import parse_method, parse_serve_method
from tailor.prompting.refine import STYLE_INSTRUCTION
from tailor.prompting.summary import SUMMARY_INSTRUCTION
from tailor.server import ServeConfig
from tailor.store.contract import UnknownUserError
from tailor.store.tenants import TENANT_SEPARATOR
from tailor.types import GenerationRequest, GenerationResult, HistoryRecord

Ask = Callable[..., Any]
RECORDS = [{"id": "r1", "text": "Hiking the Alps with my dog every summer"},
           {"id": "r2", "title": "Pasta", "text": "my grandmother's tomato sauce recipe"},
           {"id": "r3", "text": "Notes on learning the cello", "date": "2024-01-02"}]


def seed(client: TestClient, user: str = "alice", records: list[dict[str, str]] | None = None,
         headers: dict[str, str] | None = None) -> None:
    assert client.put(f"/v1/users/{user}", json={}, headers=headers).status_code == 200
    response = client.post(f"/v1/users/{user}/records", json={"records": records or RECORDS}, headers=headers)
    assert response.status_code == 200, response.text


def shown(response: Any) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


# -- the method's grammar --------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("bm25", "bm25"),
    ("dense", "dense"),
    ("summary+hybrid", "summary+hybrid"),
    ("persona+summary", "summary+persona"),
    ("RECENCY+persona", "persona+recency"),
    ("recency+dense", "recency+dense"),
    ("random:lamp", "random:lamp"),
    ("refine", "refine"),
])
def test_serve_takes_evals_grammar(text: str, expected: str) -> None:
    assert parse_serve_method(text) == parse_method(text)
    assert str(parse_serve_method(text)) == expected
    assert parse_serve_method(expected) == parse_method(text)


@pytest.mark.parametrize(("text", "message"), [
    ("bm26", "unknown method 'bm26'"),
    ("bm25+dense", "pick one"),
    ("summary+summary", "twice"),
    ("", "a method is needed"),
    ("lora+bm25", "is an adapter method; tailor serve applies each user's adapter with --adapter-task"),
    ("lora", "--adapter-task"),
    ("user-embedding", "--adapter-task"),
    ("knn", "scores a task's labels; a chat has none"),
    ("profile-prior", "a chat has none"),
    ("user-mean", "a chat has none"),
    ("bm25+prior", "a chat has none"),
    ("refine+bm25", "used alone"),
])
def test_bad_methods_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_serve_method(text)


def test_dense_methods_need_an_embedder(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="needs an embedder"):
        ServeConfig(store=str(tmp_path / "s.db"), method="hybrid", embedder=None)


# -- dense and hybrid --------------------------------------------------------------------------


def test_dense_finds_a_record_that_shares_no_word_with_the_message(make_client: Callable[..., TestClient],
                                                                    ask: Ask) -> None:
    bm25 = make_client(method="bm25", k=1, memory=False)
    seed(bm25)
    # "learner notebook" shares no stemmed word with "Notes on learning the cello" (BM25
    # sees nothing) but shares character trigrams, which the hashing embedder counts.
    assert "cello" not in shown(ask(bm25, "learner notebook", user="alice"))
    dense = make_client(method="dense", k=1, memory=False)
    assert "Notes on learning the cello" in shown(ask(dense, "learner notebook", user="alice"))


def test_record_vectors_are_stored_with_their_batch_and_deleted_with_the_user(make_client: Callable[..., TestClient],
                                                                              ask: Ask) -> None:
    client = make_client(method="hybrid", k=2, memory=False)
    seed(client)
    service = client.app.state.service  # type: ignore[attr-defined]
    model = service.users.vectors.model
    ids, matrix = service.store.get_embeddings("alice", model)
    assert ids == ["r1", "r2", "r3"] and matrix.shape[0] == 3
    first = shown(ask(client, "tomato learner notebook", user="alice"))
    compiled = "SELECT profile_version, record_ids FROM serve_record_matrix WHERE user_id = 'alice'"
    with service.store.transaction() as connection:
        assert connection.execute(compiled).fetchall() == [(service.store.profile_version("alice"),
                                                            '["r1", "r2", "r3"]')]
    # Another server on the same store answers from the compiled matrix, identically.
    assert shown(ask(make_client(method="hybrid", k=2, memory=False), "tomato learner notebook",
                     user="alice")) == first
    assert client.delete("/v1/users/alice").status_code == 200
    with pytest.raises(UnknownUserError):
        service.store.get_embeddings("alice", model)
    with service.store.transaction() as connection:
        assert connection.execute(compiled).fetchall() == []
    assert service.store.tables_missing_cascade() == []


def test_records_written_by_other_means_are_embedded_on_the_next_request(make_client: Callable[..., TestClient],
                                                                         ask: Ask) -> None:
    client = make_client(method="dense", k=1, memory=False)
    seed(client)
    service = client.app.state.service  # type: ignore[attr-defined]
    assert "cello" in shown(ask(client, "learner notebook", user="alice"))  # caches alice's matrix
    service.store.add_records("alice", [HistoryRecord("r4", {"text": "Bought a notebook for learners"})])
    assert "Bought a notebook" in shown(ask(client, "learner notebook", user="alice"))
    assert "r4" in service.store.get_embeddings("alice", service.users.vectors.model)[0]


def test_hybrid_keeps_exact_word_matches_and_fills_k_with_dense_ones(make_client: Callable[..., TestClient],
                                                                     ask: Ask) -> None:
    client = make_client(method="hybrid", k=2, memory=False)
    seed(client)
    reply = shown(ask(client, "tomato learner notebook", user="alice"))
    assert "tomato sauce recipe" in reply and "learning the cello" in reply
    assert "Alps" not in reply


# -- summaries ---------------------------------------------------------------------------------


def summarizing_backend() -> EchoBackend:
    """Writes a summary naming the user's newest record; otherwise shows the prompt."""

    def reply(request: GenerationRequest) -> str:
        last = request.messages[-1]["content"]
        if SUMMARY_INSTRUCTION in last:
            return "Writes about " + last.split("\n")[-3].lstrip("- ")[:40]
        return " ".join(m["content"] for m in request.messages)

    return EchoBackend(reply)


def test_summaries_are_written_in_the_background_and_rewritten_when_records_change(
        make_client: Callable[..., TestClient], ask: Ask) -> None:
    client = make_client(method="summary+bm25", k=1, memory=False, backend=summarizing_backend())
    service = client.app.state.service  # type: ignore[attr-defined]
    seed(client)
    assert service.users.summaries.flush(10)
    first = service.store.list_artifacts("alice")
    assert [a.kind for a in first] == ["summary"] and first[0].profile_version == service.store.profile_version("alice")
    assert "About this user: " + first[0].value["summary"] in shown(ask(client, "hello", user="alice"))

    client.post("/v1/users/alice/records", json={"records": [{"id": "r9", "text": "Training for a marathon", "date": "2024-06-01"}]})
    assert service.users.summaries.flush(10)
    (second,) = service.store.list_artifacts("alice")
    assert second.value["summary"] != first[0].value["summary"] and "marathon" in second.value["summary"]
    assert second.profile_version == service.store.profile_version("alice")


def test_a_stale_summary_is_used_while_the_new_one_is_written(make_client: Callable[..., TestClient],
                                                              ask: Ask) -> None:
    client = make_client(method="summary", memory=False, backend=summarizing_backend())
    service = client.app.state.service  # type: ignore[attr-defined]
    seed(client)
    assert service.users.summaries.flush(10)
    service.users.summaries.close()  # nothing more gets written
    client.post("/v1/users/alice/records", json={"records": [{"id": "r9", "text": "Marathon", "date": "2025-01-01"}]})
    (stale,) = service.store.list_artifacts("alice")
    assert stale.profile_version != service.store.profile_version("alice")
    assert stale.value["summary"] in shown(ask(client, "hello", user="alice"))


# -- personas ----------------------------------------------------------------------------------


def tenant(name: str) -> dict[str, str]:
    return {"X-Tailor-Tenant": name}


def test_personas_are_built_per_tenant_and_cold_start_users_get_their_tenants_nearest(
        make_client: Callable[..., TestClient], ask: Ask) -> None:
    from tailor.embeddings.hashing import HashingEmbedder
    from tailor.personas.tenants import build_personas_for_tenant

    client = make_client(method="persona", memory=False)
    service = client.app.state.service  # type: ignore[attr-defined]
    music = [{"id": f"m{i}", "text": f"practising cello and violin scales, concert {i}"} for i in range(4)]
    food = [{"id": f"f{i}", "text": f"baking bread and tomato sauce recipes, dinner {i}"} for i in range(4)]
    for user, records in (("ann", music), ("ben", music), ("cat", food), ("dan", food)):
        seed(client, user, records, headers=tenant("acme"))
    seed(client, "eve", music, headers=tenant("globex"))
    seed(client, "fay", food, headers=tenant("globex"))

    def describe(request: GenerationRequest) -> str:
        return "Musicians." if "cello" in request.messages[-1]["content"] else "Cooks."

    embedder = HashingEmbedder()
    globex = build_personas_for_tenant(service.store, embedder, EchoBackend(describe), tenant="globex", k=2)
    acme = build_personas_for_tenant(service.store, embedder, EchoBackend(describe), tenant="acme", k=2)
    assert {p.description for p in acme} == {p.description for p in globex} == {"Musicians.", "Cooks."}
    # Building acme's personas kept globex's, and every id is in its tenant's namespace.
    stored = service.store.list_personas()
    assert len(stored) == 4
    assert {p.persona_id.split(TENANT_SEPARATOR)[0] for p in stored} == {"acme", "globex"}
    assert service.store.persona_of(f"globex{TENANT_SEPARATOR}eve").startswith("globex")

    assert "Musicians." in shown(ask(client, "hi", user="ann", headers=tenant("acme")))
    # A new acme user with no records gets the acme persona nearest to their message.
    client.put("/v1/users/gus", json={}, headers=tenant("acme"))
    response = ask(client, "any good tomato bread recipes for dinner?", user="gus", headers=tenant("acme"))
    assert "Cooks." in shown(response) and response.headers["x-tailor-granularity"] == "persona"
    # A user outside any tenant sees no tenant's personas.
    client.put("/v1/users/hal", json={})
    assert "Cooks." not in shown(ask(client, "tomato bread recipes", user="hal"))


def test_personas_build_command_groups_a_tenants_users(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tailor.cli.main import main
    from tailor.store import SQLiteProfileStore
    from tailor.types import Profile

    path = tmp_path / "store.db"
    with SQLiteProfileStore(path) as store:
        for i, words in enumerate(["cello violin concert", "cello violin scales", "bread tomato dinner",
                                   "bread tomato baking"]):
            store.add_profiles([Profile(f"acme{TENANT_SEPARATOR}u{i}", (HistoryRecord("r", {"text": words}),))])
        store.add_profiles([Profile("outsider", (HistoryRecord("r", {"text": "cello"}),))])
    assert main(["personas", "build", "--store", str(path), "--tenant", "acme", "--k", "2", "--backend", "echo",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tenant"] == "acme" and sorted(p["size"] for p in report["personas"]) == [2, 2]
    with SQLiteProfileStore(path) as store:
        assert store.persona_of("outsider") is None
        assert store.persona_of(f"acme{TENANT_SEPARATOR}u0") == store.persona_of(f"acme{TENANT_SEPARATOR}u1")
        assert store.persona_of(f"acme{TENANT_SEPARATOR}u0") != store.persona_of(f"acme{TENANT_SEPARATOR}u2")
    assert main(["personas", "build", "--store", str(path), "--tenant", "no such!", "--backend", "echo"]) == 1
    assert "tenant names are" in capsys.readouterr().err


# -- refine: a style note written by the model before each reply -----------------------------


class NoteBackend:
    """Writes a style note naming the first item it is shown, and shows the whole prompt
    for any other request. Records which thread made each call and whether it was a note;
    a request saying ``hold`` holds the model until :attr:`release` is set."""

    name = "notes"

    def __init__(self, *, fail_notes: bool = False) -> None:
        self.fail_notes = fail_notes
        self.calls: list[tuple[str, bool]] = []
        self.release = threading.Event()

    def count_tokens(self, text: str) -> int:
        return approximate_token_count(text)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = []
        for request in requests:
            last = request.messages[-1]["content"]
            note = STYLE_INSTRUCTION in last
            self.calls.append((threading.current_thread().name, note))
            if last == "hold":
                self.release.wait(10)
            if note and self.fail_notes:
                raise BackendError("no note today")
            text = ("Writes short lines like " + last.split("\n")[1].lstrip("- ")[:20] if note
                    else " ".join(f"[{m['role']}] {m['content']}" for m in request.messages))
            results.append(GenerationResult(text, tokens=len(text.split())))
        return results

    @property
    def notes(self) -> int:
        return sum(note for _, note in self.calls)


def streamed_text(response: Any) -> str:
    assert response.status_code == 200, response.text
    lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: "):]) for line in lines[:-1]]
    return "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"])


CONVENTIONS = "Follow this user's conventions: Writes short lines like "


def test_refine_is_served_with_its_note_written_on_the_model_thread(make_client: Callable[..., TestClient],
                                                                    ask: Ask) -> None:
    backend = NoteBackend()
    client = make_client(method="refine", memory=False, backend=backend)
    service = client.app.state.service  # type: ignore[attr-defined]
    seed(client)
    response = ask(client, "hello", user="alice")
    assert CONVENTIONS in shown(response) and response.headers["x-tailor-granularity"] == "user"
    assert backend.notes == 1
    # Streamed too; the same items give the same note, cached: no second call for it.
    assert CONVENTIONS in streamed_text(ask(client, "hello", user="alice", stream=True))
    assert backend.notes == 1
    # A user without records has nothing to write a note from: served as sent, no call.
    client.put("/v1/users/newcomer", json={})
    response = ask(client, "hello", user="newcomer")
    assert shown(response) == "[user] hello" and response.headers["x-tailor-granularity"] == "global"
    # Taken in a thread of the caller's (no HTTP), the note still goes through the queue.
    seed(client, "bob", [{"id": "b1", "text": "Cello scales"}])
    assert CONVENTIONS + "Cello scales" in service.users.context("bob", "cello").personalized.messages[0]["content"]
    assert backend.notes == 2
    # Every call, notes included, was made by the model's own thread, never a request's.
    assert {thread for thread, _ in backend.calls} == {"tailor-model"}


def test_a_note_waits_in_the_model_queue_like_a_reply(make_client: Callable[..., TestClient], ask: Ask) -> None:
    backend = NoteBackend()
    client = make_client(method="refine", memory=False, backend=backend, max_queue=1, queue_timeout=0.3)
    service = client.app.state.service  # type: ignore[attr-defined]
    seed(client)
    holding = service.gate.submit(GenerationRequest(({"role": "user", "content": "hold"},)))
    deadline = time.monotonic() + 5
    while not service.gate.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        filler = service.gate.submit(GenerationRequest(({"role": "user", "content": "waiting"},)))
        # The queue is full: the note is refused as a reply would be, at once.
        response = ask(client, "hello", user="alice")
        assert response.status_code == 429 and response.json()["error"]["code"] == "server_busy"
        assert response.headers["retry-after"].isdigit()
        assert filler.cancel() and service.gate.waiting == 0
        # A note that waits past the queue timeout is a 503, and leaves the queue.
        for stream in (False, True):
            response = ask(client, "hello", user="alice", stream=stream)
            assert response.status_code == 503 and response.json()["error"]["code"] == "queue_timeout"
            assert service.gate.waiting == 0
        assert backend.notes == 0
    finally:
        backend.release.set()
    holding.result(10)
    assert CONVENTIONS in shown(ask(client, "hello", user="alice"))


def test_a_note_the_model_fails_to_write_is_answered_as_a_failed_reply(make_client: Callable[..., TestClient],
                                                                        ask: Ask) -> None:
    client = make_client(method="refine", memory=False, backend=NoteBackend(fail_notes=True))
    seed(client)
    for stream in (False, True):
        response = ask(client, "hello", user="alice", stream=stream)
        assert response.status_code == 500 and response.json()["error"]["code"] == "model_error"
    assert shown(ask(client, "hello")) == "[user] hello"  # the server goes on
    assert client.get("/v1/models").status_code == 200


def test_a_deleted_users_notes_go_with_them(make_client: Callable[..., TestClient], ask: Ask) -> None:
    backend = NoteBackend()
    client = make_client(method="refine", memory=False, backend=backend)
    seed(client)
    assert CONVENTIONS in shown(ask(client, "hello", user="alice"))
    assert client.delete("/v1/users/alice").status_code == 200
    seed(client)  # a new alice, with the same records: her note is written anew, not remembered
    assert CONVENTIONS in shown(ask(client, "hello", user="alice"))
    assert backend.notes == 2
