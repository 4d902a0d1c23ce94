"""``tailor eval-preference``: how much preference adapters please the simulated users they
were trained for, against the base model's replies.

On the held-out prompts of a ``preference`` folder (``tailor simulate pairs``), every method
answers every user's prompts with :func:`tailor.evaluation.runner.run_method`, the loop
``tailor eval`` runs; ``none`` (the base model) must be among the methods. Then:

- **win rate**, per method: the share of (user, prompt) examples where the method's reply
  gets a higher reward from that user than the base model's reply (a tie counts half),
  with a 95% percentile-bootstrap interval over examples; every user answers the same
  prompts, so the mean over examples is the mean of the users' win rates. Also the mean
  reward and its paired difference against ``none``;
- **by user**: each user's profile (their poles), their distance from the population's
  mean preference (the Euclidean distance between their signed dimension weights and the
  population's mean of them), and each method's win rate on their prompts;
- **preference accuracy** on the held-out pairs (``{split}_pairs.jsonl``): the share of a
  user's pairs whose chosen reply the adapter the method gives them rates above the
  rejected one by DPO's implicit reward, the adapter's log-likelihood of a reply minus the
  base model's;
- **cost per user**: the training seconds and adapter bytes behind each method, from the
  adapters' metadata (a shared adapter's cost divided among the users it serves);
- **judge agreement** (with ``judge``): a pairwise LLM judge (:mod:`tailor.alignment.judge`,
  both orders) picks between each method's reply and the base model's for the user's stated
  preferences; its agreement with the simulated reward's pick, with an interval.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tailor.alignment.judge import JudgedPair, JudgeMode, PairwiseJudge, agreement
from tailor.alignment.pairs import read_pairs
from tailor.alignment.users import SimulatedUser, read_users
from tailor.backends import Backend, load_backend
from tailor.evaluation.runner import EvalConfig, ProgressFactory, run_method
from tailor.methods import BuildContext, MethodSpec, parse_methods
from tailor.metrics import Metric, PerExampleScores, bootstrap_ci, paired_comparison
from tailor.store import InMemoryProfileStore, ingest_examples
from tailor.tasks import get_task
from tailor.tasks.preference import user_of
from tailor.types import TaskExample

__all__ = ["PreferenceEvalConfig", "PreferenceReport", "distance_from_mean", "evaluate_preference", "win_values"]

TIE = 1e-9


@dataclass(frozen=True)
class PreferenceEvalConfig:
    """One ``tailor eval-preference`` run (the keyword arguments of :func:`evaluate_preference`)."""

    data: str
    adapters: str | None = None
    methods: tuple[MethodSpec | str, ...] = ("none", "preference")
    split: str = "dev"
    backend: str = "default-fp32"
    users: tuple[str, ...] | None = None
    limit: int | None = None
    batch_size: int = 8
    seed: int = 0
    n_resamples: int = 1000
    judge: str | None = None
    judge_mode: JudgeMode = "likelihood"
    judge_limit: int | None = None
    accuracy: bool = True
    """Preference accuracy on the held-out pairs (loads the model once more to score them)."""
    out: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(parse_methods(self.methods)))
        if "none" not in [str(m) for m in self.methods]:
            raise ValueError("eval-preference compares every method with the base model: include none in --method")


@dataclass
class PreferenceReport:
    split: str
    n: int
    users: int
    methods: list[dict[str, Any]]
    by_user: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"task": "preference", "split": self.split, "n": self.n, "users": self.users,
                "results": self.methods, "by_user": self.by_user}


def _scores(columns: dict[str, Sequence[float]]) -> PerExampleScores:
    metrics = tuple(Metric.per_example(name, name, lambda prediction, gold: 0.0) for name in columns)
    return PerExampleScores(kind="generation", columns={k: np.asarray(v, dtype=float) for k, v in columns.items()},
                            metrics=metrics)


def win_values(method: Sequence[float], base: Sequence[float]) -> list[float]:
    """Per example: 1 when the method's reward beats the base's, 0.5 for a tie, else 0."""
    return [0.5 if abs(m - b) <= TIE else 1.0 if m > b else 0.0 for m, b in zip(method, base)]


def _signed(user: SimulatedUser) -> np.ndarray:
    from tailor.alignment.dimensions import DIMENSIONS

    return np.array([user.weights.get(d.name, 0.0) * d.sign(user.poles[d.name]) if d.name in user.poles else 0.0
                     for d in DIMENSIONS])


def distance_from_mean(users: Sequence[SimulatedUser]) -> dict[str, float]:
    """Each user's distance from the population's mean preference (see the module docstring)."""
    vectors = {user.user_id: _signed(user) for user in users}
    mean = np.mean(list(vectors.values()), axis=0)
    return {user_id: float(np.linalg.norm(vector - mean)) for user_id, vector in vectors.items()}


def _cost(adapters: Any, method: str, users: Sequence[str]) -> dict[str, Any]:
    """Training seconds and adapter bytes behind ``method``, per user served."""
    from tailor.adapters.soups import POLE_PREFIX, PREFERENCE_TASK

    held = adapters.list(task=PREFERENCE_TASK)
    if method.startswith("preference-global"):
        chosen = [a for a in held if a.key.scope == "global" and a.key.prompt == "preference"]
        shared = True
    elif method.startswith("soup"):
        chosen = [a for a in held if a.key.prompt.startswith(POLE_PREFIX)]
        shared = True
    else:
        chosen = [a for a in held if a.key.scope == "user" and a.key.owner in set(users)]
        shared = False
    seconds = sum(float(a.metadata.get("seconds", 0.0)) for a in chosen)
    size = sum(a.size for a in chosen)
    count = max(len(users), 1)
    return {"adapters": len(chosen), "training_seconds": round(seconds, 2),
            "training_seconds_per_user": round(seconds / count, 2), "bytes_per_user": int(size / count),
            "shared": shared, "new_user_training_seconds": 0.0 if shared else
            round(seconds / max(len(chosen), 1), 2)}


def _accuracy(personalizer: Any, users: Sequence[str], pairs_by_user: dict[str, list[Any]], trainer: Any,
              base_cache: dict[str, list[float]]) -> dict[str, Any] | None:
    """Held-out preference accuracy of the adapters ``personalizer`` resolves per user."""
    from tailor.adapters.preference import completion_log_likelihoods

    resolver = getattr(personalizer, "resolver", None)
    if resolver is None:
        return None
    hits: list[float] = []
    for user_id in users:
        pairs = pairs_by_user.get(user_id, [])
        if not pairs:
            continue
        items = [(tuple(dict(m) for m in p.messages), text) for p in pairs for text in (p.chosen, p.rejected)]
        if user_id not in base_cache:
            base_cache[user_id] = completion_log_likelihoods(trainer, items, None)
        base = base_cache[user_id]
        choice = resolver.resolve(user_id).choice
        if choice is None:
            hits.extend(0.5 for _ in pairs)  # no adapter: the base model's margin is 0
            continue
        scores = completion_log_likelihoods(trainer, items, choice.load())
        for i in range(len(pairs)):
            margin = (scores[2 * i] - base[2 * i]) - (scores[2 * i + 1] - base[2 * i + 1])
            hits.append(1.0 if margin > 0 else 0.5 if margin == 0 else 0.0)
    if not hits:
        return None
    low, high = bootstrap_ci(_scores({"accuracy": hits}))["accuracy"]
    return {"accuracy": round(float(np.mean(hits)), 4), "ci95": [round(low, 4), round(high, 4)], "n": len(hits)}


class _Memo:
    """A backend view that answers a request it has answered before from memory. Decoding
    is greedy, so the same prompt on the same adapter gives the same reply: the base model's
    reply to a prompt every user is asked, and the global adapter's, are generated once."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.name = getattr(backend, "name", "memo")
        self.engine = getattr(backend, "engine", self.name)
        self.resolver = getattr(backend, "resolver", None)
        self.seen: dict[Any, Any] = {}

    def count_tokens(self, text: str) -> int:
        return int(self.backend.count_tokens(text))

    def _key(self, request: Any) -> Any:
        adapter = None
        if self.resolver is not None:
            choice = self.resolver.resolve(request.user_id).choice
            adapter = choice.name if choice is not None else None
        messages = tuple((m["role"], m["content"]) for m in request.messages)
        return (messages, request.max_new_tokens, request.stop, request.candidates, adapter)

    def generate(self, requests: Sequence[Any]) -> list[Any]:
        keys = [self._key(r) for r in requests]
        todo = {key: request for key, request in zip(keys, requests) if key not in self.seen}
        if todo:
            for key, result in zip(todo, self.backend.generate(list(todo.values()))):
                self.seen[key] = result
        return [self.seen[key] for key in keys]


