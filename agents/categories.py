"""Item categories for DEERS's competitor items: genres where a dataset has them, else k-means clusters.

DEERS (Zhao et al., KDD 2018, Sec. 2.3) picks a competitor item ``a^C`` "in the
same category" as the recommended item ``a``. MovieLens (and the synthetic log)
carry genre flags; Jester and Yahoo! R3 carry none, so their items are grouped
by Euclidean k-means (:func:`recgym.clustering.kmeans`: Lloyd 1982, k-means++
seeding of Arthur & Vassilvitskii 2007) on the PMF item factors: items whose factors are close are rated alike, the
closest thing to a category that the data offer.
"""

from __future__ import annotations

import numpy as np

from recgym.clustering import kmeans
from recgym.data.rating_log import RatingLog

#: Number of k-means clusters when a dataset has no genres: about as many as
#: MovieLens's 19 genres, fewer for small catalogues (about 20 items per cluster).
DEFAULT_N_CLUSTERS = 20


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
    labels, _ = kmeans(item_factors, k, seed=seed, metric="euclidean")
    flags = np.zeros((n_items, int(labels.max()) + 1), dtype=bool)
    flags[np.arange(n_items), labels] = True
    return flags, "kmeans"
