"""Memory measured as memory products are: LoCoMo's conversations, each one memory, every
question a search of it (``tailor eval-memory``).

Retrieval is scored by evidence recall@k: the share of a question's annotated evidence
turns among the ``k`` turns found, averaged over questions that have evidence. Category 5
(adversarial: the conversation holds no answer) is scored apart, under ``adversarial_``
keys. Each search is timed alone (query embedding included) and reported as p50 and p95
milliseconds. With a backend, the model answers each question from the ``k`` turns found
and the answer is scored by LoCoMo's token F1 (:mod:`tailor.metrics.locomo`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tailor.backends.contract import Backend
from tailor.data.locomo import Conversation, Question, Turn
from tailor.embeddings.embedder import Embedder
from tailor.memory.episodes import Episode, EpisodeMethod, EpisodeSearch, human_date
from tailor.metrics.locomo import locomo_f1

RECALL_DEPTHS = (1, 5, 10)
ANSWER_INSTRUCTION = ("Answer the question in a few words, using only the conversation excerpts. "
                      "If they do not say, answer: no information available.")
ANSWER_TOKENS = 32


@dataclass(frozen=True)
class MemoryEvalConfig:
    """What ``tailor eval-memory`` runs: the methods (:class:`EpisodeMethod` grammar), the
    ``k`` turns shown to the backend, and the backend (``None``: retrieval only)."""

    methods: tuple[str, ...] = ("memory",)
    k: int = 10
    backend: str | None = None
    embedder: str = "minilm"
    limit_questions: int | None = None


@dataclass
class _Scores:
    recall: dict[int, list[float]] = field(default_factory=lambda: {depth: [] for depth in RECALL_DEPTHS})
    adversarial: dict[int, list[float]] = field(default_factory=lambda: {depth: [] for depth in RECALL_DEPTHS})
    by_category: dict[int, list[float]] = field(default_factory=dict)
    milliseconds: list[float] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)
    adversarial_f1: list[float] = field(default_factory=list)


def turn_episodes(turns: Sequence[Turn]) -> list[Episode]:
    return [Episode(turn.id, turn.speaker, turn.text, session=str(turn.session), date=turn.date,
                    caption=turn.caption) for turn in turns]


def evidence_recall(found: Sequence[str], evidence: Sequence[str], k: int) -> float:
    """The share of ``evidence`` among the first ``k`` of ``found``."""
    if not evidence:
        raise ValueError("evidence recall needs at least one evidence id")
    top = set(found[:k])
    return sum(1 for item in set(evidence) if item in top) / len(set(evidence))


def answer_messages(question: str, turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The chat messages asking a model to answer ``question`` from ``turns``."""
    lines = []
    for turn in turns:
        when = f"On {human_date(turn.date)}, " if turn.date else ""
        image = f" [shared an image: {turn.caption}]" if turn.caption else ""
        lines.append(f"{when}{turn.speaker} said: {turn.text}{image}")
    excerpts = "\n".join(lines)
    return [{"role": "system", "content": ANSWER_INSTRUCTION},
            {"role": "user", "content": f"Conversation excerpts:\n{excerpts}\n\nQuestion: {question}\nAnswer:"}]


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate_method(conversations: Sequence[Conversation], method: EpisodeMethod, *, k: int = 10,
                    embedder: Embedder | None = None, backend: Backend | None = None,
                    limit_questions: int | None = None) -> dict[str, Any]:
    """The metrics of one memory method over ``conversations``."""
    search = EpisodeSearch(method, embedder)
    scores = _Scores()
    depth = max(max(RECALL_DEPTHS), k)
    build_ms: list[float] = []
    for conversation in conversations:
        by_id = {turn.id: turn for turn in conversation.turns}
        started = time.perf_counter()
        index = search.index(turn_episodes(conversation.turns))  # builds it (and embeds the turns): timed apart
        build_ms.append((time.perf_counter() - started) * 1000.0)
        questions = list(conversation.questions)[:limit_questions]
        pending: list[tuple[Question, list[str]]] = []
        for question in questions:
            started = time.perf_counter()
            found = index.search(question.question, depth)
            scores.milliseconds.append((time.perf_counter() - started) * 1000.0)
            pending.append((question, found))
            if question.evidence:
                target = scores.adversarial if question.adversarial else scores.recall
                for cut in RECALL_DEPTHS:
                    target[cut].append(evidence_recall(found, question.evidence, cut))
                if not question.adversarial:
                    scores.by_category.setdefault(question.category, []).append(
                        evidence_recall(found, question.evidence, 5))
        if backend is not None:
            _answer(backend, pending, by_id, k, scores)
    metrics: dict[str, Any] = {f"recall@{cut}": _mean(scores.recall[cut]) for cut in RECALL_DEPTHS}
    metrics.update({f"adversarial_recall@{cut}": _mean(scores.adversarial[cut]) for cut in RECALL_DEPTHS})
    metrics.update({f"recall@5_category_{category}": _mean(values)
                    for category, values in sorted(scores.by_category.items())})
    metrics.update({"ms_p50": _percentile(scores.milliseconds, 50), "ms_p95": _percentile(scores.milliseconds, 95),
                    "index_ms_per_conversation": _mean(build_ms),
                    "questions": len(scores.recall[1]), "adversarial_questions": len(scores.adversarial[1])})
    if backend is not None:
        metrics.update({"f1": _mean(scores.f1), "adversarial_f1": _mean(scores.adversarial_f1), "k": k})
    return metrics


def _answer(backend: Backend, pending: Sequence[tuple[Question, list[str]]], by_id: dict[str, Turn], k: int,
            scores: _Scores) -> None:
    from tailor.types import GenerationRequest

    requests = [GenerationRequest(tuple(answer_messages(question.question, [by_id[i] for i in found[:k]])),
                                  max_new_tokens=ANSWER_TOKENS, stop=("\n",))
                for question, found in pending]
    for start in range(0, len(requests), 8):
        results = backend.generate(requests[start:start + 8])
        for (question, _), result in zip(pending[start:start + 8], results):
            score = locomo_f1(result.text.strip(), question.answer, question.category)
            (scores.adversarial_f1 if question.adversarial else scores.f1).append(score)


def evaluate_memory(conversations: Sequence[Conversation], config: MemoryEvalConfig,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``{"n": questions, "results": [{"method", "metrics"}]}`` for every method of ``config``."""
    methods = [EpisodeMethod.parse(name) for name in config.methods]
    embedder = None
    if any(method.needs_embedder for method in methods):
        from tailor.embeddings import load_embedder

        embedder = load_embedder(config.embedder)
    backend = None
    if config.backend is not None:
        from tailor.backends import load_backend

        backend = load_backend(config.backend)
    results = []
    for name, method in zip(config.methods, methods):
        if progress is not None:
            progress(f"{name} ({method})")
        metrics = evaluate_method(conversations, method, k=config.k, embedder=embedder, backend=backend,
                                  limit_questions=config.limit_questions)
        results.append({"method": name if name == str(method) else f"{name} ({method})", "metrics": metrics})
    n = sum(len(conversation.questions[:config.limit_questions]) for conversation in conversations)
    return {"n": n, "conversations": len(conversations),
            "embedder": config.embedder if embedder is not None else None, "results": results}


__all__ = ["ANSWER_INSTRUCTION", "MemoryEvalConfig", "answer_messages", "evaluate_memory", "evaluate_method",
           "evidence_recall", "turn_episodes"]