def evaluate_preference(config: PreferenceEvalConfig, *, backend: Backend | None = None,
                        judge_backend: Backend | None = None,
                        progress: ProgressFactory | None = None) -> PreferenceReport:
    """Run every method of ``config`` on the held-out prompts and score them (module docstring)."""
    task = get_task("preference")
    examples: list[TaskExample] = task.load(config.data, config.split)
    if config.users:
        wanted = set(config.users)
        examples = [e for e in examples if e.user_id in wanted]
    if config.limit is not None:  # the first prompts of every user: users stay comparable
        seen: dict[str, int] = {}
        limited = []
        for example in examples:
            seen[example.user_id] = seen.get(example.user_id, 0) + 1
            if seen[example.user_id] <= config.limit:
                limited.append(example)
        examples = limited
    if not examples:
        raise ValueError(f"{config.data}: split {config.split!r} holds no examples")
    population = read_users(config.data)
    users = sorted({e.user_id for e in examples})
    store = InMemoryProfileStore()
    ingest_examples(store, examples)
    if backend is None:
        backend = load_backend(config.backend, batch_size=config.batch_size)
    adapter_store = None
    if config.adapters:
        from tailor.adapters.store import open_adapter_store

        adapter_store = open_adapter_store(config.adapters)
    eval_config = EvalConfig(task="preference", data=config.data, split=config.split, backend=config.backend,
                             batch_size=config.batch_size, seed=config.seed, answers="raw",
                             methods=config.methods)
    context = BuildContext(task, backend.count_tokens, seed=config.seed, backend=backend, adapters=adapter_store,
                           store=store)
    rewards: dict[str, list[float]] = {}
    outputs: dict[str, list[str]] = {}
    summary: list[dict[str, Any]] = []
    personalizers: dict[str, Any] = {}
    for method in parse_methods(config.methods):
        personalizer = method.build(context)
        personalizers[str(method)] = personalizer
        bind = getattr(personalizer, "bind", None)
        method_backend = _Memo(bind(backend) if callable(bind) else backend)
        began = time.perf_counter()
        rows = run_method(task, examples, personalizer, method_backend, store, eval_config, progress=progress)
        seconds = time.perf_counter() - began
        texts = [rows[e.id]["output"] for e in examples]
        outputs[str(method)] = texts
        rewards[str(method)] = [user_of(e.gold or "").reward(text) for e, text in zip(examples, texts)]
        adapters_used: dict[str, int] = {}
        for e in examples:
            label = (rows[e.id].get("notes") or {}).get("adapter", "none")
            adapters_used[label] = adapters_used.get(label, 0) + 1
        summary.append({"method": str(method), "n": len(examples), "seconds": round(seconds, 2),
                        "mean_reward": round(float(np.mean(rewards[str(method)])), 4), "adapters_used": adapters_used})
    base = rewards["none"]
    by_method = {row["method"]: row for row in summary}
    for name, values in rewards.items():
        row = by_method[name]
        row["ci95"] = {"mean_reward": [round(x, 4) for x in bootstrap_ci(_scores({"reward": values}),
                                                                         n_resamples=config.n_resamples,
                                                                         seed=config.seed)["reward"]]}
        if name == "none":
            continue
        wins = win_values(values, base)
        low, high = bootstrap_ci(_scores({"win": wins}), n_resamples=config.n_resamples, seed=config.seed)["win"]
        row["win_rate"] = round(float(np.mean(wins)), 4)
        row["ci95"]["win_rate"] = [round(low, 4), round(high, 4)]
        row["identical_to_base"] = sum(1 for a, b in zip(outputs[name], outputs["none"]) if a.strip() == b.strip())
        compared = paired_comparison(_scores({"reward": base}), _scores({"reward": values}),
                                     n_resamples=config.n_resamples, seed=config.seed)["reward"]
        row["versus_none"] = {"reward": {k: round(v, 4) for k, v in compared.items()}}
        if adapter_store is not None and any(part.name in ("preference", "soup", "preference-global")
                                             for part in parse_methods([name])[0].modifiers):
            row["cost"] = _cost(adapter_store, name, users)
    distance = distance_from_mean([u for u in population if u.user_id in set(users)])
    known = {u.user_id: u for u in population}
    by_user = []
    for user_id in users:
        indices = [i for i, e in enumerate(examples) if e.user_id == user_id]
        entry: dict[str, Any] = {"user": user_id, "profile": known[user_id].profile,
                                 "distance_from_mean": round(distance[user_id], 4), "n": len(indices)}
        for name, values in rewards.items():
            if name != "none":
                entry[name] = round(float(np.mean(win_values([values[i] for i in indices],
                                                             [base[i] for i in indices]))), 4)
        by_user.append(entry)
    if config.accuracy and adapter_store is not None:
        pairs_file = Path(config.data) / f"{config.split}_pairs.jsonl"
        if pairs_file.is_file():
            from tailor.adapters.preference import PreferenceTrainer
            from tailor.backends.model_files import default_model_dir

            pairs_by_user: dict[str, list[Any]] = {}
            for pair in read_pairs(pairs_file):
                if pair.user in set(users):
                    pairs_by_user.setdefault(pair.user, []).append(pair)
            # The model the replies came from (adapters only mean something on their own base model).
            identity = getattr(backend, "identity", None)
            trainer = PreferenceTrainer(Path(identity["path"]) if isinstance(identity, dict) and identity.get("path")
                                        else default_model_dir())
            cache: dict[str, list[float]] = {}
            for name, personalizer in personalizers.items():
                if name != "none":
                    found = _accuracy(personalizer, users, pairs_by_user, trainer, cache)
                    if found is not None:
                        by_method[name]["preference_accuracy"] = found
    if config.judge or judge_backend is not None:
        judge = PairwiseJudge(judge_backend if judge_backend is not None else load_backend(config.judge or ""),
                              mode=config.judge_mode, batch_size=config.batch_size)
        for name in rewards:
            if name == "none":
                continue
            chosen = range(len(examples)) if config.judge_limit is None else range(min(config.judge_limit,
                                                                                          len(examples)))
            pairs = [JudgedPair(examples[i].input, known[examples[i].user_id].stated_preferences(),
                                outputs[name][i], outputs["none"][i]) for i in chosen]
            truth = [1.0 if rewards[name][i] > base[i] + TIE else 0.0 if rewards[name][i] < base[i] - TIE else 0.5
                     for i in chosen]
            verdicts = judge.judge(pairs)
            agreed = agreement(verdicts, truth)
            low, high = bootstrap_ci(_scores({"agreement": agreed}), n_resamples=config.n_resamples,
                                     seed=config.seed)["agreement"]
            by_method[name]["judge"] = {"backend": config.judge or getattr(judge_backend, "name", "?"),
                                        "mode": config.judge_mode, "n": len(agreed),
                                        "agreement": round(float(np.mean(agreed)), 4),
                                        "ci95": [round(low, 4), round(high, 4)],
                                        "judge_win_rate": round(float(np.mean(verdicts)), 4),
                                        "ties": sum(1 for v in verdicts if v == 0.5)}
    if adapter_store is not None:
        adapter_store.profiles.close()
    report = PreferenceReport(config.split, len(examples), len(users), summary, by_user,
                              {"data": str(Path(config.data).resolve()), "adapters": config.adapters,
                               "backend": config.backend, "methods": [str(m) for m in config.methods]})
    if config.out:
        folder = Path(config.out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps({**report.to_json(), "config": report.config}, indent=2)
                                             + "\n", encoding="utf-8")
        with (folder / "replies.jsonl").open("w", encoding="utf-8") as handle:
            for i, example in enumerate(examples):
                handle.write(json.dumps({"id": example.id, **{name: {"reply": outputs[name][i],
                                                                     "reward": round(rewards[name][i], 4)}
                                                              for name in outputs}}, ensure_ascii=False) + "\n")
    return report


