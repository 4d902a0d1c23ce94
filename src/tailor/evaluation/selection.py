"""``tailor train-selector``: the ``auto`` method's selector, fitted on train-split outcomes.

Each option (``none`` and the retrieval methods, at the task's k) answers every training
example through ``tailor eval``'s own loop (:func:`~tailor.evaluation.runner.run_method`:
the same personalizer, backend and answer parsing), the task's main metric scores each
answer, and :func:`~tailor.personalizers.selector.fit_selector` learns from the features of
each input which option gains over ``none``. Only the data's train split is read; the
example ids it used are kept in the selector.

:func:`attach_selectors` is what lets ``tailor eval --method none,bm25,auto`` run with no
other step: an ``auto`` without ``--selector`` gets a selector trained on the data's train
split on first use, cached under the run's ``--out`` folder (else ``$TAILOR_HOME/selectors``),
keyed by the train examples and the settings.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tailor.backends import Backend, load_backend
from tailor.embeddings import Embedder, embed_profiles, load_embedder
from tailor.evaluation.checkpoint import Checkpoint, safe_name
from tailor.evaluation.runner import FIT_SPLIT, EvalConfig, ProgressFactory, _default_progress, _profile_for, run_method
from tailor.methods import BuildContext, MethodSpec, parse_methods
from tailor.methods.auto import feature_rankers, is_auto, selector_of, with_selector
from tailor.personalizers.selector import (
    BASELINE,
    DEFAULT_OPTIONS,
    SELECTOR_FORMAT,
    Selector,
    fit_selector,
    input_features,
)
from tailor.prompting.builder import PromptBudget
from tailor.store import InMemoryProfileStore, ingest_examples
from tailor.tasks import TaskSpec, get_task
from tailor.tasks.spec import AnswerMode
from tailor.types import Profile, TaskExample

SELECTOR_EXAMPLES = 200
"""How many train questions (the first, in file order) a selector trained on first use reads."""


@dataclass(frozen=True)
class SelectorConfig:
    """What a selector is trained with (the keyword arguments of :func:`train_selector`)."""

    task: str
    data: str
    out: str
    backend: str = "default"
    options: tuple[str, ...] = DEFAULT_OPTIONS
    """``none`` first, then the methods it may choose instead (each at the task's k)."""
    k: int | None = None
    limit: int | None = None
    """The first N train questions in file order (``None``: all)."""
    embedder: str = "minilm"
    batch_size: int = 8
    seed: int = 0
    input_tokens: int = 384
    context_tokens: int = 384
    answers: AnswerMode = "extract"

    def __post_init__(self) -> None:
        if not self.options or self.options[0] != BASELINE:
            raise ValueError(f"a selector's options start with {BASELINE!r}, got {list(self.options)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")
        specs = parse_methods(list(self.options))
        wholes = [str(spec) for spec in specs if spec.whole is not None or spec.recommender is not None]
        if wholes:
            raise ValueError(f"a selector chooses among prompt methods; not {', '.join(wholes)}")


def example_values(task: TaskSpec, predictions: Sequence[str], golds: Sequence[str],
                   ids: Sequence[str] | None = None) -> np.ndarray:
    """The task's main metric on each example, higher better: the metric itself (negated
    when lower is better) for generation, minus the absolute error for a rating, 1 or 0 for
    a label."""
    scored = task.score(predictions, golds, ids=ids)
    if scored.kind == "rating":
        return -np.abs(np.asarray(scored.columns["prediction"], dtype=float) -
                       np.asarray(scored.columns["gold"], dtype=float))
    if scored.kind == "classification":
        return (np.asarray(scored.columns["prediction"]) == np.asarray(scored.columns["gold"])).astype(float)
    metric = task.scoring_metrics[0]
    values = np.asarray(scored.columns[metric.name], dtype=float)
    return values if metric.higher_is_better else -values


def train_examples(task: TaskSpec, data: str | Path, limit: int | None) -> list[TaskExample]:
    """The data's train-split questions that have a gold (the first ``limit``), the only
    examples a selector learns from."""
    if not task.has_split(data, FIT_SPLIT):
        raise ValueError(f"{data} has no {FIT_SPLIT} split (for {task.name}), which a selector is trained on")
    examples = [e for e in task.load(data, FIT_SPLIT, limit=limit) if e.gold is not None]
    if not examples:
        raise ValueError(f"{data}: the {FIT_SPLIT} split holds no question with a gold output")
    return examples


def train_selector(config: SelectorConfig, *, backend: Backend | None = None, embedder: Embedder | None = None,
                   examples: Sequence[TaskExample] | None = None,
                   progress: ProgressFactory | None = _default_progress) -> Selector:
    """Fit a selector on ``config.data``'s train split and save it to ``config.out``.

    ``backend`` and ``embedder`` may be passed in (``tailor eval`` passes its own; tests an
    echo backend); ``examples``, the train questions already read. Each option's answers
    are checkpointed beside the selector (``OUT.outcomes/``), so a killed run resumes."""
    task = get_task(config.task)
    if task.answers != config.answers:
        task = replace(task, answers=config.answers)
    if task.kind == "ranking":
        raise ValueError(f"auto chooses among prompts of generation, label and rating tasks; {task.name} ranks items")
    began = time.perf_counter()
    examples = list(examples) if examples is not None else train_examples(task, config.data, config.limit)
    k = task.items_per_input(config.k)
    specs = parse_methods(list(config.options))
    if backend is None:
        backend = load_backend(config.backend, batch_size=config.batch_size)
    store = InMemoryProfileStore()
    ingest_examples(store, examples)
    if any(spec.needs("embedder") for spec in specs):
        embedder = embedder if embedder is not None else load_embedder(config.embedder)
        embed_profiles(store, embedder, dict.fromkeys(e.user_id for e in examples), document=task.document,
                       progress=progress is not None)
    context = BuildContext(task, backend.count_tokens, k=k, budget=PromptBudget(config.input_tokens,
                                                                               config.context_tokens),
                           seed=config.seed, embedder=embedder, store=store, backend=backend)
    # Label tasks answer by likelihood here: the calibration eval fits is not the selector's to redo.
    run = EvalConfig(task=task.name, data=config.data, split=FIT_SPLIT, methods=tuple(specs), backend=config.backend,
                     k=k, batch_size=config.batch_size, seed=config.seed,
                     scoring="likelihood" if task.uses_candidates else "generate", input_tokens=config.input_tokens,
                     context_tokens=config.context_tokens, embedder=config.embedder, answers=config.answers)
    outcomes_dir = _claim_outcomes(Path(config.out), config, examples, k)
    golds = [e.gold or "" for e in examples]
    ids = [e.id for e in examples]
    outcomes: dict[str, np.ndarray] = {}
    for spec in specs:
        rows = run_method(task, examples, spec.build(context), backend, store, run,
                          checkpoint=Checkpoint(outcomes_dir / f"{safe_name(str(spec))}.jsonl"), progress=progress)
        outcomes[str(spec)] = example_values(task, [rows[i]["output"] for i in ids], golds, ids)
    rankers = feature_rankers(context, [str(spec) for spec in specs])
    cache: dict[str, Profile] = {}
    features = [input_features(task, e.input, _profile_for(e, store, cache), rankers) for e in examples]
    seconds = time.perf_counter() - began
    training = {"split": FIT_SPLIT, "data": str(Path(config.data).resolve()), "example_ids": ids, "k": k,
                "backend": config.backend, "model": str(getattr(backend, "model_id", getattr(backend, "name", "?"))),
                "embedder": embedder.name if embedder is not None else None, "metric": task.scoring_metrics[0].name,
                "outcomes": {option: round(float(values.mean()), 6) for option, values in outcomes.items()},
                "seconds": round(seconds, 3), "seconds_per_example": round(seconds / len(examples), 4)}
    selector = fit_selector(features, outcomes, task=task.name, seed=config.seed, training=training)
    selector.save(config.out)
    return selector


def _claim_outcomes(out: Path, config: SelectorConfig, examples: Sequence[TaskExample], k: int) -> Path:
    """The folder of each option's checkpointed answers beside ``out``; an error when it
    holds answers made with other settings."""
    folder = out.with_name(out.name + ".outcomes")
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "run.json"
    fingerprint = {"task": config.task, "data": str(Path(config.data).resolve()), "backend": config.backend, "k": k,
                   "seed": config.seed, "embedder": config.embedder, "input_tokens": config.input_tokens,
                   "context_tokens": config.context_tokens, "answers": config.answers,
                   "examples": examples_digest(examples)}
    if marker.exists():
        saved = json.loads(marker.read_text(encoding="utf-8"))
        if saved != fingerprint:
            changed = sorted(key for key in set(saved) | set(fingerprint) if saved.get(key) != fingerprint.get(key))
            raise ValueError(f"{folder} holds answers made with other settings ({', '.join(changed)} differ); use "
                             "another --out, or delete that folder to start over")
    else:
        marker.write_text(json.dumps(fingerprint, indent=2) + "\n", encoding="utf-8")
    return folder


def examples_digest(examples: Sequence[TaskExample]) -> str:
    """A hash of the questions, golds and profiles of ``examples`` (what a cached selector is keyed by)."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps([e.id, e.user_id, e.input, e.gold, [r.to_dict() for r in e.profile.records]],
                                 ensure_ascii=False, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def selector_home() -> Path:
    """Where selectors trained on first use are cached without ``--out``: ``$TAILOR_HOME/selectors``."""
    from tailor.backends.model_files import tailor_home

    return tailor_home() / "selectors"


def attach_selectors(config: EvalConfig, task: TaskSpec, methods: Sequence[MethodSpec], *, backend: Backend,
                     embedder: Embedder | None, progress: ProgressFactory | None = None) -> tuple[MethodSpec, ...]:
    """``methods`` with every ``auto`` given a selector: ``config.selector`` when set, else
    one trained on the data's train split (never the split evaluated), cached by its train
    examples and settings."""
    waiting = [m for m in methods if any(is_auto(part) for part in m.parts) and selector_of(m) is None]
    if not waiting:
        return tuple(methods)
    path = config.selector
    if path is None:
        if config.split == FIT_SPLIT:
            raise ValueError(f"method auto learns from the {FIT_SPLIT} split, which is the split evaluated; evaluate "
                             "another split, or pass a selector trained elsewhere with --selector")
        path = str(_trained_on_first_use(config, task, backend=backend, embedder=embedder, progress=progress))
    return tuple(with_selector(m, path) if m in waiting else m for m in methods)


def _trained_on_first_use(config: EvalConfig, task: TaskSpec, *, backend: Backend, embedder: Embedder | None,
                          progress: ProgressFactory | None) -> Path:
    examples = train_examples(task, config.data, SELECTOR_EXAMPLES)
    settings = SelectorConfig(task=task.name, data=config.data, out="", backend=config.backend, k=config.k,
                              limit=SELECTOR_EXAMPLES, embedder=config.embedder, batch_size=config.batch_size,
                              seed=config.seed, input_tokens=config.input_tokens,
                              context_tokens=config.context_tokens, answers=config.answers)
    key = hashlib.sha256(json.dumps({
        "format": SELECTOR_FORMAT, "examples": examples_digest(examples), "task": task.name,
        "model": str(getattr(backend, "model_id", getattr(backend, "name", "?"))),
        **{name: getattr(settings, name) for name in ("backend", "options", "k", "limit", "embedder", "seed",
                                                         "input_tokens", "context_tokens", "answers")},
    }, sort_keys=True, default=list).encode()).hexdigest()[:16]
    folder = Path(config.out) / "selectors" if config.out else selector_home()
    path = folder / f"{safe_name(task.name)}-{key}.json"
    if not path.is_file():
        if progress is not None:
            print(f"auto: training a selector on {len(examples)} {FIT_SPLIT} questions of {config.data} -> {path}",
                  file=sys.stderr)
        train_selector(replace(settings, out=str(path)), backend=backend, embedder=embedder, examples=examples,
                       progress=progress)
    return path


__all__ = ["SELECTOR_EXAMPLES", "SelectorConfig", "attach_selectors", "example_values", "examples_digest",
           "selector_home", "train_examples", "train_selector"]
