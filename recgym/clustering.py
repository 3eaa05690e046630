"""recgym's one k-means: Lloyd's iterations over Euclidean or spherical (cosine) geometry.

Two things group items by their embedding: the behaviour simulators' topics for logs without
genres (:func:`simulators.behavior.embedding_topics`, spherical: items whose factors point the same
way are near-duplicates) and DEERS's and the topic rules' categories
(:func:`agents.categories.item_categories`, Euclidean: items whose factors are close are rated
alike). Both call :func:`kmeans`; it sits here, below both, as :mod:`recgym.threads` does, so the
simulators import it without reaching up into ``agents``.

The two geometries keep what each caller did before they shared this function, so their clusters,
and every result computed from them, are unchanged:

* ``"euclidean"``: k-means++ seeding (Arthur & Vassilvitskii 2007), squared distances, centres the
  means of their points; an emptied cluster takes the point farthest from its centre.
* ``"spherical"``: points scaled to unit length (zero rows stay zero), ``k`` distinct random points
  as the first centres, assignment by the largest dot product (cosine), centres the normalised sums
  of their points; an emptied cluster keeps its centre.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: the geometries :func:`kmeans` knows
METRICS = ("euclidean", "spherical")


def kmeans(points: np.ndarray, k: int, seed: int = 0, n_iter: int = 50,
           metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means in numpy, stopping early once no point changes cluster.

    :param points: ``(n, d)`` points (at least one).
    :param k: number of clusters (clipped to ``[1, n]``).
    :param seed: seed of the initial centres.
    :param n_iter: maximum number of Lloyd iterations.
    :param metric: ``"euclidean"`` or ``"spherical"`` (cosine on unit-length points); see the module docstring.
    :returns: ``(labels (n,), centroids (k, d))``; spherical centroids have unit length.
    :raises ValueError: no points, or an unknown ``metric``.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown k-means metric {metric!r}; choose one of {', '.join(METRICS)}")
    x = np.asarray(points, dtype=np.float64)
    n = x.shape[0]
    if n == 0:
        raise ValueError("kmeans needs at least one point")
    k = int(min(max(k, 1), n))
    rng = np.random.default_rng(seed)
    spherical = metric == "spherical"
    if spherical:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    sq_norms = (x * x).sum(axis=1)

    def sq_dist(centres: np.ndarray) -> np.ndarray:  # (n, k) squared distances without (n, k, d) tensors
        return np.maximum(sq_norms[:, None] - 2.0 * x @ centres.T + (centres * centres).sum(axis=1)[None], 0.0)

    centroids = x[rng.choice(n, size=k, replace=False)] if spherical else _plus_plus_centres(x, k, rng, sq_dist)

    labels = np.full(n, -1, dtype=np.int64)  # no point is in a cluster yet: the first pass never stops
    for _ in range(n_iter):
        new_labels = np.argmax(x @ centroids.T, axis=1) if spherical else sq_dist(centroids).argmin(axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, x)
        if spherical:
            lengths = np.linalg.norm(sums, axis=1, keepdims=True)
            # an emptied cluster keeps its centre
            centroids = np.where(lengths > 0, sums / np.where(lengths > 0, lengths, 1.0), centroids)
            continue
        counts = np.bincount(labels, minlength=k)
        occupied = counts > 0
        centroids[occupied] = sums[occupied] / counts[occupied, None]
        # an emptied cluster takes the point farthest from its centre, so k clusters survive
        for j in np.flatnonzero(~occupied):
            far = int(sq_dist(centroids)[np.arange(n), labels].argmax())
            centroids[j] = x[far]
            labels[far] = j
    return labels, centroids


def _plus_plus_centres(x: np.ndarray, k: int, rng: np.random.Generator,
                      sq_dist: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """k-means++ seeding: each next centre drawn with probability proportional to its squared distance D(x)²."""
    n = x.shape[0]
    centroids = np.empty((k, x.shape[1]))
    centroids[0] = x[rng.integers(n)]
    closest = sq_dist(centroids[:1])[:, 0]
    for j in range(1, k):
        total = closest.sum()
        index = rng.choice(n, p=closest / total) if total > 0 else rng.integers(n)
        centroids[j] = x[index]
        closest = np.minimum(closest, sq_dist(centroids[j : j + 1])[:, 0])
    return centroids
