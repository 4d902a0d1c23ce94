"""``tailor personas build --executor ray``: the clustering here, each persona's description
one Ray task; the personas stored equal the local command's (the echo backend, whose
description of a persona quotes its members' items).

One local Ray (2 CPUs) serves the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.ray_fixtures import local_ray

from tailor.backends.echo import EchoBackend
from tailor.batch.personas import PersonasFailedError, RayDescriber
from tailor.cli.main import main
from tailor.embeddings.hashing import HashingEmbedder
from tailor.personas.tenants import build_personas_for_tenant
from tailor.store import SQLiteProfileStore
from tailor.training.executors import RayExecutor
from tailor.types import HistoryRecord, Persona, Profile

TOPICS = {"ana": "football", "ben": "football", "cy": "cooking", "dee": "cooking", "eve": "sailing", "fay": "sailing"}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    # The hook below is defined here, in a module the workers cannot import: sent by value.
    yield from local_ray(__name__)


def make_store(path: Path, tenant: str | None = None) -> str:
    """Six users writing about three topics (a pair each), outside any tenant or in ``tenant``."""
    prefix = f"{tenant}\x1f" if tenant else ""
    with SQLiteProfileStore(path) as store:
        store.add_profiles([Profile(f"{prefix}{user}", tuple(
            HistoryRecord(f"{user}-{i}", {"text": f"{topic} {topic} news {i} about {topic} for {user}"})
            for i in range(4))) for user, topic in TOPICS.items()])
    return str(path)


def personas_of(target: str) -> tuple[list[Persona], dict[str, str | None]]:
    with SQLiteProfileStore(target) as store:
        return store.list_personas(), {user: store.persona_of(user) for user in store.list_users()}


@dataclass(frozen=True)
class FailFor:
    """Runs in the worker before each persona's task: raises for ``persona_id``."""

    persona_id: str

    def __call__(self, key: str) -> None:
        if key == self.persona_id:
            raise RuntimeError(f"injected failure for {key}")


def test_ray_describes_the_same_personas_as_local(ray_cluster: Any, tmp_path: Path) -> None:
    local, ray = make_store(tmp_path / "local.db"), make_store(tmp_path / "ray.db")
    embedder = HashingEmbedder(dim=256)
    with SQLiteProfileStore(local) as store:
        here = build_personas_for_tenant(store, embedder, EchoBackend(), tenant=None, k=3)
    with SQLiteProfileStore(ray) as store:
        there = build_personas_for_tenant(store, embedder, None, tenant=None, k=3,
                                          describer=RayDescriber(RayExecutor(retries=0), "echo"))
    assert there == here and len(here) == 3
    assert all("news" in persona.description for persona in here)  # the echo backend quotes the items
    assert len({persona.description for persona in here}) == 3
    assert personas_of(local) == personas_of(ray)
    assert personas_of(ray)[1]["ana"] == personas_of(ray)[1]["ben"] != personas_of(ray)[1]["cy"]


def test_the_command_on_ray_gives_the_local_command_s_personas(ray_cluster: Any, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    common = ["personas", "build", "--backend", "echo", "--k", "3", "--tenant", "acme", "--json"]
    local, ray = make_store(tmp_path / "local.db", "acme"), make_store(tmp_path / "ray.db", "acme")
    assert main([*common, "--store", local]) == 0
    here = json.loads(capsys.readouterr().out)
    assert main([*common, "--store", ray, "--executor", "ray", "--threads", "1", "--retries", "0"]) == 0
    there = json.loads(capsys.readouterr().out)
    assert there == here and [row["persona_id"] for row in there["personas"]] == ["p0", "p1", "p2"]
    assert personas_of(local) == personas_of(ray)
    assert all(p.persona_id.startswith("acme\x1f") for p in personas_of(ray)[0])


def test_a_failing_description_names_the_persona_and_keeps_the_earlier_personas(ray_cluster: Any,
                                                                                 tmp_path: Path) -> None:
    target = make_store(tmp_path / "store.db")
    embedder = HashingEmbedder(dim=256)
    with SQLiteProfileStore(target) as store:
        earlier = build_personas_for_tenant(store, embedder, EchoBackend(lambda request: "earlier"), tenant=None, k=2)
        describer = RayDescriber(RayExecutor(retries=1, before_task=FailFor("p1")), "echo")
        with pytest.raises(PersonasFailedError, match=r"p1: RuntimeError: injected failure for p1"):
            build_personas_for_tenant(store, embedder, None, tenant=None, k=3, describer=describer)
        assert store.list_personas() == earlier
