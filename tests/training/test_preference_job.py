"""``tailor train-preference`` on a tiny model: pairs imported once as feedback, adapters per
user where there is enough of it, ``--since`` retrains only who gave new feedback, pooled
adapters go with any contributor, soups get their weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")

from tailor.adapters.soups import pole_key, preference_key, soup_weights
from tailor.adapters.store import AdapterStore
from tailor.alignment.pairs import PreferencePair, write_pairs
from tailor.alignment.users import population, write_users
from tailor.cli.main import main
from tailor.store import SQLiteProfileStore
from tailor.training.preference import TrainPreferenceConfig, utc_time

QUESTION = ({"role": "user", "content": "How is the weather?"},)


def pairs_for(user: str, count: int, *, start: int = 0) -> list[PreferencePair]:
    return [PreferencePair(user, ({"role": "user", "content": f"question {start + i}?"},), "Short answer.",
                           f"A long and winding answer number {start + i} that goes on and on.")
            for i in range(count)]


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    write_pairs(pairs_for("ana", 4) + pairs_for("bob", 1), path)
    return path


def run(tmp_path: Path, model: Path, *args: str) -> dict:
    from contextlib import redirect_stdout
    from io import StringIO

    out = StringIO()
    with redirect_stdout(out):
        assert main(["train-preference", "--store", str(tmp_path / "store.db"), "--model", str(model),
                     "--epochs", "1", "--batch-size", "2", "--min-pairs", "3", "--json", *args]) == 0
    return json.loads(out.getvalue())


def test_users_with_enough_pairs_get_an_adapter_and_the_import_is_idempotent(
        tmp_path: Path, tiny_model_dir: Path, pairs_file: Path) -> None:
    report = run(tmp_path, tiny_model_dir, "--pairs", str(pairs_file))
    assert report["imported"] == 5
    rows = {row["key"]: row for row in report["adapters"]}
    assert rows["user/ana/chat/lora/preference"]["status"] == "trained"
    assert rows["user/bob/chat/lora/preference"]["status"] == "too little feedback"
    again = run(tmp_path, tiny_model_dir, "--pairs", str(pairs_file))
    assert again["imported"] == 0
    assert {row["status"] for row in again["adapters"]} == {"up to date", "too little feedback"}
    with SQLiteProfileStore(tmp_path / "store.db") as store:
        info = AdapterStore(store).info(preference_key("user", "ana"))
        assert info is not None and info.metadata["examples"] == 4 and info.metadata["loss"] == "dpo"
        assert info.metadata["seconds"] > 0 and info.size > 0


def test_since_retrains_only_the_users_with_new_feedback(tmp_path: Path, tiny_model_dir: Path,
                                                         pairs_file: Path) -> None:
    first = run(tmp_path, tiny_model_dir, "--pairs", str(pairs_file))
    more = tmp_path / "more.jsonl"
    write_pairs(pairs_for("bob", 3, start=10), more)
    with SQLiteProfileStore(tmp_path / "store.db") as store:
        from tailor.alignment.pairs import read_pairs
        from tailor.training.preference import import_pairs

        import_pairs(store, read_pairs(more))
    later = run(tmp_path, tiny_model_dir, "--since", first["began_at"])
    assert [row["key"] for row in later["adapters"]] == ["user/bob/chat/lora/preference"]
    assert later["adapters"][0]["status"] == "trained"
    nothing = run(tmp_path, tiny_model_dir, "--since", utc_time())
    assert nothing["adapters"] == []


def test_kto_learns_from_ratings_without_pairs(tmp_path: Path, tiny_model_dir: Path) -> None:
    with SQLiteProfileStore(tmp_path / "store.db") as store:
        store.set_attributes("ana", {})
        messages = json.dumps(list(QUESTION))
        store.add_feedback("ana", [(f"fb_{i}", "rating", f"chatcmpl-{i}", messages,
                                    "Sunny." if i % 2 else None, None if i % 2 else "It rains a lot, a lot.",
                                    1 if i % 2 else -1, "api", utc_time()) for i in range(4)])
    dpo = run(tmp_path, tiny_model_dir)
    assert dpo["adapters"][0]["status"] == "too little feedback"  # ratings make no pairs
    kto = run(tmp_path, tiny_model_dir, "--loss", "kto")
    assert kto["adapters"][0]["status"] == "trained" and kto["adapters"][0]["examples"] == 4


def test_a_global_adapter_goes_with_any_of_its_contributors(tmp_path: Path, tiny_model_dir: Path,
                                                            pairs_file: Path) -> None:
    report = run(tmp_path, tiny_model_dir, "--pairs", str(pairs_file), "--scope", "global", "--max-pairs", "4")
    assert report["adapters"][0]["status"] == "trained" and report["adapters"][0]["examples"] == 4
    with SQLiteProfileStore(tmp_path / "store.db") as store:
        adapters = AdapterStore(store)
        assert adapters.contributors(preference_key("global", "all")) == ["ana", "bob"]
        store.delete_user("bob")
        assert adapters.info(preference_key("global", "all")) is None


def test_pole_adapters_and_stated_soup_weights(tmp_path: Path, tiny_model_dir: Path) -> None:
    poles = tmp_path / "poles.jsonl"
    write_pairs(pairs_for("pole:informativeness=concise", 3) + pairs_for("pole:format=prose", 3), poles)
    report = run(tmp_path, tiny_model_dir, "--scope", "pole", "--pairs", str(poles))
    assert {row["key"] for row in report["adapters"]} == {str(pole_key("pole:informativeness=concise")),
                                                           str(pole_key("pole:format=prose"))}
    users = population(2, seed=0, dimensions=["informativeness", "format"])
    write_users(users, tmp_path / "users")
    soups = run(tmp_path, tiny_model_dir, "--scope", "soup", "--simulated-users", str(tmp_path / "users"))
    assert [row["status"] for row in soups["adapters"]] == ["weights set", "weights set"]
    with SQLiteProfileStore(tmp_path / "store.db") as store:
        weights = soup_weights(AdapterStore(store), users[0].user_id)
    assert weights == pytest.approx({f"pole:{d}={p}": users[0].weights[d] for d, p in users[0].poles.items()})
    # a real user's weights are fitted to their pairs: the weighting of the pole adapters that makes them likeliest
    mine = tmp_path / "mine.jsonl"
    write_pairs(pairs_for("ana", 3), mine)
    fitted = run(tmp_path, tiny_model_dir, "--scope", "soup", "--pairs", str(mine), "--users", "ana")
    [row] = fitted["adapters"]
    assert row["key"] == "soup/ana" and row["status"] == "weights set" and row["examples"] == 3
    assert set(row["weights"]) <= {"pole:informativeness=concise", "pole:format=prose"}
    assert sum(row["weights"].values()) == pytest.approx(1.0) or row["weights"] == {}
    # Users fitted together (their pairs scored in one pass per pole) get what each gets alone.
    theirs = tmp_path / "theirs.jsonl"
    write_pairs([PreferencePair("bob", p.messages, p.rejected, p.chosen) for p in pairs_for("bob", 2, start=5)], theirs)
    alone = run(tmp_path, tiny_model_dir, "--scope", "soup", "--pairs", str(theirs), "--users", "bob")
    together = run(tmp_path, tiny_model_dir, "--scope", "soup", "--users", "ana,bob")
    by_user = {r["key"]: r["weights"] for r in together["adapters"]}
    assert by_user == {"soup/ana": pytest.approx(row["weights"]), "soup/bob": pytest.approx(alone["adapters"][0]["weights"])}


def test_the_config_is_checked() -> None:
    with pytest.raises(ValueError, match="--pairs FILE"):
        TrainPreferenceConfig(store="x.db", scope="pole")
    with pytest.raises(ValueError, match="ISO-8601"):
        TrainPreferenceConfig(store="x.db", since="yesterday")
    assert TrainPreferenceConfig(store="x.db", since="2025-01-31").since == "2025-01-31T00:00:00.000000+00:00"


def test_the_worker_trains_the_users_with_feedback_since_its_last_run(tmp_path: Path, tiny_model_dir: Path,
                                                                      pairs_file: Path) -> None:
    from tailor.adapters.preference import PreferenceTrainConfig
    from tailor.alignment.pairs import read_pairs
    from tailor.training.preference import PreferenceWorker, import_pairs

    config = TrainPreferenceConfig(store=str(tmp_path / "store.db"), min_pairs=3, model=str(tiny_model_dir),
                                   since=utc_time(), train=PreferenceTrainConfig(epochs=1, batch_size=2))
    worker = PreferenceWorker(config, every=3600)
    assert worker.run_once().rows == []  # no feedback yet
    with SQLiteProfileStore(tmp_path / "store.db") as store:
        import_pairs(store, read_pairs(pairs_file))
    assert [(row.key, row.status) for row in worker.run_once().rows] == [
        ("user/ana/chat/lora/preference", "trained"), ("user/bob/chat/lora/preference", "too little feedback")]
    assert worker.run_once().rows == []
    with pytest.raises(ValueError, match="positive"):
        PreferenceWorker(config, every=0)
