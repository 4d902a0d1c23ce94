"""``tailor train-preference``: preference adapters from users' feedback, into the adapter store.

The data is the store's feedback (:mod:`tailor.store.feedback`): what users sent to the
server (pairs, ratings and edits of served replies) and what ``--pairs FILE`` imports first
(the plain JSONL layout or PRISM's, :mod:`tailor.alignment`; its users are created in the
store, and importing the same file again adds nothing). Pairs are ``(messages, chosen,
rejected)``: a pair, or an edit (the edit over the reply); a rating is one reply liked or not
(KTO's data). Then, by scope:

- ``user``: one adapter per user with at least ``min_pairs`` examples (pairs; rated replies
  too for ``kto``), on that user's feedback alone. The rest get none and are served their
  soup, persona's or the global adapter instead.
- ``persona``: one per persona (the store's personas, or ``personas_file``) on its members'
  pooled feedback; ``global``: one on everyone's. Their contributors are recorded, so
  deleting any of them deletes the adapter.
- ``pole``: personalized soups' per-pole adapters, one per pole named in the pairs file's
  ``user`` field (``pole:style=friendly``, as ``tailor simulate pairs`` writes them), trained
  once; nothing is imported into the store's feedback.
- ``soup``: each user's soup weights, no training: their stated poles from a ``users.json``
  (``simulated_users``), or fitted to their feedback pairs (the first ``max_examples``, or
  all) by how likely each weighting of the pole adapters makes the user's choices
  (:func:`tailor.adapters.soups.fit_weights`).

``since`` (ISO-8601) retrains only what feedback given at or after that time changes: the
users who gave it, their personas, the global adapter. An adapter whose config and data are
unchanged is skipped, so a run can always be repeated. Each adapter keeps its loss, its data
(``examples``, a digest), its training seconds and size in its metadata: the cost per user
``tailor eval-preference`` reports.

``executor`` says where the adapters of ``user``, ``persona``, ``global`` and ``pole`` train:
``local`` (this process) or ``ray[:ADDRESS]``, one Ray task per adapter
(:class:`PreferenceTask` on :mod:`tailor.training.executors`), each stored as it finishes
with the same metadata (by its worker when ``store`` is a database URL, else by this process
as the task returns), so a rerun after a killed run trains only what is missing; an adapter that still fails after ``retries`` is reported by key and the others go
on. ``soup`` trains nothing and always runs here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from tailor.adapters.preference import (
    Loss,
    PreferenceExample,
    PreferenceResult,
    PreferenceTrainConfig,
    completion_log_likelihoods_under,
)
from tailor.adapters.soups import (
    POLE_PREFIX,
    fit_weights,
    pole_key,
    preference_key,
    set_soup_weights,
    stated_weights,
)
from tailor.adapters.store import AdapterInfo, AdapterKey, AdapterStore
from tailor.alignment.pairs import PreferencePair
from tailor.store import SQLProfileStore, open_serving_store
from tailor.store.feedback import FeedbackRow
from tailor.training.executors import (
    AdapterRecord,
    ExecutorSpec,
    RayExecutor,
    StackedOn,
    TrainerTask,
    parse_executor,
    shared_store_url,
)

if TYPE_CHECKING:
    from tailor.adapters.preference import PreferenceTrainer

logger = logging.getLogger(__name__)

__all__ = ["PreferenceTask", "PreferenceWorker", "TrainPreferenceConfig", "TrainPreferenceReport", "feedback_examples",
           "import_pairs", "read_pairs_file", "train_preference", "utc_time"]

PreferenceScope = Literal["user", "persona", "global", "pole", "soup"]
SCOPES: tuple[PreferenceScope, ...] = ("user", "persona", "global", "pole", "soup")
PairsFormat = Literal["auto", "jsonl", "prism"]


def utc_time(value: str | None = None) -> str:
    """``value`` (ISO-8601; a date or a time, UTC unless it says otherwise) as the store
    writes feedback times; the current time when ``None``."""
    if value is None:
        return datetime.now(timezone.utc).isoformat(timespec="microseconds")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"expected an ISO-8601 time such as 2025-01-31T12:00:00+00:00, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class TrainPreferenceConfig:
    """Everything one ``tailor train-preference`` run needs (see the module docstring)."""

    store: str
    loss: Loss = "dpo"
    scope: PreferenceScope = "user"
    pairs: str | None = None
    pairs_format: PairsFormat = "auto"
    users: tuple[str, ...] | None = None
    since: str | None = None
    min_pairs: int = 8
    max_examples: int | None = None
    """At most this many examples per adapter (``None``: all); a pooled adapter takes them
    in turn from each contributor, so every user is represented."""
    personas_file: str | None = None
    simulated_users: str | None = None
    model: str | None = None
    threads: int | None = None
    """Torch threads (``None``: torch's choice); with ``ray``, the CPUs and threads of each task
    (``None``: the cluster's CPUs divided among the tasks)."""
    train: PreferenceTrainConfig = field(default_factory=PreferenceTrainConfig)
    executor: str | ExecutorSpec = "local"
    """Where the adapters train: ``local``, ``ray`` or ``ray:ADDRESS`` (one Ray task per adapter)."""
    retries: int = 2
    """``ray``: attempts after the first for an adapter whose task raised or whose worker died."""

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        object.__setattr__(self, "executor", parse_executor(self.executor))
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be a whole number of at least 0, got {self.retries!r}")
        if self.pairs_format not in ("auto", "jsonl", "prism"):
            raise ValueError(f"pairs_format must be auto, jsonl or prism, got {self.pairs_format!r}")
        if self.min_pairs < 1:
            raise ValueError(f"min_pairs must be at least 1, got {self.min_pairs}")
        if self.scope == "pole" and not self.pairs:
            raise ValueError("pole adapters are trained from a pairs file whose users are poles "
                             "(tailor simulate pairs writes pole_pairs.jsonl): pass --pairs FILE")
        if self.train.loss != self.loss:
            object.__setattr__(self, "train", replace(self.train, loss=self.loss))
        if self.since is not None:
            object.__setattr__(self, "since", utc_time(self.since))


@dataclass
class TrainedPreference:
    """One adapter (or soup) of the run: trained, skipped and why."""

    key: str
    status: Literal["trained", "up to date", "too little feedback", "weights set", "failed"]
    examples: int = 0
    seconds: float = 0.0
    first_loss: float | None = None
    last_loss: float | None = None
    bytes: int = 0
    weights: dict[str, float] | None = None
    error: str | None = None
    """Why a ``failed`` adapter failed (the ``ray`` executor, after its retries)."""


@dataclass
class TrainPreferenceReport:
    store: str
    began_at: str
    """When the run began reading feedback (after its import): the ``--since`` of the next run."""
    imported: int
    rows: list[TrainedPreference]

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "began_at": self.began_at, "imported": self.imported,
                "adapters": [{k: v for k, v in row.__dict__.items() if v is not None} for row in self.rows]}

    @property
    def failed(self) -> list[TrainedPreference]:
        """The adapters that could not be trained (the ``ray`` executor reports them at the end)."""
        return [row for row in self.rows if row.status == "failed"]


def read_pairs_file(path: str, pairs_format: PairsFormat = "auto") -> tuple[list[PreferencePair], dict[str, dict[str, str]]]:
    """The pairs of a JSONL file (plain layout) or a PRISM folder, and the users' attributes
    where the file has them (PRISM's survey)."""
    from tailor.alignment.pairs import read_pairs

    source = Path(path)
    kind = pairs_format
    if kind == "auto":
        kind = "prism" if source.is_dir() or source.name == "conversations.jsonl" else "jsonl"
    if kind == "prism":
        from tailor.alignment.prism import read_prism, read_prism_profiles

        return read_prism(source), read_prism_profiles(source)
    if not source.is_file():
        raise FileNotFoundError(f"no pairs file at {path}")
    return read_pairs(source), {}


def import_pairs(store: SQLProfileStore, pairs: Iterable[PreferencePair],
                 attributes: dict[str, dict[str, str]] | None = None) -> int:
    """Keep ``pairs`` as their users' feedback (kind ``pair``), creating users the store lacks;
    a pair held already (same content) is not added again. Returns how many were new."""
    by_user: dict[str, list[FeedbackRow]] = {}
    now = utc_time()
    for pair in pairs:
        messages = json.dumps([dict(m) for m in pair.messages], ensure_ascii=False)
        by_user.setdefault(pair.user, []).append((pair.id, "pair", None, messages, pair.chosen, pair.rejected, None,
                                                  pair.source or "file", now))
    added = 0
    for user_id, rows in by_user.items():
        if not store.has_user(user_id) or (attributes and user_id in attributes):
            store.set_attributes(user_id, (attributes or {}).get(user_id, {}))
        added += store.add_feedback(user_id, rows)
    return added


def feedback_examples(rows: Iterable[FeedbackRow]) -> list[PreferenceExample]:
    """The training examples of feedback rows: pairs and edits as pairs, ratings as one
    reply liked (``chosen``) or not (``rejected``)."""
    examples = []
    for _, kind, _, messages, chosen, rejected, _, _, _ in rows:
        turns = tuple({"role": m["role"], "content": m["content"]} for m in json.loads(messages))
        examples.append(PreferenceExample(turns, chosen or "", rejected or ""))
    return examples


def _digest(examples: Sequence[PreferenceExample], config: PreferenceTrainConfig) -> str:
    payload = json.dumps([[list(e.messages), e.chosen, e.rejected] for e in examples] + [config.to_dict()],
                         ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class PreferenceTask(TrainerTask[PreferenceResult]):
    """One preference adapter to train in a Ray worker (a :class:`~tailor.training.executors.TrainingTask`)."""

    key: AdapterKey
    examples: tuple[PreferenceExample, ...]
    config: PreferenceTrainConfig
    model_dir: str
    record: AdapterRecord
    """What is stored beside the weights (the config's ``lora`` shape comes with the result)."""
    store: str | None = None
    """A database URL the worker stores the adapter in itself (``None``: the driver stores it)."""
    trainer_kind: ClassVar[str] = "preference"

    def load_trainer(self) -> PreferenceTrainer:
        from tailor.adapters.preference import PreferenceTrainer

        return PreferenceTrainer(self.model_dir)

    def train(self, trainer: PreferenceTrainer, below: StackedOn | None) -> PreferenceResult:
        if below is not None:
            raise ValueError("preference adapters train on the base model, not on top of another adapter")
        return trainer.train(self.examples, self.config)

    def save(self, adapters: AdapterStore, result: PreferenceResult,
             worker: dict[str, Any] | None = None) -> AdapterInfo:
        metadata = {**self.record.metadata, "examples": result.examples, "steps": result.steps,
                    "seconds": round(result.seconds, 2), "first_loss": round(result.first_loss, 4),
                    "last_loss": round(result.last_loss, 4), "reward_accuracy": result.reward_accuracy,
                    "trained_at": utc_time(), **({"worker": worker} if worker is not None else {})}
        return adapters.save(self.key, result.weights, config={"lora": result.shape.to_dict(), **self.record.config},
                             base_model=self.record.base_model, metadata=metadata,
                             contributors=self.record.contributors)


@dataclass(frozen=True)
class _Planned:
    """An adapter to train: its task (examples, settings, what will be stored beside its weights)."""

    task: PreferenceTask
    row: int
    """Its place among the report's rows."""

    @property
    def key(self) -> AdapterKey:
        return self.task.key


class _Job:
    def __init__(self, config: TrainPreferenceConfig, store: SQLProfileStore,
                 progress: Callable[[str], None] | None, executor: RayExecutor | None = None) -> None:
        from tailor.adapters.identity import base_model_identity
        from tailor.backends.model_files import default_model_dir

        self.config = config
        self.store = store
        self.adapters = AdapterStore(store)
        # With Ray and a database every node reaches, each worker stores its own adapter.
        self.worker_store = shared_store_url(config.store, store)
        self.model_dir = Path(config.model) if config.model else default_model_dir()
        self.identity = base_model_identity(self.model_dir)
        self.progress = progress
        self.rows: list[TrainedPreference] = []
        self._trainer: Any = None
        spec = parse_executor(config.executor)
        # Soups train nothing: they never need the executor.
        if executor is None and spec.kind == "ray" and config.scope != "soup":
            executor = RayExecutor(spec.address, retries=config.retries, cpus_per_task=config.threads)
        self.executor = executor
        self._queued: list[_Planned] = []

    def trainer(self) -> Any:
        if self._trainer is None:
            from tailor.adapters.preference import PreferenceTrainer

            self._trainer = PreferenceTrainer(self.model_dir, threads=self.config.threads)
        return self._trainer

    def usable(self, examples: Sequence[PreferenceExample]) -> list[PreferenceExample]:
        kept = list(examples) if self.config.loss == "kto" else [e for e in examples if e.is_pair]
        return kept[: self.config.max_examples] if self.config.max_examples is not None else kept

    def pooled(self, members: Sequence[str]) -> list[PreferenceExample]:
        """The members' examples taken in turn (the first of each, then the second...)."""
        lists = [self.usable(self.examples_of(user_id)) if self.config.max_examples is None
                 else [e for e in self.examples_of(user_id) if self.config.loss == "kto" or e.is_pair]
                 for user_id in members]
        turns = [lists[j][i] for i in range(max((len(x) for x in lists), default=0))
                 for j in range(len(lists)) if i < len(lists[j])]
        return turns

    def train(self, key: AdapterKey, examples: Sequence[PreferenceExample], contributors: Sequence[str] = ()) -> None:
        """Train (or skip) one adapter: at once with the local executor; with Ray, queued
        until :meth:`finish` runs the queue."""
        usable = self.usable(examples)
        if len(usable) < self.config.min_pairs:
            self.rows.append(TrainedPreference(str(key), "too little feedback", len(usable)))
            return
        train_config = self.config.train
        digest = _digest(usable, train_config)
        info = self.adapters.info(key)
        if (info is not None and info.metadata.get("data_digest") == digest
                and info.base_model.get("fingerprint") == self.identity["fingerprint"]):
            self.rows.append(TrainedPreference(str(key), "up to date", len(usable), bytes=info.size))
            return
        self.rows.append(TrainedPreference(str(key), "failed", len(usable), error="not trained yet"))
        record = AdapterRecord({"train": train_config.to_dict(), "task": key.task, "prompt": key.prompt},
                               dict(self.identity), {"data_digest": digest, "loss": train_config.loss},
                               tuple(contributors))
        task = PreferenceTask(key, tuple(usable), train_config, str(self.model_dir), record,
                              store=self.worker_store if self.executor is not None else None)
        planned = _Planned(task, len(self.rows) - 1)
        if self.executor is not None:
            self._queued.append(planned)
            return
        if self.progress is not None:
            self.progress(f"{key}: {train_config.loss} on {len(usable)} examples")
        self._store(planned, self.trainer().train(usable, train_config))

    def finish(self) -> None:
        """Train the queued adapters on the executor, storing each as its task returns."""
        queued, self._queued = self._queued, []
        if not queued or self.executor is None:
            return
        tasks = [p.task for p in queued]
        by_key = {p.key: p for p in queued}
        if self.progress is not None:
            self.progress(f"{len(tasks)} adapters ({self.config.train.loss}) on {self.executor}")
        for outcome in self.executor.run(tasks):
            planned = by_key[outcome.task.key]
            if outcome.result is None:
                self.rows[planned.row] = TrainedPreference(str(planned.key), "failed", len(planned.task.examples),
                                                           error=outcome.error)
            elif planned.task.store is not None:  # the worker stored it
                self._report(planned, outcome.result, self.adapters.info(planned.key))
            else:
                self._store(planned, outcome.result, worker=outcome.worker)
            if self.progress is not None:
                row = self.rows[planned.row]
                self.progress(f"{row.key}: {row.status}" + (f" ({row.error})" if row.error else ""))

    def _store(self, planned: _Planned, result: PreferenceResult, *, worker: dict[str, Any] | None = None) -> None:
        """Save a trained adapter with its metadata, and report it in its row."""
        self._report(planned, result, planned.task.save(self.adapters, result, worker))

    def _report(self, planned: _Planned, result: PreferenceResult, saved: AdapterInfo | None) -> None:
        if saved is None:  # pragma: no cover - a worker reported it stored
            raise RuntimeError(f"adapter {planned.key} is not in {self.config.store} after its worker stored it")
        self.rows[planned.row] = TrainedPreference(str(planned.key), "trained", result.examples,
                                                   round(result.seconds, 2), round(result.first_loss, 4),
                                                   round(result.last_loss, 4), saved.size)

    def users(self) -> list[str]:
        if self.config.users:
            return list(self.config.users)
        return self.store.users_with_feedback(since=self.config.since)

    def examples_of(self, user_id: str) -> list[PreferenceExample]:
        return feedback_examples(self.store.feedback_rows(user_id))

    def run_users(self) -> None:
        for user_id in self.users():
            self.train(preference_key("user", user_id), self.examples_of(user_id))
        self.finish()

    def run_personas(self) -> None:
        groups: dict[str, list[str]] = {}
        if self.config.personas_file:
            from tailor.training.jobs import read_persona_groups
            from tailor.types import Persona

            given = read_persona_groups(self.config.personas_file)
            known = set(self.store.list_users())
            memberships = {u: p for p, users in given.items() for u in users if u in known}
            self.store.put_personas([Persona(p, f"given group of {len(u)} users", size=len(u))
                                     for p, u in given.items()], memberships)
        for user_id in self.store.list_users():
            persona = self.store.persona_of(user_id)
            if persona is not None:
                groups.setdefault(persona, []).append(user_id)
        if not groups:
            raise ValueError("no personas: pass --personas FILE ({persona_id: [user_ids]}) or build personas first "
                             "(tailor personas build)")
        changed = set(self.store.users_with_feedback(since=self.config.since)) if self.config.since else None
        for persona, members in sorted(groups.items()):
            if changed is not None and not changed & set(members):
                continue
            self.train(preference_key("persona", persona), self.pooled(members), contributors=members)
        self.finish()

    def run_global(self) -> None:
        if self.config.since and not self.store.users_with_feedback(since=self.config.since):
            return
        contributors = self.store.users_with_feedback()
        self.train(preference_key("global", "all"), self.pooled(contributors), contributors=contributors)
        self.finish()

    def run_poles(self, pairs: Sequence[PreferencePair]) -> None:
        by_pole: dict[str, list[PreferenceExample]] = {}
        for pair in pairs:
            if not pair.user.startswith(POLE_PREFIX):
                raise ValueError(f"pole adapters train on pairs whose user names a pole (pole:style=friendly), "
                                 f"got user {pair.user!r}")
            by_pole.setdefault(pair.user, []).append(
                PreferenceExample(tuple(dict(m) for m in pair.messages), pair.chosen, pair.rejected))
        for name, examples in sorted(by_pole.items()):
            self.train(pole_key(name), examples)
        self.finish()

    def run_soups(self) -> None:
        if self.config.simulated_users:
            from tailor.alignment.users import read_users

            for user in read_users(self.config.simulated_users):
                if self.config.users and user.user_id not in self.config.users:
                    continue
                if not self.store.has_user(user.user_id):
                    self.store.set_attributes(user.user_id, user.attributes())
                weights = stated_weights(user.poles, user.weights)
                set_soup_weights(self.adapters, user.user_id, weights, source="stated")
                self.rows.append(TrainedPreference(f"soup/{user.user_id}", "weights set", weights=weights))
            return
        poles = [info for info in self.adapters.list(scope="global") if info.key.prompt.startswith(POLE_PREFIX)]
        if not poles:
            raise ValueError("no pole adapters in the store: train them first (--scope pole --pairs POLE_PAIRS)")
        from tailor.adapters.lora import from_bytes

        fitted: list[tuple[str, list[PreferenceExample]]] = []
        for user_id in self.users():
            pairs = [e for e in self.examples_of(user_id) if e.is_pair][: self.config.max_examples]
            if pairs:
                fitted.append((user_id, pairs))
            else:
                self.rows.append(TrainedPreference(f"soup/{user_id}", "too little feedback"))
        if not fitted:
            return
        # Every user's pairs scored at once, by the base model and every pole adapter (the layers
        # below the adapters run once per text).
        items = [(e.messages, text) for _, pairs in fitted for e in pairs for text in (e.chosen, e.rejected)]
        loaded, betas = [], []
        for info in poles:
            stored = self.adapters.load(info.key)
            assert stored is not None
            loaded.append(from_bytes(stored.weights, stored.config["lora"]))
            betas.append(float(stored.config.get("train", {}).get("beta", self.config.train.beta)))
        base, *by_pole = completion_log_likelihoods_under(self.trainer(), items, [None, *loaded])
        start = 0
        for user_id, pairs in fitted:
            # Each pole's implicit-reward margin on each of the user's pairs.
            margins = {info.key.prompt: [beta * ((scores[j] - base[j]) - (scores[j + 1] - base[j + 1]))
                                         for j in range(start, start + 2 * len(pairs), 2)]
                       for info, beta, scores in zip(poles, betas, by_pole)}
            start += 2 * len(pairs)
            weights = fit_weights(margins)
            set_soup_weights(self.adapters, user_id, weights, source=f"fitted on {len(pairs)} pairs")
            self.rows.append(TrainedPreference(f"soup/{user_id}", "weights set", len(pairs), weights=weights))


def train_preference(config: TrainPreferenceConfig, *, store: SQLProfileStore | None = None,
                     progress: Callable[[str], None] | None = None,
                     executor: RayExecutor | None = None) -> TrainPreferenceReport:
    """Import ``config.pairs`` (if any), then train (or set) what ``config.scope`` asks for.

    ``executor``: a :class:`~tailor.training.executors.RayExecutor` to train on (its options
    beyond ``config``'s: a hook run before each task); ``None``: the one ``config.executor`` names.
    """
    owned = store is None
    opened = store if store is not None else open_serving_store(config.store)
    job: _Job | None = None
    try:
        job = _Job(config, opened, progress, executor)
        imported = 0
        pairs: list[PreferencePair] = []
        if config.pairs:
            pairs, attributes = read_pairs_file(config.pairs, config.pairs_format)
            if config.scope != "pole":
                imported = import_pairs(opened, pairs, attributes)
        # Feedback given from now on is the next run's (--since began_at): this run reads what came before.
        began = utc_time()
        if config.scope == "user":
            job.run_users()
        elif config.scope == "persona":
            job.run_personas()
        elif config.scope == "global":
            job.run_global()
        elif config.scope == "pole":
            job.run_poles(pairs)
        else:
            job.run_soups()
        return TrainPreferenceReport(config.store, began, imported, job.rows)
    finally:
        if job is not None and job.executor is not None and executor is None:  # a caller's is theirs to close
            job.executor.close()
        if owned:
            opened.close()


class PreferenceWorker:
    """Runs ``tailor train-preference`` on a schedule beside a server (``tailor serve
    --train-preference-every SECONDS``): every ``every`` seconds, the users with feedback
    since the last run are retrained into the store the server reads, which picks the new
    adapters up on their users' next requests."""

    def __init__(self, config: TrainPreferenceConfig, every: float) -> None:
        if not every > 0:
            raise ValueError(f"the training interval must be positive, got {every}")
        self.config = config
        self.every = every
        self.since = config.since
        self.last: TrainPreferenceReport | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tailor-train-preference", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run_once(self) -> TrainPreferenceReport:
        report = train_preference(replace(self.config, since=self.since))
        self.since = report.began_at
        self.last = report
        trained = [row.key for row in report.rows if row.status == "trained"]
        if trained:
            logger.info("preference worker trained %s adapters: %s", len(trained), ", ".join(trained))
        return report

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.run_once()
            except Exception:  # the server goes on; the next run tries again
                logger.exception("preference training failed; retrying in %s s", self.every)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


