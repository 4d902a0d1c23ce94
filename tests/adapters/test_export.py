"""``tailor adapters export --format peft``: every served adapter as a PEFT folder that PEFT
loads onto the tiny model with the stored weights, named without user ids, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailor.adapters.export import MANIFEST, adapter_name, export_peft
from tailor.adapters.lora import from_bytes
from tailor.adapters.runtime import AdapterResolver
from tailor.adapters.store import AdapterKey, AdapterStore
from tailor.cli.main import main
from tailor.testing.adapters import random_adapter, save_adapter
from tailor.types import Persona

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
TASK = "LaMP-4"
USERS = ("alice", "bob", "carol")


def stock(store: AdapterStore, model_dir: Path) -> str:
    """alice: her own adapter on top of the global one; bob: persona p1's; carol: the global one."""
    store.profiles.put_personas([Persona("p1", "writers")], {"bob": "p1"})
    base = save_adapter(store, AdapterKey.global_(TASK), random_adapter(model_dir, 0), model_dir,
                        contributors=USERS)
    save_adapter(store, AdapterKey("user", "alice", TASK), random_adapter(model_dir, 1), model_dir, on_top_of=base)
    save_adapter(store, AdapterKey("persona", "p1", TASK), random_adapter(model_dir, 2), model_dir, on_top_of=base,
                 contributors=["bob"])
    return base


def names_by_level(out: Path) -> dict[str, str]:
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    return {entry["adapter"]: entry["name"] for entry in manifest["adapters"]}


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(path.relative_to(out)): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}


