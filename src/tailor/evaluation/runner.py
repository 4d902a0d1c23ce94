"""``tailor eval``: several personalization methods over the same examples, scored with
bootstrap intervals and a paired comparison against the non-personalized baseline.

The flow is the one every tailor run follows: the data set's profiles go into a profile
store, each method's personalizer reads the user's profile from the store and builds the
prompt, the backend answers, the task parses the answer, and the metrics score it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from tailor import __version__
from tailor.about import git_commit
from tailor.backends import Backend, load_backend_on
from tailor.embeddings import EMBEDDERS, Embedder, embed_profiles, load_embedder
from tailor.evaluation.checkpoint import Checkpoint, prepare_ahead, safe_name
from tailor.evaluation.ranking import cold_subset, rank_method, subset_result
from tailor.machine import machine
from tailor.methods import BuildContext, MethodSpec, parse_methods
from tailor.metrics import bootstrap_ci, paired_comparison
from tailor.metrics.scores import PerExampleScores
from tailor.personalizers.calibration import ContextualCalibrator, EvidenceFit, fit_evidence_weight, posterior
from tailor.personalizers.contract import Personalized
from tailor.personalizers.labels import LabelDistribution, as_label, decide, label_distribution, store_labels
from tailor.prompting.builder import PromptBudget
from tailor.store import InMemoryProfileStore, ProfileStore, SQLiteProfileStore, ingest_examples
from tailor.tasks import TaskSpec, get_task
from tailor.tasks.spec import ANSWER_MODES, AnswerMode
from tailor.training.executors import ExecutorSpec, RayExecutor, parse_executor
from tailor.types import GenerationRequest, Profile, TaskExample, check_positive_ints

Scoring = Literal["generate", "likelihood", "calibrated"]
"""How classification and rating tasks are answered: free text, the label of highest
likelihood, or the decision of the calibrated likelihoods (contextual calibration, times
the prior of the method's granularity, the model's evidence weighed as fitted on the train
split; see :mod:`tailor.personalizers.calibration`). Unset: ``calibrated`` for the tasks
with labels (the measured best, docs/results.md), ``generate`` for the others."""
SCORINGS: tuple[Scoring, ...] = ("generate", "likelihood", "calibrated")

FIT_SPLIT = "train"
"""The split a calibrated method's evidence weight is fitted on, when the data folder holds it."""
FIT_EXAMPLES = 200
"""How many of its questions (the first, in file order) the fit reads."""
LABEL_DECISION = "prior-times-weighted-evidence"
"""How calibrated label scores become an answer (in the run's fingerprint, so predictions
saved under an earlier rule are not mixed with these)."""


