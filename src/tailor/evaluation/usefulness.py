"""``tailor usefulness``: how much each of a user's items helps the model, measured by the model.

For a question with a gold output and each candidate item of the user's profile (the top N
of BM25, the cheap first stage), the usefulness of the item is the model's log-likelihood
of the gold output with that item alone in the prompt minus its log-likelihood with no item
(LaMP's ROPG feedback, as a likelihood rather than a sampled metric). The prompts are the
task's own (:func:`~tailor.prompting.builder.build_messages`, the layout and budgets of
``tailor eval``); the gold is scored as the one candidate of a request, so each backend that
scores candidates by likelihood answers them in its batches.

Rows are appended to a JSON-lines file as each batch of questions is done (``id``, ``item``,
``usefulness``, the item's BM25 ``rank``, both log-likelihoods); a rerun with the same
settings skips the questions already there. ``FILE.run.json`` keeps the settings and the
cost: requests and seconds per question.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tailor.backends import Backend, load_backend
from tailor.evaluation.runner import ProgressFactory, _default_progress
from tailor.methods import METHODS, BuildContext, RetrievalMethod
from tailor.prompting.builder import LAYOUTS, Layout, PromptBudget, build_messages
from tailor.tasks import get_task
from tailor.types import GenerationRequest, TaskExample


@dataclass(frozen=True)
class UsefulnessConfig:
    """What ``tailor usefulness`` measures (the keyword arguments of :func:`item_usefulness`)."""

    task: str
    data: str
    out: str
    split: str = "train"
    top_n: int = 8
    """Candidate items per question: the top N of the user's profile by BM25."""
    limit: int | None = None
    backend: str = "default"
    batch_size: int = 8
    layout: Layout | None = None
    """How the item is shown (``None``: the task's layout)."""
    input_tokens: int = 384
    context_tokens: int = 384

    def __post_init__(self) -> None:
        if self.top_n < 1:
            raise ValueError(f"top_n must be at least 1, got {self.top_n}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.layout is not None and self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")

    def fingerprint(self) -> dict[str, Any]:
        """The settings that must match for saved rows to be reused."""
        return {key: value for key, value in asdict(self).items() if key not in ("out", "limit", "batch_size")} | {
            "data": str(Path(self.data).resolve())}


@dataclass
class UsefulnessReport:
    """What a run measured: questions, items, requests and seconds (those of this call and, with ``total_``, of the file)."""

    out: str
    examples: int
    items: int
    requests: int
    seconds: float
    skipped: int
    """Questions already in the file (a resumed run), or without a gold or profile."""
    total_examples: int
    total_requests: int
    total_seconds: float

    @property
    def seconds_per_example(self) -> float:
        return self.total_seconds / self.total_examples if self.total_examples else 0.0

    @property
    def requests_per_example(self) -> float:
        return self.total_requests / self.total_examples if self.total_examples else 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"seconds_per_example": round(self.seconds_per_example, 4),
                               "requests_per_example": round(self.requests_per_example, 2)}


def item_usefulness(config: UsefulnessConfig, *, backend: Backend | None = None,
                    progress: ProgressFactory | None = _default_progress) -> UsefulnessReport:
    """Measure each candidate item's usefulness for each question of ``config.split`` and
    append the rows to ``config.out`` (``backend``: passed in by tests, else loaded)."""
    task = get_task(config.task)
    examples = task.load(config.data, config.split, limit=config.limit)
    out = Path(config.out)
    meta = _claim(out, config)
    done = _completed(out)
    todo = [e for e in examples if e.id not in done and e.gold is not None and e.profile.records]
    if backend is None:
        backend = load_backend(config.backend, batch_size=config.batch_size)
    layout = config.layout or task.layout
    budget = PromptBudget(config.input_tokens, config.context_tokens)
    ranking = METHODS.method("bm25")
    assert isinstance(ranking, RetrievalMethod)  # registered as one
    retriever = ranking.build_retriever(BuildContext(task, backend.count_tokens))
    assert retriever is not None  # bm25 ranks
    bar = progress(len(todo), f"usefulness ({task.name}, {config.split})") if progress and todo else None
    items = requests_sent = 0
    began = time.perf_counter()
    for start in range(0, len(todo), config.batch_size):
        batch = todo[start:start + config.batch_size]
        requests: list[GenerationRequest] = []
        plans: list[tuple[TaskExample, int, list[Any]]] = []
        for example in batch:
            hits = retriever.retrieve(task.query(example.input), example.profile, config.top_n)
            plans.append((example, len(requests), hits))
            for records in ([], *([hit.record] for hit in hits)):
                requests.append(GenerationRequest(
                    messages=build_messages(task, example.input, records, layout=layout,
                                            count_tokens=backend.count_tokens, budget=budget),
                    max_new_tokens=task.generation_tokens, stop=task.generation_stop,
                    candidates=(example.gold or "",), user_id=example.user_id))
        scores = _gold_scores(backend, requests, [plan[0] for plan in plans for _ in range(1 + len(plan[2]))],
                              config.batch_size)
        rows = []
        for example, first, hits in plans:
            without = scores[first]
            for hit, position in zip(hits, range(first + 1, first + 1 + len(hits))):
                rows.append({"id": example.id, "item": hit.record.id, "usefulness": round(scores[position] - without, 6),
                             "rank": hit.rank, "loglik": round(scores[position], 6),
                             "loglik_without": round(without, 6), "of": len(hits)})
        _append(out, rows)
        items += len(rows)
        requests_sent += len(requests)
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - began
    totals = {"examples": meta["cost"]["examples"] + len(todo), "requests": meta["cost"]["requests"] + requests_sent,
              "seconds": round(meta["cost"]["seconds"] + seconds, 3)}
    _write_json(_meta_path(out), meta | {"cost": totals})
    return UsefulnessReport(out=str(out), examples=len(todo), items=items, requests=requests_sent,
                            seconds=round(seconds, 3), skipped=len(examples) - len(todo),
                            total_examples=totals["examples"], total_requests=totals["requests"],
                            total_seconds=totals["seconds"])


