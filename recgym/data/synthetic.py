"""A seeded synthetic rating log with latent structure, for fast tests and demos.

Users and items get Gaussian latent factors; each item belongs to one to three
genres whose centroid shifts its factors, so genres carry signal. A user rates
``density * n_items`` items on average, chosen with a popularity skew; the
rating is the rounded, clipped ``3 + scale * <u, v> + noise`` on a 1..5 scale.
Timestamps increase within each user.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recgym.data.rating_log import STAR_SCALE, RatingLog, build_rating_log

SYNTHETIC_GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Animation")


def make_synthetic_log(
    n_users: int = 200,
    n_items: int = 300,
    density: float = 0.1,
    n_factors: int = 8,
    noise: float = 0.5,
    seed: int = 0,
) -> RatingLog:
    """Generate a reproducible rating log.

    :param n_users: number of users (>= 2).
    :param n_items: number of items (>= 2).
    :param density: expected fraction of the user x item matrix that is rated, in (0, 1].
    :param n_factors: dimension of the latent factors that generate ratings.
    :param noise: standard deviation of the Gaussian rating noise (before rounding).
    :param seed: random seed; the same seed gives the same log.
    """
    if n_users < 2 or n_items < 2:
        raise ValueError(f"synthetic log needs n_users >= 2 and n_items >= 2, got {n_users}, {n_items}")
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    if n_factors < 1 or noise < 0:
        raise ValueError(f"n_factors must be >= 1 and noise >= 0, got {n_factors}, {noise}")
    rng = np.random.default_rng(seed)
    n_genres = len(SYNTHETIC_GENRES)
    genre_centroids = rng.normal(0.0, 1.0, size=(n_genres, n_factors))
    genre_flags = np.zeros((n_items, n_genres), dtype=np.int8)
    primary = rng.integers(0, n_genres, size=n_items)
    genre_flags[np.arange(n_items), primary] = 1
    extra = rng.random((n_items, n_genres)) < 0.1
    genre_flags |= extra.astype(np.int8)
    item_factors = (genre_flags @ genre_centroids) / genre_flags.sum(1, keepdims=True)
    item_factors += rng.normal(0.0, 0.5, size=(n_items, n_factors))
    user_factors = rng.normal(0.0, 1.0, size=(n_users, n_factors))
    item_bias = rng.normal(0.0, 0.4, size=n_items)

    popularity = rng.zipf(1.6, size=n_items).astype(np.float64)
    popularity = np.minimum(popularity, 50.0)
    popularity /= popularity.sum()
    n_per_user = np.clip(rng.poisson(density * n_items, size=n_users), 2, n_items)

    rows = []
    start = 8.8e8  # late 1997, like MovieLens-100K
    for u in range(n_users):
        items = rng.choice(n_items, size=n_per_user[u], replace=False, p=popularity)
        affinity = item_factors[items] @ user_factors[u] / np.sqrt(n_factors)
        raw = 3.0 + 1.2 * affinity + item_bias[items] + rng.normal(0.0, noise, size=len(items))
        ratings = np.clip(np.rint(raw), 1, 5)
        times = start + np.sort(rng.integers(0, 3600 * 24 * 200, size=len(items))).astype(np.float64)
        rows.append(pd.DataFrame({"user": u, "item": items, "rating": ratings, "timestamp": times}))
    raw = pd.concat(rows, ignore_index=True)
    features = pd.DataFrame(
        {"title": [f"Item {i}" for i in range(n_items)]}, index=pd.RangeIndex(n_items)
    )
    for g, name in enumerate(SYNTHETIC_GENRES):
        features[f"genre:{name}"] = genre_flags[:, g]
    return build_rating_log(
        "synthetic",
        raw,
        STAR_SCALE,
        item_features=features,
        all_user_ids=np.arange(n_users),
        all_item_ids=np.arange(n_items),
    )
