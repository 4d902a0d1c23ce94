"""Percentile-bootstrap confidence intervals and paired comparisons over per-example scores."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tailor.metrics.scores import PerExampleScores


def _check_arguments(n_examples: int, n_resamples: int, level: float) -> None:
    if n_examples == 0:
        raise ValueError("no examples to bootstrap")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")


def _resamples(n_examples: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    # One resample at a time: a (n_resamples, n_examples) matrix would need gigabytes for
    # large test sets, and drawing row by row gives the same sequence for a seed.
    generator = np.random.default_rng(seed)
    for _ in range(n_resamples):
        yield generator.integers(0, n_examples, size=n_examples)


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_ci(
    scores: PerExampleScores, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap interval at ``level`` for every metric of ``scores``.

    Examples are resampled with replacement ``n_resamples`` times (deterministically for a
    ``seed``) and the metrics re-aggregated on each resample. Returns metric name -> (low, high).
    """
    _check_arguments(len(scores), n_resamples, level)
    names = scores.names()
    samples = np.empty((n_resamples, len(names)))
    for row, indices in enumerate(_resamples(len(scores), n_resamples, seed)):
        metrics = scores.aggregate(indices)
        samples[row] = [metrics[name] for name in names]
    return {name: _interval(samples[:, column], level) for column, name in enumerate(names)}


def _check_paired(baseline: PerExampleScores, method: PerExampleScores) -> None:
    if len(baseline) != len(method):
        raise ValueError(
            f"paired comparison needs the same examples in both: baseline has {len(baseline)}, method {len(method)}"
        )
    if baseline.kind != method.kind or baseline.names() != method.names():
        raise ValueError(
            f"paired comparison needs the same metrics: baseline has {baseline.kind} {baseline.names()}, "
            f"method {method.kind} {method.names()}"
        )
    if baseline.n_labels != method.n_labels:
        raise ValueError(f"label lists differ in size: baseline {baseline.n_labels}, method {method.n_labels}")
    # Golds that differ mean the two runs were scored on different (or reordered) examples,
    # which would make every paired number meaningless.
    if "gold" in baseline.columns and not np.array_equal(baseline.columns["gold"], method.columns["gold"]):
        raise ValueError("baseline and method have different golds; pass scores of the same examples in the same order")


def paired_comparison(
    baseline: PerExampleScores,
    method: PerExampleScores,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, float]]:
    """Paired bootstrap of ``method`` against ``baseline`` on the same examples.

    Each resample applies the same example indices to both. Per metric, returns ``delta``
    (method minus baseline on all examples), ``low`` and ``high`` (the percentile interval of
    the resampled deltas at ``level``) and ``p_better``: the fraction of resamples in which
    the method is strictly better (a higher value, or a lower one for a metric whose lower is
    better, such as ``mae``); ties do not count as better, so identical inputs give 0.
    """
    _check_paired(baseline, method)
    _check_arguments(len(baseline), n_resamples, level)
    names = baseline.names()
    full_baseline, full_method = baseline.aggregate(), method.aggregate()
    deltas = np.empty((n_resamples, len(names)))
    for row, indices in enumerate(_resamples(len(baseline), n_resamples, seed)):
        baseline_metrics, method_metrics = baseline.aggregate(indices), method.aggregate(indices)
        deltas[row] = [method_metrics[name] - baseline_metrics[name] for name in names]
    comparison: dict[str, dict[str, float]] = {}
    for column, name in enumerate(names):
        better = deltas[:, column] < 0 if baseline.lower_is_better(name) else deltas[:, column] > 0
        low, high = _interval(deltas[:, column], level)
        comparison[name] = {
            "delta": full_method[name] - full_baseline[name],
            "low": low,
            "high": high,
            "p_better": float(better.mean()),
        }
    return comparison
