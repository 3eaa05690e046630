"""Item categories for DEERS's competitor items: genres where a dataset has them, else k-means clusters.

DEERS (Zhao et al., KDD 2018, Sec. 2.3) picks a competitor item ``a^C`` "in the
same category" as the recommended item ``a``. MovieLens (and the synthetic log)
carry genre flags; Jester and Yahoo! R3 carry none, so their items are grouped
by k-means (Lloyd 1982, k-means++ seeding of Arthur & Vassilvitskii 2007) on
the PMF item factors: items whose factors are close are rated alike, the
closest thing to a category that the data offer.
"""

from __future__ import annotations

import numpy as np

from recgym.data.rating_log import RatingLog

#: Number of k-means clusters when a dataset has no genres: about as many as
#: MovieLens's 19 genres, fewer for small catalogues (about 20 items per cluster).
DEFAULT_N_CLUSTERS = 20


def kmeans(points: np.ndarray, k: int, seed: int = 0, n_iter: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding, in numpy.

    :param points: ``(n, d)`` points.
    :param k: number of clusters (clipped to ``n``).
    :param seed: seed of the k-means++ draws.
    :param n_iter: maximum number of Lloyd iterations (stops early when assignments settle).
    :returns: ``(labels (n,), centroids (k, d))``.
    """
    x = np.asarray(points, dtype=np.float64)
    n = x.shape[0]
    if n == 0:
        raise ValueError("kmeans needs at least one point")
    k = int(min(max(k, 1), n))
    rng = np.random.default_rng(seed)
    sq_norms = (x * x).sum(axis=1)

    def sq_dist(centroids: np.ndarray) -> np.ndarray:  # (n, k) squared distances without (n, k, d) tensors
        return np.maximum(sq_norms[:, None] - 2.0 * x @ centroids.T + (centroids * centroids).sum(axis=1)[None], 0.0)

    # k-means++: each next centre drawn with probability proportional to D(x)^2
    centroids = np.empty((k, x.shape[1]))
    centroids[0] = x[rng.integers(n)]
    closest = sq_dist(centroids[:1])[:, 0]
    for j in range(1, k):
        total = closest.sum()
        index = rng.choice(n, p=closest / total) if total > 0 else rng.integers(n)
        centroids[j] = x[index]
        closest = np.minimum(closest, sq_dist(centroids[j : j + 1])[:, 0])

    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(n_iter):
        new_labels = sq_dist(centroids).argmin(axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, x)
        occupied = counts > 0
        centroids[occupied] = sums[occupied] / counts[occupied, None]
        # an empty cluster takes the point farthest from its centre, so k clusters survive
        for j in np.flatnonzero(~occupied):
            far = int(sq_dist(centroids)[np.arange(n), labels].argmax())
            centroids[j] = x[far]
            labels[far] = j
    return labels, centroids


def item_categories(
    log: RatingLog, item_factors: np.ndarray, n_clusters: int | None = None, seed: int = 0
) -> tuple[np.ndarray, str]:
    """``(n_items, n_categories)`` boolean category flags of every item, and their source.

    Genres (``log.item_genres()``) when the log has them: an item may have
    several; items without any genre get an extra "none" category of their own.
    Otherwise one k-means cluster per item over ``item_factors``.

    :param log: the rating log.
    :param item_factors: ``(n_items, d)`` PMF item factors (used without genres).
    :param n_clusters: k for k-means (default ``min(20, max(2, n_items // 20))``).
    :param seed: k-means seed.
    :returns: ``(flags, "genres" | "kmeans")``.
    """
    genres = log.item_genres()
    if genres is not None and genres.shape[1] > 0 and (genres > 0).any():
        flags = genres > 0
        none = ~flags.any(axis=1)
        if none.any():
            flags = np.concatenate([flags, none[:, None]], axis=1)
        return flags, "genres"
    n_items = item_factors.shape[0]
    k = n_clusters if n_clusters is not None else min(DEFAULT_N_CLUSTERS, max(2, n_items // 20))
    labels, _ = kmeans(item_factors, k, seed=seed)
    flags = np.zeros((n_items, int(labels.max()) + 1), dtype=bool)
    flags[np.arange(n_items), labels] = True
    return flags, "kmeans"