def _gold_scores(backend: Backend, requests: Sequence[GenerationRequest], examples: Sequence[TaskExample],
                 batch_size: int) -> list[float]:
    """The backend's log-likelihood of each request's one candidate, asked ``batch_size`` requests at a time."""
    scores: list[float] = []
    for start in range(0, len(requests), batch_size):
        chunk = requests[start:start + batch_size]
        for request, result, example in zip(chunk, backend.generate(list(chunk)), examples[start:start + batch_size]):
            gold = (request.candidates or ("",))[0]
            value = (result.scores or {}).get(gold)
            if value is None or not math.isfinite(value):
                raise ValueError(f"backend {getattr(backend, 'name', '?')} gave no log-likelihood of the gold output "
                                 f"of {example.id} (it must score candidates by likelihood, as the local model "
                                 "backends do)")
            scores.append(float(value))
    return scores


def _meta_path(out: Path) -> Path:
    return out.with_name(out.name + ".run.json")


def _claim(out: Path, config: UsefulnessConfig) -> dict[str, Any]:
    """The file's settings and cost so far; an error when ``out`` holds rows made with other settings."""
    path = _meta_path(out)
    fingerprint = config.fingerprint()
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("settings") != fingerprint:
            changed = sorted(key for key in set(saved.get("settings", {})) | set(fingerprint)
                             if saved.get("settings", {}).get(key) != fingerprint.get(key))
            raise ValueError(f"{out} holds usefulness measured with other settings ({', '.join(changed)} differ); "
                             "use another --out, or delete it (and its .run.json) to start over")
        return dict(saved)
    if out.exists() and out.stat().st_size:
        raise ValueError(f"{out} exists and was not written by tailor usefulness; use another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"settings": fingerprint, "cost": {"examples": 0, "requests": 0, "seconds": 0.0}}
    _write_json(path, meta)
    return meta


def _completed(out: Path) -> set[str]:
    """The questions whose rows are all in ``out``; a last line or question cut short by a
    kill is dropped from the file (and measured again)."""
    if not out.is_file():
        return set()
    data = out.read_bytes()
    rows: list[dict[str, Any]] = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    counts: dict[str, int] = {}
    expected: dict[str, int] = {}
    for row in rows:
        counts[str(row["id"])] = counts.get(str(row["id"]), 0) + 1
        expected[str(row["id"])] = int(row["of"])
    complete = {key for key, count in counts.items() if count == expected[key]}
    kept = [row for row in rows if str(row["id"]) in complete]
    valid = b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n" for row in kept)
    if valid != data:
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(valid)
        os.replace(tmp, out)
    return complete


def _append(out: Path, rows: list[dict[str, Any]]) -> None:
    with out.open("a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_usefulness(path: str | Path) -> dict[str, dict[str, float]]:
    """A usefulness file as ``{example id: {item id: usefulness}}``."""
    table: dict[str, dict[str, float]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            table.setdefault(str(row["id"]), {})[str(row["item"])] = float(row["usefulness"])
    return table


NDCG_CUTOFFS = (1, 5, 10)


@dataclass
class RankingCheck:
    """How well each method orders the candidate items of a usefulness file, the items'
    positive usefulness as graded relevance (:func:`rank_by_usefulness`)."""

    methods: list[str]
    questions: int
    """Questions with at least one useful item (the others have no ideal order)."""
    without_useful: int
    ndcg: dict[str, dict[str, float]]
    """Method -> ``ndcg@1``, ``ndcg@5``, ``ndcg@10`` (over 8 candidates, the whole order)."""
    versus_first: dict[str, dict[str, dict[str, float]]]
    """Method -> metric -> the paired difference against the first method (``delta``, ``low``, ``high``)."""

    def table(self) -> str:
        """A markdown table: each method's NDCG, and its paired difference against the first's."""
        header = "| method | " + " | ".join(f"ndcg@{k}" for k in NDCG_CUTOFFS) + " |"
        lines = [header, "|---" * (len(NDCG_CUTOFFS) + 1) + "|"]
        for method in self.methods:
            cells = []
            for k in NDCG_CUTOFFS:
                value = self.ndcg[method][f"ndcg@{k}"]
                versus = self.versus_first.get(method, {}).get(f"ndcg@{k}")
                cells.append(f"{value:.4f}" if versus is None else
                             f"{value:.4f}, {versus['delta']:+.4f} [{versus['low']:+.4f}, {versus['high']:+.4f}]")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def rank_by_usefulness(task_name: str, data: str | Path, useful: str | Path, methods: Sequence[str], *,
                       embedder: Any = None, seed: int = 0) -> RankingCheck:
    """Each retrieval method's order of every question's candidate items in ``useful`` (a
    ``tailor usefulness`` file of ``data``, on the split it was measured on), scored by NDCG
    with each item's usefulness above 0 as its gain; paired 95% bootstrap intervals against
    the first method. This is how a retriever trained on the train split is checked on dev."""
    import numpy as np

    from tailor.methods import parse_method
    from tailor.metrics.bootstrap import paired_comparison
    from tailor.metrics.scores import PerExampleScores
    from tailor.training.retriever import read_usefulness_rows
    from tailor.types import Profile

    task = get_task(task_name)
    settings, rows = read_usefulness_rows(useful)
    split = str(settings.get("split") or "dev")
    examples = {example.id: example for example in task.load(data, split)}
    specs = [parse_method(method) for method in methods]
    if not specs:
        raise ValueError("no method to check")
    retrievers = []
    for spec in specs:
        retriever = spec.retrieval.build_retriever(BuildContext(task, len, embedder=embedder, seed=seed))
        if retriever is None:
            raise ValueError(f"method {spec} retrieves nothing, so it orders no items")
        retrievers.append(retriever)
    values: dict[str, dict[str, list[float]]] = {str(spec): {f"ndcg@{k}": [] for k in NDCG_CUTOFFS} for spec in specs}
    without = 0
    for question, items in rows.items():
        example = examples.get(question)
        if example is None:
            raise ValueError(f"{useful}: question {question!r} is not in {data}'s {split} split")
        gains = {item["item"]: max(item["usefulness"], 0.0) for item in items}
        ideal = sorted(gains.values(), reverse=True)
        if ideal[0] <= 0:
            without += 1
            continue
        records = {record.id: record for record in example.profile.records}
        candidates = Profile(example.user_id, tuple(records[item["item"]] for item in items if item["item"] in records))
        for spec, retriever in zip(specs, retrievers):
            order = [hit.record.id for hit in retriever.retrieve(task.query(example.input), candidates, len(items))]
            for k in NDCG_CUTOFFS:
                values[str(spec)][f"ndcg@{k}"].append(_ndcg([gains[item] for item in order], ideal, k))
    if not values[str(specs[0])]["ndcg@1"]:
        raise ValueError(f"{useful}: no question has an item with usefulness above 0")
    scores = {method: PerExampleScores(kind="ranking", columns={name: np.array(column) for name, column in
                                                                 metrics.items()})
              for method, metrics in values.items()}
    names = list(scores)
    return RankingCheck(
        methods=names, questions=len(values[names[0]]["ndcg@1"]), without_useful=without,
        ndcg={method: scores[method].aggregate() for method in names},
        versus_first={method: {name: {key: comparison[key] for key in ("delta", "low", "high")}
                               for name, comparison in paired_comparison(scores[names[0]], scores[method]).items()}
                      for method in names[1:]})


def _ndcg(gains: Sequence[float], ideal: Sequence[float], k: int) -> float:
    def dcg(values: Sequence[float]) -> float:
        return sum(value / math.log2(place + 2) for place, value in enumerate(values[:k]))

    best = dcg(ideal)
    return dcg(gains) / best if best > 0 else 0.0


__all__ = ["NDCG_CUTOFFS", "RankingCheck", "UsefulnessConfig", "UsefulnessReport", "item_usefulness",
           "rank_by_usefulness", "read_usefulness"]