@dataclass(frozen=True)
class EvalConfig:
    """Everything that defines an evaluation run (the keyword arguments of :func:`evaluate`)."""

    task: str
    data: str
    split: str = "dev"
    methods: tuple[MethodSpec | str, ...] = ("none", "bm25")
    """The methods to compare, parsed once (strings are parsed here)."""
    backend: str = "default"
    k: int | None = None
    """Profile items retrieved per input; ``None``: the task's default (:attr:`TaskSpec.k`)."""
    limit: int | None = None
    out: str | None = None
    batch_size: int = 8
    seed: int = 0
    scoring: Scoring | None = None
    """``None``: the task's default (``calibrated`` for label and rating tasks, else ``generate``)."""
    input_tokens: int = 384
    context_tokens: int = 384
    n_resamples: int = 1000
    embedder: str = "minilm"
    """The embedder of the dense methods (``dense``, ``hybrid``, ``recency+dense``)."""
    adapters: str | None = None
    """The adapter store of the adapter methods (``lora``, ``lora+bm25``, ``user-embedding``):
    a folder made by ``tailor train-adapter``."""
    users: tuple[str, ...] | None = None
    """Evaluate only these users' examples (``--limit`` then counts among them)."""
    answers: AnswerMode = "extract"
    """Generation tasks: ``extract`` the answer from the generated text (preambles, labels,
    quotes, markdown and explanations removed), or keep the first line ``raw`` (``--raw-answers``)."""
    selector: str | None = None
    """The ``auto`` method's selector (``tailor train-selector``); ``None``: one is trained on
    the data's train split on first use (:func:`tailor.evaluation.selection.attach_selectors`)."""
    executor: str | ExecutorSpec = "local"
    """Where the examples are answered: ``local`` (this process), or ``ray`` / ``ray:ADDRESS``:
    each method's examples in shards of users, one Ray task each (:mod:`tailor.evaluation.shards`)."""
    threads: int | None = None
    """The backend's threads (``None``: its own default); with ``ray``, the CPUs and threads of
    each shard's task (``None``: the cluster's CPUs divided among the shards, at least 1)."""
    retries: int = 2
    """``ray``: attempts after the first for a shard whose task raised or whose worker died."""

    def __post_init__(self) -> None:
        if self.k is not None and self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.scoring is not None and self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {', '.join(SCORINGS)}, got {self.scoring!r}")
        if self.answers not in ANSWER_MODES:
            raise ValueError(f"answers must be one of {', '.join(ANSWER_MODES)}, got {self.answers!r}")
        object.__setattr__(self, "methods", tuple(parse_methods(self.methods)))
        object.__setattr__(self, "executor", parse_executor(self.executor))
        if self.threads is not None:
            check_positive_ints(self, ("threads",))
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be a whole number of at least 0, got {self.retries!r}")
        if self.embedder not in EMBEDDERS:
            raise ValueError(f"unknown embedder {self.embedder!r}; valid embedders: {', '.join(EMBEDDERS.names())}")

    @property
    def method_specs(self) -> tuple[MethodSpec, ...]:
        """:attr:`methods`, parsed."""
        return tuple(m for m in self.methods if isinstance(m, MethodSpec))

    def to_json(self) -> dict[str, Any]:
        """The config as results.json records it (each method by its name)."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"methods": [str(m) for m in self.methods],
                                                                          "executor": str(self.executor)}

    def fingerprint(self) -> dict[str, Any]:
        """The settings that must match for saved predictions to be reused."""
        keys = ("task", "split", "backend", "k", "seed", "scoring", "input_tokens", "context_tokens", "embedder")
        adapters = str(Path(self.adapters).resolve()) if self.adapters else None
        # How answers are taken changes a generation task's generation too (see TaskSpec.generation_stop).
        task = get_task(self.task)
        answers = {"answers": self.answers} if task.kind == "generation" else {}
        # Every label task: a +prior method calibrates whatever --scoring says.
        decision = {"label_decision": LABEL_DECISION} if task.uses_candidates else {}
        selector = {"selector": str(Path(self.selector).resolve())} if self.selector else {}
        return {key: getattr(self, key) for key in keys} | {"data": str(Path(self.data).resolve()),
                                                             "adapters": adapters} | answers | decision | selector


@dataclass
class MethodResult:
    method: str
    n: int
    metrics: dict[str, float]
    ci95: dict[str, list[float]]
    seconds: float
    versus_none: dict[str, dict[str, float]] = field(default_factory=dict)
    granularity: dict[str, int] = field(default_factory=dict)
    predictions_file: str | None = None
    adapter: dict[str, Any] | None = None
    """Adapter methods: the prompt their adapters were trained on, and on what data."""
    engine: str | None = None
    """The inference engine that generated this method's outputs (adapter methods may run
    on another engine than the rest: see :class:`tailor.backends.fallback.TransformersFallback`)."""
    calibration: dict[str, Any] | None = None
    """Calibrated methods: the evidence weight and what it was fitted on (:class:`EvidenceFit`)."""
    cold: dict[str, Any] | None = None
    """Tasks that report cold users apart: the metrics on their examples alone, with intervals."""
    prompt_tokens: float | None = None
    """The mean prompt length in the model's tokens over the examples the model was asked
    (``None`` when the backend does not tokenize locally, or a method never asks it)."""


@dataclass
class EvalReport:
    task: str
    split: str
    n: int
    results: list[MethodResult]
    config: dict[str, Any]
    model: str
    machine: dict[str, Any] = field(default_factory=machine)
    """The CPU (model, instruction sets) and system the run's seconds were measured on."""
    engine_choice: dict[str, Any] | None = None
    """How ``--backend default`` chose its engine and precision for this CPU, and why
    (:class:`tailor.backends.choice.EngineChoice`); ``None`` for other backends."""

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object of the command-line contract."""
        return {
            "task": self.task,
            "split": self.split,
            "n": self.n,
            "machine": self.machine,
            **({"engine_choice": self.engine_choice} if self.engine_choice is not None else {}),
            "results": [
                {"method": r.method, "metrics": r.metrics, "ci95": r.ci95, "seconds": round(r.seconds, 3),
                 "versus_none": r.versus_none, "granularity": r.granularity, "engine": r.engine,
                 **({"adapter": r.adapter} if r.adapter is not None else {}),
                 **({"calibration": r.calibration} if r.calibration is not None else {}),
                 **({"cold": r.cold} if r.cold is not None else {}),
                 **({"prompt_tokens": r.prompt_tokens} if r.prompt_tokens is not None else {})}
                for r in self.results
            ],
        }


def engine_of(backend: Backend) -> str:
    """The name of the inference engine behind ``backend`` (its ``engine``, else its name)."""
    return str(getattr(backend, "engine", None) or getattr(backend, "name", type(backend).__name__))


def _profile_for(example: TaskExample, store: ProfileStore, cache: dict[str, Profile]) -> Profile:
    """The example's user's profile, read from the store.

    LaMP gives each question its own profile; when several questions share a user, the
    store holds the union, and the example's own record ids restrict it back.
    """
    if example.user_id not in cache:
        cache.clear()  # examples come grouped by file order; keep one user's profile at a time
        cache[example.user_id] = store.get_profile(example.user_id)
    stored = cache[example.user_id]
    if example.profile.records and len(example.profile.records) != len(stored.records):
        wanted = {r.id for r in example.profile.records}
        return Profile(stored.user_id, tuple(r for r in stored.records if r.id in wanted), stored.attributes)
    return stored


ProgressFactory = Callable[[int, str], Any]


def _default_progress(total: int, description: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="ex", leave=False, dynamic_ncols=True)


def evaluate(config: EvalConfig, *, backend: Backend | None = None, store: ProfileStore | None = None,
             progress: ProgressFactory | None = _default_progress, executor: RayExecutor | None = None) -> EvalReport:
    """Run every method of ``config`` over the same examples and score them.

    ``backend`` and ``store`` may be passed in (tests pass an echo backend); otherwise
    they are built from the config. With ``config.out`` set, predictions are saved as they
    are made and a rerun with the same settings resumes from them. ``executor``: a
    :class:`~tailor.training.executors.RayExecutor` to answer the examples on, in shards of
    users (its options beyond ``config``'s: a hook run before each shard); ``None``: the one
    ``config.executor`` names (``local``: this process).
    """
    spec = parse_executor(config.executor)
    if executor is None and spec.kind == "local":
        return _evaluate(config, backend=backend, store=store, progress=progress, executor=None)
    from tailor.evaluation.shards import ray_refusal

    refusal = ray_refusal(config, config.method_specs, backend=backend, store=store)
    if refusal is not None:
        raise ValueError(refusal)
    if executor is not None:  # a caller's is theirs to close
        return _evaluate(config, backend=None, store=None, progress=progress, executor=executor)
    owned = RayExecutor(spec.address, retries=config.retries, cpus_per_task=config.threads)
    try:
        return _evaluate(config, backend=None, store=None, progress=progress, executor=owned)
    finally:
        owned.close()


def task_of(config: EvalConfig) -> TaskSpec:
    """The task ``config`` evaluates, taking answers as ``config.answers`` says."""
    task = get_task(config.task)
    return replace(task, answers=config.answers) if task.answers != config.answers else task


def bound_backend(personalizer: Any, backend: Backend, calibrator: ContextualCalibrator | None,
                  task: TaskSpec) -> tuple[Backend, ContextualCalibrator | None]:
    """The backend ``personalizer`` answers through (an adapter method's: a view of ``backend``
    that applies the user's adapter) and the calibrator of its label scores (the run's, or
    for such a view one of its own, per user)."""
    bind = getattr(personalizer, "bind", None)
    method_backend = bind(backend) if callable(bind) else backend
    if method_backend is backend or calibrator is None:
        return method_backend, calibrator
    return method_backend, ContextualCalibrator(method_backend, task, per_user=True)


def answer_examples(task: TaskSpec, examples: Sequence[TaskExample], personalizer: Any, backend: Backend,
                    store: ProfileStore, config: EvalConfig, *, checkpoint: Checkpoint | None = None,
                    progress: ProgressFactory | None = None, calibrator: ContextualCalibrator | None = None,
                    prior: LabelDistribution | None = None,
                    evidence: EvidenceFit | None = None) -> dict[str, dict[str, Any]]:
    """One method's row per example id: ranked (:func:`~tailor.evaluation.ranking.rank_method`)
    on a ranking task, else answered (:func:`run_method`). A sharded run's workers call this too."""
    if task.kind == "ranking":
        return rank_method(task, examples, personalizer, store, batch_size=config.batch_size,
                           checkpoint=checkpoint, progress=progress)
    return run_method(task, examples, personalizer, backend, store, config, checkpoint=checkpoint,
                      progress=progress, calibrator=calibrator, prior=prior, evidence=evidence)


def _evaluate(config: EvalConfig, *, backend: Backend | None, store: ProfileStore | None,
              progress: ProgressFactory | None, executor: RayExecutor | None) -> EvalReport:
    task = task_of(config)
    # The task's measured default k, resolved before anything records the config.
    config = replace(config, k=task.items_per_input(config.k))
    if config.scoring is None:
        config = replace(config, scoring="calibrated" if task.uses_candidates else "generate")
    examples = task.load(config.data, config.split,
                         limit=None if config.users or task.stores_every_user else config.limit)
    population = examples  # what the store holds: every user, for a task whose methods learn from them all
    if config.users:
        examples = _only_users(examples, config.users, config)
    elif config.limit is not None:
        examples = examples[:config.limit]
    if not task.stores_every_user:
        population = examples
    if not examples:
        raise ValueError(f"{config.data}: split {config.split!r} holds no examples")
    out = Path(config.out) if config.out else None
    if out is not None:
        _claim_out_dir(out, config)
    if store is None:
        store = SQLiteProfileStore(out / "profiles.sqlite") if out is not None else InMemoryProfileStore()
    ingest_examples(store, population)
    methods = config.method_specs
    # A run of classic recommenders alone never asks the model: no model is loaded for it.
    backend_spec = "echo" if all(m.model_free for m in methods) else config.backend
    if backend is None:
        # With Ray, --threads are each shard's: this process keeps its backend's own default.
        backend = load_backend_on(backend_spec, config.threads if executor is None else None,
                                  batch_size=config.batch_size)
    choice = getattr(backend, "choice", None)
    if choice is not None:
        from tailor.backends.choice import announce

        announce(choice)
    budget = PromptBudget(config.input_tokens, config.context_tokens)
    embedder: Embedder | None = None
    if any(method.needs("embedder") for method in methods):
        embedder = load_embedder(config.embedder)
        # Once per record, at ingestion: every dense method then reads the stored vectors.
        # (With Ray, each shard's worker embeds its own users' records instead.)
        if executor is None:
            embed_profiles(store, embedder, dict.fromkeys(e.user_id for e in examples), document=task.document,
                           progress=progress is not None)
    if any(method.whole is not None for method in methods):
        from tailor.evaluation.selection import attach_selectors  # it runs this module's loop

        # auto's selector: --selector, or trained on the train split on first use.
        methods = attach_selectors(config, task, methods, backend=backend, embedder=embedder, progress=progress)
    has_golds = all(e.gold is not None for e in examples)
    adapter_store = None
    if config.adapters and any(method.needs("adapters") for method in methods):
        from tailor.adapters.store import open_adapter_store

        adapter_store = open_adapter_store(config.adapters)

    results: list[MethodResult] = []
    scores: dict[str, PerExampleScores] = {}
    # One calibrator for the run: methods that build the same prompt share its scores.
    calibrator = ContextualCalibrator(backend, task) if task.uses_candidates else None
    # Every personalizer first: a method that cannot run (an adapter method without the
    # adapters for its prompt) fails before the others spend their time.
    train = _train_examples(config, task) if any(method.needs("train-split") for method in methods) else None
    context = BuildContext(task, backend.count_tokens, k=config.k, budget=budget, seed=config.seed, embedder=embedder,
                           backend=backend, adapters=adapter_store, train=train)

    def personalizer_for(method: MethodSpec, profiles: ProfileStore) -> Any:
        return method.build(replace(context, store=profiles))

    personalizers = [personalizer_for(method, store) for method in methods]
    calibrating = [calibrates(task, config, p) for p in personalizers]
    # The population's label distribution: the prior of the calibrated methods that have no user's prior.
    prior = label_distribution(task, store_labels(task, store)) if any(calibrating) else None
    fit_on = _fitting_examples(config, task) if any(calibrating) else []
    fit_store: ProfileStore | None = None
    sharded = None
    if executor is not None:
        from tailor.evaluation.shards import ShardedRun

        sharded = ShardedRun(executor, config, population, backend=backend_spec, train=train,
                             embedded=list(dict.fromkeys(e.user_id for e in examples)) if embedder is not None else ())
    for method, personalizer, calibrated in zip(methods, personalizers, calibrating):
        # Adapter methods generate through a view of the backend that applies the user's adapter.
        method_backend, method_calibrator = bound_backend(personalizer, backend, calibrator, task)
        checkpoint = Checkpoint(out / "predictions" / f"{safe_name(str(method))}.jsonl") if out else None
        evidence = None
        if calibrated and method_calibrator is not None:
            evidence = EvidenceFit()
            fitted = _saved_fits(out).get(str(method)) if fit_on else None
            if fitted is not None:  # a resumed run: the fit is not redone
                evidence = EvidenceFit.from_json(fitted)
            elif fit_on:
                if fit_store is None:
                    fit_store = _fitting_store(task, fit_on, methods, embedder)
                evidence = fit_method(task, fit_on, personalizer_for(method, fit_store), fit_store, method_calibrator,
                                      config, progress=progress)
                if out is not None:
                    _write_json(out / FITS_FILE, _saved_fits(out) | {str(method): evidence.to_json()})
        if sharded is not None:
            rows = sharded.answer(method, examples, personalizer.name, checkpoint=checkpoint, progress=progress,
                                  prior=prior, evidence=evidence)
        else:
            rows = answer_examples(task, examples, personalizer, method_backend, store, config, checkpoint=checkpoint,
                                   progress=progress, calibrator=method_calibrator, prior=prior, evidence=evidence)
        predictions = [rows[e.id]["output"] for e in examples]
        result = MethodResult(method=str(method), n=len(examples), metrics={}, ci95={},
                              seconds=sum(float(rows[e.id].get("seconds", 0.0)) for e in examples),
                              prompt_tokens=_mean_prompt_tokens(rows[e.id] for e in examples),
                              adapter=getattr(personalizer, "training", None),
                              engine=None if method.model_free else engine_of(method_backend),
                              calibration=evidence.to_json() if evidence is not None else None)
        for example in examples:
            level = rows[example.id].get("granularity", "global")
            result.granularity[level] = result.granularity.get(level, 0) + 1
        if out is not None:
            path = out / f"{safe_name(str(method))}_outputs.json"
            task.write_predictions(path, [(e.id, p) for e, p in zip(examples, predictions)])
            result.predictions_file = str(path)
        if has_golds:
            golds = [e.gold or "" for e in examples]
            scored = task.score(predictions, golds, ids=[e.id for e in examples])
            scores[str(method)] = scored
            result.metrics = scored.aggregate()
            result.ci95 = {k: list(v) for k, v in bootstrap_ci(scored, n_resamples=config.n_resamples,
                                                               seed=config.seed).items()}
            cold = cold_subset(task, examples)
            if cold:
                result.cold = subset_result(scored, cold, n_resamples=config.n_resamples, seed=config.seed,
                                            max_profile=task.cold_profile)
        results.append(result)
    if adapter_store is not None:
        adapter_store.profiles.close()
    if "none" in scores:
        for result in results:
            if result.method != "none" and result.method in scores:
                result.versus_none = paired_comparison(scores["none"], scores[result.method],
                                                       n_resamples=config.n_resamples, seed=config.seed)
    report = EvalReport(task=task.name, split=config.split, n=len(examples), results=results,
                        config=config.to_json(), model=getattr(backend, "model_id", getattr(backend, "name", "?")),
                        engine_choice=choice.to_json() if choice is not None else None)
    if out is not None:
        saved = report.to_json() | {"config": report.config, "model": report.model, "tailor_version": __version__,
                                    "git_commit": git_commit()}
        _write_json(out / "results.json", _with_earlier_methods(out / "results.json", saved))
    return report


def _with_earlier_methods(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """``data``, this run's results.json, with the results an earlier run into the same folder
    measured for methods this run did not ask for, when that run had the same task, split,
    examples, model and settings (so ``--method none`` then ``--method bm25`` leaves both)."""
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return data
    if not isinstance(earlier, dict) or not isinstance(earlier.get("results"), list):
        return data

    def settings(saved: dict[str, Any]) -> dict[str, Any]:
        config = saved.get("config")
        return {k: v for k, v in config.items() if k != "methods"} if isinstance(config, dict) else {}

    if any(earlier.get(k) != data.get(k) for k in ("task", "split", "n", "model")) or settings(earlier) != settings(data):
        return data
    asked = {r["method"] for r in data["results"]}
    kept = [r for r in earlier["results"] if isinstance(r, dict) and r.get("method") not in asked]
    if not kept:
        return data
    methods = [str(r.get("method")) for r in kept] + list(data["config"].get("methods", []))
    return data | {"results": kept + data["results"], "config": data["config"] | {"methods": methods}}


def _only_users(examples: list[TaskExample], users: Sequence[str], config: EvalConfig) -> list[TaskExample]:
    """The examples of ``users``, in file order, the first ``config.limit`` of them."""
    present = {e.user_id for e in examples}
    unknown = [u for u in users if u not in present]
    if unknown:
        raise ValueError(f"users not in {config.data} ({config.split}): {', '.join(unknown)}")
    wanted = set(users)
    kept = [e for e in examples if e.user_id in wanted]
    return kept[: config.limit] if config.limit is not None else kept


def calibrates(task: TaskSpec, config: EvalConfig, personalizer: Any) -> bool:
    """Whether ``personalizer``'s label scores are calibrated in this run (a method that
    answers without the model, ``model_free``, has none)."""
    if not task.uses_candidates or getattr(personalizer, "model_free", False):
        return False
    return config.scoring == "calibrated" or getattr(personalizer, "calibrated", False)


FITS_FILE = "calibration.json"
"""In a run folder: each calibrated method's fitted evidence weight, reused when the run resumes."""


def _saved_fits(out: Path | None) -> dict[str, dict[str, Any]]:
    path = out / FITS_FILE if out is not None else None
    if path is None or not path.is_file():
        return {}
    saved = json.loads(path.read_text(encoding="utf-8"))
    return saved if isinstance(saved, dict) else {}


def _train_examples(config: EvalConfig, task: TaskSpec) -> list[TaskExample]:
    """The data's train split, for the methods that need one; an error naming the folder
    when it has none, or when the run evaluates the train split itself."""
    folder = Path(config.data)
    if config.split == FIT_SPLIT:
        raise ValueError(f"a method of this run learns from the {FIT_SPLIT} split, which is the split evaluated; "
                         "evaluate another split")
    if not task.has_split(folder, FIT_SPLIT):
        raise ValueError(f"{folder} has no {FIT_SPLIT} split (for {task.name}), which a method of this run learns from")
    return task.load(folder, FIT_SPLIT)


def _fitting_examples(config: EvalConfig, task: TaskSpec) -> list[TaskExample]:
    """The train-split questions with a gold label that evidence weights are fitted on, or
    none when the data folder has no train split or the run evaluates it (a weight fitted
    on the questions it is scored on would flatter it)."""
    folder = Path(config.data)
    if config.split == FIT_SPLIT or not task.has_golds(folder, FIT_SPLIT):
        return []
    examples = task.load(folder, FIT_SPLIT, limit=FIT_EXAMPLES)
    return [e for e in examples if e.gold is not None and as_label(task, e.gold) is not None]


def _fitting_store(task: TaskSpec, examples: Sequence[TaskExample], methods: Sequence[MethodSpec],
                   embedder: Embedder | None) -> ProfileStore:
    """The fitting questions' profiles, apart from the evaluated users' store."""
    store = InMemoryProfileStore()
    ingest_examples(store, examples)
    if embedder is not None and any(method.needs("embedder") for method in methods):
        embed_profiles(store, embedder, dict.fromkeys(e.user_id for e in examples), document=task.document,
                       progress=False)
    return store


def fit_method(task: TaskSpec, examples: Sequence[TaskExample], personalizer: Any, store: ProfileStore,
               calibrator: ContextualCalibrator, config: EvalConfig, *,
               progress: ProgressFactory | None = None) -> EvidenceFit:
    """The evidence weight of ``personalizer``'s calibrated scores, fitted on ``examples``
    (golds known), each answered exactly as :func:`run_method` answers: same prompt, same
    calibration, same prior (the user's, or the population's in ``store``)."""
    prior = label_distribution(task, store_labels(task, store))
    cache: dict[str, Profile] = {}
    prepare = getattr(personalizer, "prepare", None)
    if prepare is not None:
        prepare(task, list(examples), None)
    samples: list[tuple[LabelDistribution, LabelDistribution, str]] = []
    bar = progress(len(examples), f"{personalizer.name}: fitting on {FIT_SPLIT}") if progress else None
    step = config.batch_size * 4
    for start in range(0, len(examples), step):
        batch = examples[start:start + step]
        decided = [(e, personalizer.personalize(task, e.input, _profile_for(e, store, cache))) for e in batch]
        asked = [(e, d) for e, d in decided if d.answer is None]
        requests = _requests(task, asked, task.labels)
        if requests:
            for (e, d), evidence in zip(asked, calibrator.calibrate(requests, [e.input for e, _ in asked])):
                gold = as_label(task, e.gold or "")
                if gold is not None:
                    samples.append((evidence, d.label_prior if d.label_prior is not None else prior, gold))
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    if not samples:
        return EvidenceFit()
    return fit_evidence_weight(samples, FIT_SPLIT)


def run_method(task: TaskSpec, examples: Sequence[TaskExample], personalizer: Any, backend: Backend,
               store: ProfileStore, config: EvalConfig, *, checkpoint: Checkpoint | None = None,
               progress: ProgressFactory | None = None, calibrator: ContextualCalibrator | None = None,
               prior: LabelDistribution | None = None, evidence: EvidenceFit | None = None) -> dict[str, dict[str, Any]]:
    """``tailor eval``'s loop for one method: each example's profile read from ``store``,
    personalized by ``personalizer``, answered by ``backend`` in batches of
    ``config.batch_size``. Returns one row per example id (``output``, ``retrieved``,
    ``granularity``...); rows already in ``checkpoint`` are kept, new ones appended to it.

    Calibrated label scores are decided on the personalizer's prior (the user's) or else
    ``prior`` (the population's; uniform when not given), times the evidence weighed by
    ``evidence`` (weight 1 when not given)."""
    rows: dict[str, dict[str, Any]] = dict(checkpoint.rows) if checkpoint else {}
    todo = [e for e in examples if e.id not in rows]
    bar = progress(len(examples), personalizer.name) if progress else None
    if bar is not None:
        bar.update(len(examples) - len(todo))
    cache: dict[str, Profile] = {}
    calibrate = calibrates(task, config, personalizer)
    candidates = task.labels if config.scoring != "generate" and task.uses_candidates or calibrate else None
    # Methods that ask the LLM first (summaries, personas) do it once, in batches, up front;
    # the time is shared among the examples it serves.
    overhead = prepare_ahead(personalizer, task, todo, progress)
    batch_personalize = getattr(personalizer, "personalize_batch", None)
    for start in range(0, len(todo), config.batch_size):
        batch = todo[start:start + config.batch_size]
        began = time.perf_counter()
        inputs = [(e.input, _profile_for(e, store, cache)) for e in batch]
        if batch_personalize is not None:
            decided = batch_personalize(task, inputs)
        else:
            decided = [personalizer.personalize(task, text, profile) for text, profile in inputs]
        asked = [(e, d) for e, d in zip(batch, decided) if d.answer is None]
        requests = _requests(task, asked, candidates)
        answers = _answers(task, asked, requests, backend, calibrator if calibrate else None, prior,
                           evidence.weight if evidence is not None else 1.0)
        seconds = (time.perf_counter() - began) / len(batch) + overhead
        tokens = _prompt_tokens(backend, asked, requests)
        new_rows = [
            {"id": e.id, **(answers[e.id] if d.answer is None else {"output": d.answer, "raw": d.answer}),
             "retrieved": list(d.retrieved),
             "granularity": d.granularity, "profile_size": len(profile.records), "seconds": round(seconds, 4),
             **({"prompt_tokens": tokens[e.id]} if e.id in tokens else {}),
             **({"notes": d.notes} if d.notes else {})}
            for e, d, (_, profile) in zip(batch, decided, inputs)
        ]
        if checkpoint is not None:
            checkpoint.append(new_rows)
        rows.update((row["id"], row) for row in new_rows)
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return rows


def _mean_prompt_tokens(rows: Iterable[Mapping[str, Any]]) -> float | None:
    counts = [int(row["prompt_tokens"]) for row in rows if "prompt_tokens" in row]
    return round(sum(counts) / len(counts), 1) if counts else None


def _prompt_tokens(backend: Backend, asked: Sequence[tuple[TaskExample, Personalized]],
                   requests: Sequence[GenerationRequest]) -> dict[str, int]:
    """Each request's prompt length in the model's tokens (chat template included), by
    example id, where the backend tokenizes locally (``prompt_ids``); else none."""
    prompt_ids = getattr(backend, "prompt_ids", None)
    if prompt_ids is None:
        return {}
    try:
        return {e.id: len(prompt_ids(request)) for (e, _), request in zip(asked, requests)}
    except (AttributeError, NotImplementedError, TypeError):
        return {}


def _requests(task: TaskSpec, asked: Sequence[tuple[TaskExample, Personalized]],
              candidates: tuple[str, ...] | None) -> list[GenerationRequest]:
    """The model's request for each personalized example (scored on ``candidates``, if any)."""
    return [GenerationRequest(messages=d.messages, max_new_tokens=task.generation_tokens, stop=task.generation_stop,
                              candidates=candidates, user_id=e.user_id) for e, d in asked]


def _answers(task: TaskSpec, asked: Sequence[tuple[TaskExample, Personalized]], requests: Sequence[GenerationRequest],
             backend: Backend, calibrator: ContextualCalibrator | None, prior: LabelDistribution | None = None,
             weight: float = 1.0) -> dict[str, dict[str, Any]]:
    """Each request's answer, by example id: the parsed generation or best candidate, or,
    when ``calibrator`` is given, the decision of the calibrated label scores raised to
    ``weight``, times the personalizer's ``label_prior`` or else ``prior``; the final
    distribution is kept for inspection."""
    if not requests:
        return {}
    if calibrator is None:
        return {e.id: {"output": task.parse(g.text), "raw": g.text}
                for (e, _), g in zip(asked, backend.generate(requests))}
    rows = {}
    calibrated = calibrator.calibrate(requests, [e.input for e, _ in asked])
    for (e, d), result, scores in zip(asked, calibrator.score(requests), calibrated):
        distribution = posterior(scores, d.label_prior if d.label_prior is not None else prior, weight)
        rows[e.id] = {"output": decide(task, distribution), "raw": result.text,
                   "scores": {label: round(value, 4) for label, value in distribution.items()}}
    return rows


def _claim_out_dir(out: Path, config: EvalConfig) -> None:
    """Create ``out``, or check that the run saved there used the same settings."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "run.json"
    fingerprint = config.fingerprint()
    if marker.exists():
        saved = json.loads(marker.read_text(encoding="utf-8"))
        # A setting added to the fingerprint after the folder was made (the embedder) cannot
        # have shaped its predictions: no method then used it. Take today's value for it.
        if set(fingerprint) - set(saved):
            # Except how answers were taken: runs made before the choice existed generated
            # one line, as --raw-answers does; and calibrated labels were decided on a
            # uniform prior with the model's evidence at full weight (so such a folder is
            # not resumed).
            saved = {**fingerprint, **({"answers": "raw"} if "answers" in fingerprint else {}),
                     **({"label_decision": "uniform-prior"} if "label_decision" in fingerprint else {}), **saved}
            _write_json(marker, saved)
        if saved != fingerprint:
            changed = sorted(k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k))
            raise ValueError(
                f"{out} holds predictions made with other settings ({', '.join(changed)} differ); "
                "use another --out, or delete that folder to start over"
            )
    else:
        _write_json(marker, fingerprint)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