def test_export_writes_peft_folders_that_load_with_the_stored_weights(adapter_store: AdapterStore,
                                                                      tiny_model_dir: Path, tmp_path: Path) -> None:
    stock(adapter_store, tiny_model_dir)
    out = tmp_path / "engine"
    report = export_peft(adapter_store, out)
    resolver = AdapterResolver(adapter_store, TASK)
    expected = {resolver.resolve(user).label: resolver.resolve(user).choice for user in USERS}
    assert names_by_level(out) == {label: adapter_name(choice) for label, choice in expected.items() if choice}
    assert {a.adapter: (a.users, a.rank) for a in report.adapters} == {"user": (1, 8), "persona:p1": (1, 8),
                                                                       "global": (1, 4)}
    assert report.task == TASK and report.max_rank == 8 and report.base_users == 0

    transformers = pytest.importorskip("transformers")
    from peft.utils import get_peft_model_state_dict

    stored = {key: from_bytes(adapter_store.load(key).weights, adapter_store.load(key).config["lora"])  # type: ignore[union-attr]
              for key in (AdapterKey.global_(TASK), AdapterKey("user", "alice", TASK))}
    alice = out / names_by_level(out)["user"]
    assert sorted(p.name for p in alice.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    loaded = peft.PeftModel.from_pretrained(model, alice)
    # The folder holds alice's stack as one LoRA: exactly what the resolver serves her...
    state = get_peft_model_state_dict(loaded)
    served = resolver.load_stack(resolver.resolve("alice").stack).to_peft()
    assert state.keys() == served.keys()
    assert all(torch.equal(state[key], served[key]) for key in served)
    # ...whose update on every module is the global adapter's plus her own.
    for module in stored[AdapterKey.global_(TASK)].modules():
        layer = loaded.get_submodule("base_model.model." + module)
        update = layer.scaling["default"] * (layer.lora_B["default"].weight @ layer.lora_A["default"].weight)
        wanted = sum(weights.delta(module) for weights in stored.values())
        assert torch.allclose(update, wanted, atol=1e-5)

    # No user id in a file name, the manifest or an adapter's config.
    for user in USERS:
        assert all(user not in name for name in snapshot(out))
        assert all(user.encode() not in content for content in snapshot(out).values())


def test_the_openai_backend_asks_an_engine_that_loaded_the_export_for_each_users_folder(
        adapter_store: AdapterStore, tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("httpx")
    from tailor.backends.openai import OpenAIBackend
    from tailor.testing.fake_openai import FakeOpenAIServer
    from tailor.types import GenerationRequest

    stock(adapter_store, tiny_model_dir)
    out = tmp_path / "engine"
    export_peft(adapter_store, out)
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    # The fake engine, like vLLM, answers only the models it was started with (404 otherwise).
    with FakeOpenAIServer(lambda body: body["model"], models=("base", *folders)) as engine, \
            OpenAIBackend(engine.url, model="base") as backend:
        asked = [GenerationRequest(({"role": "user", "content": "hi"},), user_id=user) for user in (*USERS, None)]
        replies = backend.with_adapters(adapter_store, TASK).generate(asked)
    assert [r.text for r in replies] == [names_by_level(out)[level] for level in ("user", "persona:p1", "global",
                                                                                   "global")]
    assert sorted({r.text for r in replies}) == folders


def test_a_second_export_writes_nothing_and_a_change_replaces_only_what_changed(
        adapter_store: AdapterStore, tiny_model_dir: Path, tmp_path: Path) -> None:
    base = stock(adapter_store, tiny_model_dir)
    out = tmp_path / "engine"
    export_peft(adapter_store, out)
    before = snapshot(out)
    again = export_peft(adapter_store, out)
    assert {a.status for a in again.adapters} == {"up to date"} and again.removed == ()
    assert snapshot(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left behind

    old = names_by_level(out)
    save_adapter(adapter_store, AdapterKey("user", "alice", TASK), random_adapter(tiny_model_dir, 3), tiny_model_dir,
                 on_top_of=base)
    retrained = export_peft(adapter_store, out)
    new = names_by_level(out)
    assert new["user"] != old["user"] and new["global"] == old["global"] and new["persona:p1"] == old["persona:p1"]
    assert retrained.removed == (old["user"],) and not (out / old["user"]).exists()
    assert {a.adapter: a.status for a in retrained.adapters} == {"user": "written", "persona:p1": "up to date",
                                                                 "global": "up to date"}

    # Deleting alice deletes her adapter and the global one she contributed to (the persona's
    # was trained on top of it, so it serves nobody either): every folder goes.
    adapter_store.profiles.delete_user("alice")
    after = export_peft(adapter_store, out)
    assert after.removed == tuple(sorted(new.values())) and after.adapters == ()
    assert (after.users, after.base_users) == (2, 2)
    assert [p.name for p in out.iterdir()] == [MANIFEST]


def test_users_without_any_adapter_get_the_base_model(adapter_store: AdapterStore, tiny_model_dir: Path,
                                                      tmp_path: Path) -> None:
    save_adapter(adapter_store, AdapterKey("user", "alice", TASK), random_adapter(tiny_model_dir, 1), tiny_model_dir)
    report = export_peft(adapter_store, tmp_path / "engine", base_model_name="org/base-model")
    assert [(a.adapter, a.users, a.rank) for a in report.adapters] == [("user", 1, 4)]
    assert (report.users, report.base_users) == (3, 2)
    config = json.loads((tmp_path / "engine" / report.adapters[0].name / "adapter_config.json").read_text())
    assert (config["peft_type"], config["base_model_name_or_path"], config["r"]) == ("LORA", "org/base-model", 4)


def test_preference_adapters_and_soups_export_with_the_chat_task(adapter_store: AdapterStore, tiny_model_dir: Path,
                                                                 tmp_path: Path) -> None:
    from tailor.adapters.soups import pole_key, preference_key, set_soup_weights

    save_adapter(adapter_store, preference_key("user", "alice"), random_adapter(tiny_model_dir, 1), tiny_model_dir)
    for seed, pole in enumerate(("pole:style=friendly", "pole:style=formal"), start=2):
        save_adapter(adapter_store, pole_key(pole), random_adapter(tiny_model_dir, seed), tiny_model_dir,
                     contributors=USERS)
    set_soup_weights(adapter_store, "bob", {"pole:style=friendly": 0.75, "pole:style=formal": 0.25}, source="stated")
    report = export_peft(adapter_store, tmp_path / "engine", adapter_task="chat")
    assert (report.task, report.prompt) == ("chat", "preference")
    assert {(a.adapter, a.users, a.rank) for a in report.adapters} == {("user", 1, 4), ("soup", 1, 8)}
    assert report.base_users == 1  # carol: no adapter of her own, no soup, no global preference adapter
    resolver = AdapterResolver(adapter_store, "chat", prompt="preference", levels=("user", "soup", "persona", "global"))
    soup = next(a.name for a in report.adapters if a.adapter == "soup")
    assert soup == adapter_name(resolver.resolve("bob").choice)  # type: ignore[arg-type]
    model = transformers_model(tiny_model_dir)
    loaded = peft.PeftModel.from_pretrained(model, tmp_path / "engine" / soup)
    from peft.utils import get_peft_model_state_dict

    served = resolver.resolve("bob").choice.load().to_peft()  # type: ignore[union-attr]
    state = get_peft_model_state_dict(loaded)
    assert all(torch.equal(state[key], served[key]) for key in served)


def transformers_model(model_dir: Path) -> object:
    transformers = pytest.importorskip("transformers")
    return transformers.AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)


def test_adapters_of_two_base_models_are_refused(adapter_store: AdapterStore, tiny_model_dir: Path,
                                                  tmp_path: Path) -> None:
    stock(adapter_store, tiny_model_dir)
    weights = random_adapter(tiny_model_dir, 4)
    adapter_store.save(AdapterKey("user", "carol", TASK), bytes(8) + b"other", config={"lora": weights.shape.to_dict()},
                       base_model={"path": "/models/other", "fingerprint": "0123456789abcdef"})
    with pytest.raises(ValueError, match="2 different base models.*retrain"):
        export_peft(adapter_store, tmp_path / "engine")


def test_the_command_exports_and_says_what_it_did(adapter_store: AdapterStore, tiny_model_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    stock(adapter_store, tiny_model_dir)
    out = tmp_path / "engine"
    argv = ["adapters", "export", "--store", str(adapter_store.profiles.path), "--format", "peft", "--out", str(out)]  # type: ignore[attr-defined]
    assert main([*argv, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert sorted(printed["written"]) == sorted(names_by_level(out).values()) and printed["max_rank"] == 8
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "3 adapters for task LaMP-4" in captured.out and "0 written" in captured.out
    assert "--max-lora-rank 8" in captured.out and captured.err.count(": up to date (") == 3
    # The folder tailor train-adapter made works as the store too.
    assert main(["adapters", "export", "--store", str(tmp_path), "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["up_to_date"] == printed["written"]
    assert main(["adapters"]) == 2 and "choose an action: export" in capsys.readouterr().err
    assert main(["adapters", "export", "--store", str(tmp_path / "missing.db"), "--out", str(out)]) == 1
    assert "no store at" in capsys.readouterr().err
    assert main(["adapters", "export", "--store", str(adapter_store.profiles.path), "--out", str(out),  # type: ignore[attr-defined]
                 "--adapter-task", "LaMP-7"]) == 1
    assert "no LoRA adapters for task 'LaMP-7'" in capsys.readouterr().err
