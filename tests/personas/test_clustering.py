"""k-means and silhouette, against hand-made data and a direct silhouette computation."""

from __future__ import annotations

import numpy as np
import pytest

from tailor.personas.clustering import choose_k, kmeans, silhouette


def three_groups(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    centers = np.eye(6)[:3] * 6
    data = np.vstack([c + generator.normal(scale=0.5, size=(8, 6)) for c in centers])
    return data, np.repeat(np.arange(3), 8)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return all((a[i] == a[j]) == (b[i] == b[j]) for i in range(len(a)) for j in range(len(a)))


def test_kmeans_recovers_well_separated_groups() -> None:
    data, truth = three_groups()
    result = kmeans(data, 3, seed=1)
    assert same_partition(result.labels, truth)
    assert np.allclose(np.linalg.norm(result.centroids, axis=1), 1.0)


def test_kmeans_is_deterministic_for_a_seed() -> None:
    data, _ = three_groups(seed=3)
    assert np.array_equal(kmeans(data, 4, seed=7).labels, kmeans(data, 4, seed=7).labels)


def test_choose_k_picks_the_true_number_of_groups() -> None:
    data, truth = three_groups(seed=2)
    result = choose_k(data, k_max=6)
    assert len(result.centroids) == 3
    assert same_partition(result.labels, truth)
    assert result.silhouette > 0.5


def test_silhouette_matches_a_direct_computation() -> None:
    data = np.array([[0.0, 0.0], [0.0, 1.0], [4.0, 0.0], [4.0, 1.0], [4.0, 2.0]])
    labels = np.array([0, 0, 1, 1, 1])
    # Point 0: a = 1 (to point 1); b = mean(4, sqrt(17), sqrt(20)); s = (b - a) / b.
    expected = []
    for i in range(5):
        same = [j for j in range(5) if labels[j] == labels[i] and j != i]
        other = [j for j in range(5) if labels[j] != labels[i]]
        a = np.mean([np.linalg.norm(data[i] - data[j]) for j in same])
        b = np.mean([np.linalg.norm(data[i] - data[j]) for j in other])
        expected.append((b - a) / max(a, b))
    assert silhouette(data, labels) == pytest.approx(np.mean(expected))


def test_small_inputs_and_bad_k() -> None:
    data = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert len(choose_k(data).centroids) == 1
    with pytest.raises(ValueError, match="k must be between 1 and the number of users"):
        kmeans(data, 3)