def format_preference(report: PreferenceReport) -> str:
    """The report as Markdown tables: by method, then by user."""
    lines = [("| method | n | win rate vs none [95% CI] | mean reward [95% CI] | Δ reward vs none [95% CI] | "
              "preference accuracy [95% CI] | training s / user | bytes / user |"),
             "|---|---|---|---|---|---|---|---|"]
    for row in report.methods:
        ci = row.get("ci95", {})
        win = (f"{row['win_rate']:.3f} [{ci['win_rate'][0]:.3f}, {ci['win_rate'][1]:.3f}]"
               if "win_rate" in row else "—")
        reward = f"{row['mean_reward']:+.3f} [{ci['mean_reward'][0]:+.3f}, {ci['mean_reward'][1]:+.3f}]"
        delta = row.get("versus_none", {}).get("reward")
        delta_text = f"{delta['delta']:+.3f} [{delta['low']:+.3f}, {delta['high']:+.3f}]" if delta else "—"
        accuracy = row.get("preference_accuracy")
        accuracy_text = (f"{accuracy['accuracy']:.3f} [{accuracy['ci95'][0]:.3f}, {accuracy['ci95'][1]:.3f}]"
                         if accuracy else "—")
        cost = row.get("cost")
        lines.append(f"| {row['method']} | {row['n']} | {win} | {reward} | {delta_text} | {accuracy_text} | "
                     f"{cost['training_seconds_per_user'] if cost else '—'} | "
                     f"{cost['bytes_per_user'] if cost else '—'} |")
    methods = [row["method"] for row in report.methods if row["method"] != "none"]
    lines += ["", "| user | profile | distance from mean | " + " | ".join(f"{m} win rate" for m in methods) + " |",
              "|---|---|---|" + "---|" * len(methods)]
    for entry in sorted(report.by_user, key=lambda e: e["distance_from_mean"]):
        lines.append(f"| {entry['user']} | {entry['profile']} | {entry['distance_from_mean']:.3f} | "
                     + " | ".join(f"{entry.get(m, math.nan):.3f}" for m in methods) + " |")
    judged = [row for row in report.methods if "judge" in row]
    if judged:
        lines += ["", "| method vs none | judge | n | agreement with the simulated reward [95% CI] | ties |",
                  "|---|---|---|---|---|"]
        for row in judged:
            j = row["judge"]
            lines.append(f"| {row['method']} | {j['backend']} ({j['mode']}) | {j['n']} | "
                         f"{j['agreement']:.3f} [{j['ci95'][0]:.3f}, {j['ci95'][1]:.3f}] | {j['ties']} |")
    return "\n".join(lines)

