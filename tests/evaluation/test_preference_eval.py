"""``tailor eval-preference`` on a tiny model: win rates against the base model under each
user's reward, the table by user, preference accuracy and cost from the adapters held."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("textstat")

from tailor.adapters.identity import base_model_identity
from tailor.adapters.lora import LoRAShape, LoRAWeights, to_bytes
from tailor.adapters.soups import preference_key
from tailor.adapters.store import AdapterStore
from tailor.alignment.pairs import PreferencePair, Prompt, write_pairs, write_prompts
from tailor.alignment.users import population, write_users
from tailor.evaluation.preference import (
    PreferenceEvalConfig,
    distance_from_mean,
    evaluate_preference,
    format_preference,
    win_values,
)
from tailor.store import SQLiteProfileStore


def test_wins_ties_and_losses() -> None:
    assert win_values([1.0, 0.5, 0.2], [0.5, 0.5, 0.3]) == [1.0, 0.5, 0.0]


def test_users_far_from_the_mean_are_farther() -> None:
    users = population(16, seed=0)
    distances = distance_from_mean(users)
    # every combination once: the mean of the signed weights is near zero, so each user's
    # distance is about the length of their own weight vector
    assert all(d > 0 for d in distances.values())
    lone = population(1, seed=0)
    assert distance_from_mean(lone) == {lone[0].user_id: 0.0}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    users = population(2, seed=0, dimensions=["informativeness"])
    write_users(users, folder)
    prompts = [Prompt(f"p{i}", ({"role": "system", "content": "You are a helpful assistant."},
                                {"role": "user", "content": f"Explain topic {i}."})) for i in range(2)]
    write_prompts(prompts, folder / "dev_prompts.jsonl")
    write_pairs([PreferencePair(user.user_id, prompts[0].messages, "Short.", "A much longer reply than that.")
                 for user in users], folder / "dev_pairs.jsonl")
    return folder


def test_a_run_reports_win_rates_by_user_accuracy_and_cost(data: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    from tailor.backends.hf import TransformersBackend

    backend = TransformersBackend(str(tiny_model_dir), batch_size=4)
    store = SQLiteProfileStore(tmp_path / "adapters.db")
    users = [json.loads((data / "users.json").read_text())["users"][i]["user_id"] for i in range(2)]
    store.set_attributes(users[0], {})
    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for path, module in backend.model.named_modules():
        if path.endswith("q_proj"):
            tensors[f"{path}.lora_A.weight"] = torch.randn(2, module.in_features, generator=generator)
            tensors[f"{path}.lora_B.weight"] = torch.randn(module.out_features, 2, generator=generator) * 5
    shape = LoRAShape(2, 2.0, ("q_proj",))
    AdapterStore(store).save(preference_key("user", users[0]), to_bytes(LoRAWeights(shape, tensors)),
                             config={"lora": shape.to_dict()}, base_model=base_model_identity(tiny_model_dir),
                             metadata={"seconds": 12.5})
    store.close()
    report = evaluate_preference(PreferenceEvalConfig(data=str(data), adapters=str(tmp_path / "adapters.db"),
                                                      methods=("none", "preference"), out=str(tmp_path / "run")),
                                 backend=backend)
    assert report.n == 4 and report.users == 2
    _, preference = report.methods
    assert preference["adapters_used"] == {"user": 2, "none": 2}
    assert 0.0 <= preference["win_rate"] <= 1.0 and len(preference["ci95"]["win_rate"]) == 2
    assert preference["identical_to_base"] >= 2  # the user without an adapter gets the base model's replies
    assert preference["cost"]["training_seconds"] == 12.5 and preference["cost"]["training_seconds_per_user"] == 6.25
    assert preference["preference_accuracy"]["n"] == 2
    by_user = {row["user"]: row for row in report.by_user}
    assert by_user[users[1]]["preference"] == 0.5  # the same replies as the base model: ties
    assert "win rate" in format_preference(report)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["results"][1]["method"] == "preference"
    assert len((tmp_path / "run" / "replies.jsonl").read_text().splitlines()) == 4


def test_none_must_be_compared_against() -> None:
    with pytest.raises(ValueError, match="include none"):
        PreferenceEvalConfig(data="x", methods=("preference",))
