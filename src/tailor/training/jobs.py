"""``tailor train-adapter``: train and store adapters for the users of a LaMP-format split.

The split's profiles are ingested into the adapter store's profile store (``OUT/profiles.sqlite``,
or the database of a ``postgresql://`` URL ``OUT``), so user adapters cascade from their users.
Then, by scope:

- ``global``: one adapter on the history pairs of every user of the split, pooled (OPPU's
  task-level adapter, and the survey's global preference). ``users`` does not narrow it, so
  that runs for different users stack on the same global adapter.
- ``user``: the global adapter first (trained now if the store lacks it, unless
  ``stack=False``), then one adapter per user on that user's own history, on top of it.
  Users with fewer than ``min_history`` usable items get none: at inference they fall back
  to their persona's adapter, then the global one.
- ``persona``: one adapter per persona on its members' pooled histories, on top of the
  global one. Personas come from ``personas_file`` (``{persona_id: [user_ids]}``, written
  into the store so inference finds them) or, without it, from the store's own personas.

LoRA adapters are trained for one prompt method (``method``: ``none`` or ``bm25``, with its
``k``, layout and token budgets): every training prompt is built by the personalizer
``tailor eval`` uses for that method, and the adapters are stored under that prompt's id
(:mod:`tailor.training.pairs`), so ``lora`` and ``lora+bm25`` are each served by the
adapters trained on their own prompt. On the train split a user's pairs are their history
items (each with retrieval from strictly earlier items only) and their questions with
golds; on any other split only the items preceding all of the user's questions, no golds.

Kind ``user-embedding`` trains the soft-prompt projector (:mod:`tailor.adapters.soft_prompt`)
instead, as a global adapter of kind ``soft-prompt``.

Every run is resumable: an adapter whose stored config, base model and training data
(a digest of its pairs and of the adapter below it) match is skipped.

``executor`` says where the LoRA adapters train: ``local`` (this process) or ``ray[:ADDRESS]``,
one Ray task per adapter, each stored as it finishes (:mod:`tailor.training.executors`): by
its worker when ``OUT`` is a database URL, else by this process as the task returns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from tailor.adapters.data import TrainingPair, data_digest, training_pairs
from tailor.adapters.identity import base_model_identity
from tailor.adapters.lora import from_bytes
from tailor.adapters.prompts import items_before_questions
from tailor.adapters.soft_prompt import SoftPromptConfig
from tailor.adapters.store import AdapterInfo, AdapterKey, AdapterStore, Scope, open_adapter_store
from tailor.adapters.train import LoRATrainConfig
from tailor.methods import MethodSpec
from tailor.prompting.builder import PromptBudget
from tailor.registry import require
from tailor.store import ingest_examples
from tailor.tasks import TaskSpec, get_task
from tailor.training.executors import (
    AdapterRecord,
    AdapterTask,
    ExecutorSpec,
    RayExecutor,
    StackedOn,
    parse_executor,
    shared_store_url,
)
from tailor.training.pairs import method_pairs, training_prompt
from tailor.types import HistoryRecord, Persona, Profile, TaskExample

__all__ = ["TrainAdapterConfig", "TrainAdapterReport", "TrainedRow", "TrainingFailedError", "train_adapters",
           "training_data"]

TrainKind = Literal["lora", "user-embedding"]
GLOBAL_DEFAULTS = LoRATrainConfig(epochs=1, max_items=None)
"""The global adapter sees every user's items once: more data, one pass."""


