"""Clustering users into personas: k-means on user vectors, k chosen by silhouette.

Plain numpy, seeded, so the same profiles give the same personas on every machine.
Vectors are L2-normalized first, which makes Euclidean k-means rank like cosine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Clustering:
    labels: np.ndarray
    """Cluster index per row of the input."""
    centroids: np.ndarray
    """One L2-normalized centroid per cluster."""
    silhouette: float
    """Mean silhouette of the clustering (-1..1; NaN when it is undefined, k=1)."""


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def kmeans(vectors: np.ndarray, k: int, *, seed: int = 0, iterations: int = 100, restarts: int = 4) -> Clustering:
    """k-means with k-means++ seeding; the best of ``restarts`` runs by inertia."""
    data = _normalize(np.asarray(vectors, dtype=np.float64))
    n = len(data)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of users ({n}), got {k}")
    generator = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(restarts):
        centroids = _plus_plus(data, k, generator)
        labels = np.zeros(n, dtype=int)
        for _ in range(iterations):
            distances = ((data[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
            new_labels = distances.argmin(1)
            converged = np.array_equal(new_labels, labels)
            labels = new_labels
            for c in range(k):
                members = data[labels == c]
                # An emptied cluster takes the point farthest from its centroid.
                centroids[c] = members.mean(0) if len(members) else data[distances.min(1).argmax()]
            if converged:
                break
        inertia = float(((data - centroids[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels.copy(), centroids.copy())
    if best is None:
        raise ValueError(f"restarts must be at least 1, got {restarts}")
    _, labels, centroids = best
    return Clustering(labels=labels, centroids=_normalize(centroids), silhouette=silhouette(data, labels))


def _plus_plus(data: np.ndarray, k: int, generator: np.random.Generator) -> np.ndarray:
    centroids = [data[generator.integers(len(data))]]
    for _ in range(1, k):
        distances = np.min([((data - c) ** 2).sum(1) for c in centroids], axis=0)
        total = distances.sum()
        index = generator.choice(len(data), p=distances / total) if total > 0 else generator.integers(len(data))
        centroids.append(data[index])
    return np.array(centroids, dtype=np.float64)


def silhouette(data: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient (Euclidean); NaN with fewer than two clusters."""
    clusters = np.unique(labels)
    if len(clusters) < 2 or len(clusters) >= len(data):
        return float("nan")
    distances = np.sqrt(np.maximum(((data[:, None, :] - data[None, :, :]) ** 2).sum(-1), 0))
    scores = np.zeros(len(data))
    for i in range(len(data)):
        same = labels == labels[i]
        if same.sum() <= 1:
            continue  # a singleton's silhouette is 0 by convention
        a = distances[i, same].sum() / (same.sum() - 1)
        b = min(distances[i, labels == c].mean() for c in clusters if c != labels[i])
        scores[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return float(scores.mean())


def choose_k(vectors: np.ndarray, *, k_max: int = 8, seed: int = 0) -> Clustering:
    """The clustering with the best silhouette over k = 2 .. min(k_max, n - 1); one
    cluster when there are fewer than three users."""
    n = len(vectors)
    if n < 3:
        return kmeans(vectors, 1, seed=seed)
    best: Clustering | None = None
    for k in range(2, min(k_max, n - 1) + 1):
        clustering = kmeans(vectors, k, seed=seed)
        if best is None or clustering.silhouette > best.silhouette:
            best = clustering
    return best if best is not None else kmeans(vectors, 1, seed=seed)