@dataclass(frozen=True)
class TrainAdapterConfig:
    """Everything one ``tailor train-adapter`` run needs (the keyword arguments of :func:`train_adapters`)."""

    task: str
    data: str
    out: str
    split: str = "train"
    users: tuple[str, ...] | None = None
    scope: Scope = "user"
    kind: TrainKind = "lora"
    personas_file: str | None = None
    min_history: int = 8
    stack: bool = True
    """Train user and persona adapters on top of the global one (OPPU); ``False``: on the bare model."""
    model: str | None = None
    """A model directory; the default model when ``None``."""
    threads: int | None = None
    method: str | MethodSpec = "none"
    """The prompt method the LoRA adapters are trained for: ``none`` (served as ``lora``) or
    a retrieval method, ``bm25`` / ``bm25:LAYOUT`` (served as ``lora+bm25``)."""
    k: int | None = None
    """Retrieved items per prompt (as ``tailor eval --k``); ``None``: the task's default."""
    input_tokens: int = 384
    context_tokens: int = 384
    """The prompt's token budgets (as ``tailor eval --input-tokens/--context-tokens``)."""
    lora: LoRATrainConfig = field(default_factory=LoRATrainConfig)
    global_lora: LoRATrainConfig = GLOBAL_DEFAULTS
    soft_prompt: SoftPromptConfig = field(default_factory=SoftPromptConfig)
    executor: str | ExecutorSpec = "local"
    """Where the LoRA adapters train: ``local``, ``ray`` or ``ray:ADDRESS`` (one Ray task per adapter,
    each with ``threads`` CPUs; by default the cluster's CPUs divided among the tasks)."""
    retries: int = 2
    """``ray``: attempts after the first for an adapter whose task raised or whose worker died."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "executor", parse_executor(self.executor))
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be a whole number of at least 0, got {self.retries!r}")
        if self.kind == "user-embedding" and str(self.executor) != "local":
            raise ValueError("the user-embedding projector trains in this process: --executor is for lora")
        if self.scope not in ("user", "persona", "global"):
            raise ValueError(f"scope must be user, persona or global, got {self.scope!r}")
        if self.kind not in ("lora", "user-embedding"):
            raise ValueError(f"kind must be lora or user-embedding, got {self.kind!r}")
        if self.kind == "user-embedding" and self.scope != "global":
            raise ValueError("the user-embedding projector is trained once for all users: use --scope global "
                             "(each user's vector comes from their own history at inference)")
        if self.min_history < 1:
            raise ValueError(f"min_history must be at least 1, got {self.min_history}")
        if self.kind == "user-embedding" and str(self.method) != "none":
            raise ValueError("the user-embedding projector is trained on the none prompt; --method is for lora")


@dataclass
class TrainedRow:
    """One adapter of the run: trained, or skipped and why."""

    key: str
    status: Literal["trained", "up to date", "too little history", "failed"]
    items: int = 0
    seconds: float = 0.0
    first_loss: float | None = None
    """Mean training loss at the start (LoRA: its first tenth of the steps; the soft-prompt
    projector: its first steps), so that even one epoch shows a learning curve."""
    last_loss: float | None = None
    """The same at the end."""
    bytes: int = 0
    error: str | None = None
    """Why a ``failed`` adapter failed (the ``ray`` executor, after its retries)."""


@dataclass
class TrainAdapterReport:
    store: str
    rows: list[TrainedRow]

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "adapters": [row.__dict__ for row in self.rows]}

    @property
    def failed(self) -> list[TrainedRow]:
        """The adapters that could not be trained (the ``ray`` executor reports them at the end)."""
        return [row for row in self.rows if row.status == "failed"]


class TrainingFailedError(RuntimeError):
    """An adapter that the others need (the global one) failed on every attempt."""


@dataclass
class _Planned:
    """An adapter to train (its task: pairs, settings and what will be stored beside its
    weights) and the adapter it stacks on."""

    task: AdapterTask
    below: AdapterInfo | None
    below_weights: bytes | None
    row: int
    """Its place among the report's rows."""

    @property
    def key(self) -> AdapterKey:
        return self.task.key


ProgressFactory = Callable[[int, str], Any]


def _default_progress(total: int, description: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="step", leave=False, dynamic_ncols=True)


def _by_date(records: Sequence[HistoryRecord]) -> list[HistoryRecord]:
    """Oldest first, so that ``max_items`` keeps the most recent; undated records keep their place."""
    if all(r.date for r in records):
        return sorted(records, key=lambda r: r.date or "")
    return list(records)


def read_persona_groups(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """``{persona_id: [user_id, ...]}`` from a JSON file, checked."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, list) for k, v in data.items()):
        raise ValueError(f"{path}: expected a JSON object mapping persona ids to lists of user ids")
    seen: dict[str, str] = {}
    for persona, members in data.items():
        for user_id in members:
            if not isinstance(user_id, str):
                raise TypeError(f"{path}: persona {persona!r} lists a non-string user id {user_id!r}")
            if user_id in seen:
                raise ValueError(f"{path}: user {user_id!r} is in personas {seen[user_id]!r} and {persona!r}")
            seen[user_id] = persona
    return {persona: list(members) for persona, members in data.items()}


class _Job:
    def __init__(self, config: TrainAdapterConfig, progress: ProgressFactory | None,
                 executor: RayExecutor | None = None) -> None:
        from tailor.backends.model_files import default_model_dir

        self.config = config
        self.progress = progress
        self.task: TaskSpec = get_task(config.task)
        self.model_dir = Path(config.model) if config.model else default_model_dir()
        self.identity = base_model_identity(self.model_dir)
        examples = self.task.load(config.data, config.split)
        if not examples:
            raise ValueError(f"{config.data}: split {config.split!r} holds no examples")
        self.prompt = training_prompt(config.method, self.task, k=config.k,
                                      budget=PromptBudget(config.input_tokens, config.context_tokens))
        self.store: AdapterStore = open_adapter_store(config.out, create=True)
        # With Ray and a database every node reaches, each worker stores its own adapter.
        self.worker_store = shared_store_url(str(config.out), self.store.profiles)
        ingest_examples(self.store.profiles, examples)
        self.examples: dict[str, list[TaskExample]] = {}
        for example in examples:
            self.examples.setdefault(example.user_id, []).append(example)
        present = list(self.examples)
        self.all_users = present
        if config.users:
            missing = [u for u in config.users if u not in present]
            if missing:
                raise ValueError(f"users not in {config.data} ({config.split}): {', '.join(missing)}; "
                                 f"users there: {', '.join(present[:10])}{' ...' if len(present) > 10 else ''}")
            self.users = list(config.users)
        else:
            self.users = present
        self.rows: list[TrainedRow] = []
        self._trainer: Any = None
        self._personalizer: Any = None
        self._pairs: dict[str, list[TrainingPair]] = {}
        spec = parse_executor(config.executor)
        if executor is None and spec.kind == "ray":
            executor = RayExecutor(spec.address, retries=config.retries, cpus_per_task=config.threads)
        self.executor = executor
        self._queued: list[_Planned] = []

    # -- helpers -------------------------------------------------------------------------------

    def profile(self, user_id: str) -> Profile:
        return self.store.profiles.get_profile(user_id)

    def personalizer(self) -> Any:
        """The personalizer that builds ``tailor eval``'s prompt for the trained-for method
        (on a ranking task, the prompt its ranker scores candidates after), counting tokens
        with the model's own tokenizer (as the backend serving it does)."""
        if self._personalizer is None:
            from tailor.methods import BuildContext, parse_method

            transformers = require("transformers", "hf")
            tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)

            def count_tokens(text: str) -> int:
                return len(tokenizer(text, add_special_tokens=False)["input_ids"])

            self._personalizer = parse_method(self.prompt.spec).build_prompt(
                BuildContext(self.task, count_tokens, k=self.prompt.k, budget=self.prompt.budget))
        return self._personalizer

    def pairs(self, user_id: str, config: LoRATrainConfig) -> list[TrainingPair]:
        """The user's pairs with the method's prompts, the most recent ``max_items``."""
        if user_id not in self._pairs:
            questions = self.examples[user_id]
            if self.config.split == "train":
                records: dict[str, HistoryRecord] = {}
                for question in questions:
                    records.update((r.id, r) for r in question.profile.records)
                history, golds = list(records.values()), [q for q in questions if q.gold]
            else:
                # Never a dev or test gold: only what precedes all of the user's questions.
                history, golds = items_before_questions(questions), []
            self._pairs[user_id] = method_pairs(self.task, self.personalizer(), user_id, history, golds)
        pairs = self._pairs[user_id]
        return pairs[-config.max_items:] if config.max_items is not None else list(pairs)

    def trainer(self) -> Any:
        if self._trainer is None:
            from tailor.adapters.train import LoRATrainer

            self._trainer = LoRATrainer(self.model_dir, threads=self.config.threads)
        return self._trainer

    def up_to_date(self, info: AdapterInfo | None, config: dict[str, Any], digest: str) -> bool:
        return (info is not None and dict(info.config) == config and info.metadata.get("data_digest") == digest
                and info.base_model.get("fingerprint") == self.identity["fingerprint"])

    def train_lora(self, key: AdapterKey, pairs: list[TrainingPair], train_config: LoRATrainConfig,
                   below: AdapterKey | None, contributors: Sequence[str] = ()) -> None:
        """Train (or skip as up to date) one LoRA adapter: at once with the local executor;
        with Ray, queued until :meth:`finish` runs the queue."""
        below_info = self.store.load(below) if below is not None else None
        if below is not None and below_info is None:
            raise ValueError(f"adapter {below} is missing; train it first (--scope global)")
        shape = train_config.shape(int(self._num_layers()))
        stored_config = {"lora": shape.to_dict(), "train": train_config.to_dict(), "task": self.task.name,
                         "prompt": self.prompt.to_dict()}
        digest = data_digest(pairs, extra=below_info.digest if below_info is not None else None)
        info = self.store.info(key)
        if self.up_to_date(info, stored_config, digest):
            self.rows.append(TrainedRow(str(key), "up to date", len(pairs), bytes=info.size if info else 0))
            return
        self.rows.append(TrainedRow(str(key), "failed", len(pairs), error="not trained yet"))
        metadata = {"data_digest": digest, "split": self.config.split, "prompt": self.prompt.id,
                    "golds": sum(1 for p in pairs if p.record_id in self._question_ids()),
                    "data": str(Path(self.config.data).resolve()),
                    "on_top_of": below_info.digest if below_info is not None else None}
        task = AdapterTask(key, self.task.name, tuple(pairs), train_config, str(self.model_dir),
                           AdapterRecord(stored_config, dict(self.identity), metadata, tuple(contributors)),
                           store=self.worker_store if self.executor is not None else None)
        planned = _Planned(task, below_info, below_info.weights if below_info else None, len(self.rows) - 1)
        if self.executor is not None:
            self._queued.append(planned)
            return
        bar = self.progress((train_config.epochs + 1) * -(-len(pairs) // train_config.batch_size), str(key)) \
            if self.progress else None

        def step(done: int, total: int, loss: float | None) -> None:
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str("frozen layers" if loss is None else f"loss={loss:.3f}")

        stacked = from_bytes(planned.below_weights, below_info.config["lora"]) \
            if below_info is not None and planned.below_weights is not None else None
        result = self.trainer().train(self.task, pairs, train_config, on_top_of=stacked,
                                      on_top_of_digest=below_info.digest if below_info is not None else None,
                                      progress=step)
        if bar is not None:
            bar.close()
        self._store_trained(planned, result)

    def finish(self) -> None:
        """Train the queued adapters on the executor, storing each as its task returns."""
        queued, self._queued = self._queued, []
        if not queued or self.executor is None:
            return
        # The adapters queued together stack on one adapter below (or none).
        first = queued[0]
        below = StackedOn(first.below_weights, dict(first.below.config), first.below.digest) \
            if first.below is not None and first.below_weights is not None else None
        tasks = [p.task for p in queued]
        by_key = {p.key: p for p in queued}
        bar = self.progress(len(tasks), f"adapters on {self.executor}") if self.progress else None
        for outcome in self.executor.run(tasks, below):
            planned = by_key[outcome.task.key]
            if outcome.result is None:
                self.rows[planned.row] = TrainedRow(str(planned.key), "failed", len(planned.task.pairs),
                                                    error=outcome.error)
            elif planned.task.store is not None:  # the worker stored it
                self._report_trained(planned, outcome.result, self.store.info(planned.key))
            else:
                self._store_trained(planned, outcome.result, worker=outcome.worker)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{planned.key.owner}: {self.rows[planned.row].status}")
        if bar is not None:
            bar.close()

    def _store_trained(self, planned: _Planned, result: Any, *, worker: dict[str, Any] | None = None) -> None:
        """Save a trained adapter with its metadata, and report it in its row."""
        self._report_trained(planned, result, planned.task.save(self.store, result, worker))

    def _report_trained(self, planned: _Planned, result: Any, saved: AdapterInfo | None) -> None:
        if saved is None:  # pragma: no cover - a worker reported it stored
            raise RuntimeError(f"adapter {planned.key} is not in {self.store.location} after its worker stored it")
        first = result.first_steps_loss if result.first_steps_loss is not None else result.first_epoch_loss
        last = result.last_steps_loss if result.last_steps_loss is not None else result.last_epoch_loss
        self.rows[planned.row] = TrainedRow(str(planned.key), "trained", result.items, round(result.seconds, 2),
                                            round(first, 4), round(last, 4), saved.size)

    def _question_ids(self) -> set[str]:
        """Ids of the split's questions whose golds were trained on (the train split's only)."""
        if self.config.split != "train":
            return set()
        return {q.id for questions in self.examples.values() for q in questions if q.gold}

    def _num_layers(self) -> int:
        config = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
        return int(config["num_hidden_layers"])

    # -- scopes ----------------------------------------------------------------------------------

    def run_global(self) -> AdapterKey:
        key = AdapterKey.global_(self.task.name, prompt=self.prompt.id)
        # Every user of the split, whatever --users says: one task-level adapter that the
        # user and persona adapters of any later run can stack on.
        pooled = [pair for user_id in self.all_users for pair in self.pairs(user_id, self.config.global_lora)]
        self.train_lora(key, pooled, self.config.global_lora, None, contributors=self.all_users)
        self.finish()
        row = next(row for row in reversed(self.rows) if row.key == str(key))
        if row.status == "failed":
            raise TrainingFailedError(f"the global adapter {key} failed on every attempt ({row.error}); "
                                      "the user and persona adapters stack on it (--no-stack trains them without)")
        return key

    def run_users(self) -> None:
        below = self.run_global() if self.config.stack else None
        for user_id in self.users:
            pairs = self.pairs(user_id, self.config.lora)
            key = AdapterKey("user", user_id, self.task.name, prompt=self.prompt.id)
            if len(pairs) < self.config.min_history:
                self.rows.append(TrainedRow(str(key), "too little history", len(pairs)))
                continue
            self.train_lora(key, pairs, self.config.lora, below)
        self.finish()

    def personas(self) -> dict[str, list[str]]:
        if self.config.personas_file:
            given = read_persona_groups(self.config.personas_file)
            known = set(self.store.profiles.list_users())
            memberships = {u: p for p, members in given.items() for u in members if u in known}
            personas = [Persona(p, f"given group of {len(members)} users", size=len(members),
                                metadata={"source": str(self.config.personas_file)})
                        for p, members in given.items()]
            # Written into the store so that inference resolves each user's persona from it.
            self.store.profiles.put_personas(personas, memberships)
            return {p: [u for u in members if u in known] for p, members in given.items()}
        groups: dict[str, list[str]] = {p.persona_id: [] for p in self.store.profiles.list_personas()}
        for user_id in self.store.profiles.list_users():
            persona = self.store.profiles.persona_of(user_id)
            if persona is not None:
                groups.setdefault(persona, []).append(user_id)
        if not groups:
            raise ValueError("no personas: pass --personas FILE ({persona_id: [user_ids]}) or build personas "
                             "in the profile store first")
        return groups

    def run_personas(self) -> None:
        below = self.run_global() if self.config.stack else None
        selected = set(self.users)
        for persona, members in self.personas().items():
            members = [u for u in members if u in selected]
            pooled = [pair for user_id in members for pair in self.pairs(user_id, self.config.lora)]
            key = AdapterKey("persona", persona, self.task.name, prompt=self.prompt.id)
            if len(pooled) < self.config.min_history:
                self.rows.append(TrainedRow(str(key), "too little history", len(pooled)))
                continue
            self.train_lora(key, pooled, self.config.lora, below, contributors=members)
        self.finish()

    def run_user_embedding(self) -> None:
        from tailor.adapters.soft_prompt import SoftPromptTrainer

        key = AdapterKey.global_(self.task.name, "soft-prompt")
        config = self.config.soft_prompt
        # --users names the training users here: the projector then serves users it never saw.
        profiles = [Profile(u, tuple(_by_date(self.profile(u).records))) for u in self.users]
        pairs = [pair for p in profiles for pair in training_pairs(self.task, p.records, max_items=config.max_items)]
        stored_config = {"soft_prompt": config.to_dict(), "task": self.task.name}
        digest = data_digest(pairs)
        info = self.store.info(key)
        # The stored config also holds the projector's dimensions, known only once it is built.
        known = {key: value for key, value in info.config.items() if key != "projector"} if info else None
        if info is not None and known == stored_config and self.up_to_date(info, dict(info.config), digest):
            self.rows.append(TrainedRow(str(key), "up to date", len(pairs), bytes=info.size if info else 0))
            return
        trainer = SoftPromptTrainer(self.model_dir, threads=self.config.threads)
        bar = self.progress(config.steps, str(key)) if self.progress else None

        def step(done: int, total: int, loss: float) -> None:
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")

        projector, facts = trainer.train(self.task, profiles, config, progress=step)
        if bar is not None:
            bar.close()
        stored_config["projector"] = {"input_dim": projector.input_dim, "output_dim": projector.output_dim,
                                      "embedder_name": facts["embedder_name"]}
        weights = projector.to_bytes()
        saved = self.store.save(key, weights, config=stored_config, base_model=self.identity,
                                metadata={"data_digest": digest, **facts, "split": self.config.split},
                                contributors=[p.user_id for p in profiles])
        self.rows.append(TrainedRow(str(key), "trained", facts["items"], facts["seconds"], facts["first_loss"],
                                    facts["last_loss"], saved.size))


def train_adapters(config: TrainAdapterConfig, *, progress: ProgressFactory | None = _default_progress,
                   executor: RayExecutor | None = None) -> TrainAdapterReport:
    """Train (or resume) the adapters ``config`` asks for; see the module docstring.

    ``executor``: a :class:`~tailor.training.executors.RayExecutor` to train on (its options
    beyond ``config``'s: a hook run before each task); ``None``: the one ``config.executor`` names.
    """
    job = _Job(config, progress, executor)
    try:
        if config.kind == "user-embedding":
            job.run_user_embedding()
        elif config.scope == "global":
            job.run_global()
        elif config.scope == "user":
            job.run_users()
        else:
            job.run_personas()
    finally:
        job.store.profiles.close()
        if job.executor is not None and executor is None:  # one the caller handed in is theirs to close
            job.executor.close()
    return TrainAdapterReport(job.store.location, job.rows)


def training_data(config: TrainAdapterConfig) -> dict[str, list[TrainingPair]]:
    """The LoRA training pairs of each user of ``config``'s split, with their prompts built
    as training builds them (the global adapter pools them all; a user adapter takes the
    last ``config.lora.max_items``). Loads the tokenizer, not the model: for inspecting
    what an adapter would learn from, and for leakage checks."""
    job = _Job(config, None)
    try:
        return {user_id: job.pairs(user_id, replace(config.lora, max_items=None)) for user_id in job.all_users}
    finally:
        job.store.profiles.close()


def persona_map(groups: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """``{user_id: persona_id}`` from ``{persona_id: [user_ids]}``."""
    return {user_id: persona for persona, members in groups.items() for user_id in members}
