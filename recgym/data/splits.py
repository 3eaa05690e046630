"""Train/test splits of a :class:`RatingLog`, all in the log's own id space.

* :func:`split_by_users`: hold out whole users (DRR's 80/20 protocol);
* :func:`split_temporal`: per user, hold out the last ratings in time;
* :func:`split_random_ratings`: hold out random ratings (PMF-style);
* :func:`official_split`: ML-100K's published ``u1..u5`` / ``ua`` / ``ub`` splits.

Train and test keep the original row order and share ``user_ids`` /
``item_ids`` with the full log, so models fitted on train index test directly.
"""

from __future__ import annotations

import os

import numpy as np

from recgym.data.errors import MalformedFileError
from recgym.data.rating_log import RatingLog

OFFICIAL_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")


def _by_mask(log: RatingLog, test_mask: np.ndarray) -> tuple[RatingLog, RatingLog]:
    df = log.interactions
    return (
        log.with_interactions(df[~test_mask], name=f"{log.name}:train"),
        log.with_interactions(df[test_mask], name=f"{log.name}:test"),
    )


def split_by_users(log: RatingLog, test_fraction: float = 0.2, seed: int = 0) -> tuple[RatingLog, RatingLog]:
    """Hold out a random ``test_fraction`` of the users with all their ratings.

    :param log: the log.
    :param test_fraction: share of (rating) users in the test part, rounded, at least one.
    :param seed: random seed; the same seed gives the same split.
    :returns: ``(train, test)``.
    """
    _check_fraction(test_fraction)
    users = np.unique(log.interactions["user"].to_numpy())
    if len(users) < 2:
        raise ValueError(f"split_by_users needs at least 2 users with ratings, {log.name!r} has {len(users)}")
    n_test = min(len(users) - 1, max(1, int(round(test_fraction * len(users)))))
    test_users = np.random.default_rng(seed).permutation(users)[:n_test]
    return _by_mask(log, np.isin(log.interactions["user"].to_numpy(), test_users))


def split_random_ratings(log: RatingLog, test_fraction: float = 0.2, seed: int = 0) -> tuple[RatingLog, RatingLog]:
    """Hold out a random ``test_fraction`` of the ratings (users may appear in both parts).

    :param log: the log.
    :param test_fraction: share of ratings in the test part (rounded).
    :param seed: random seed; the same seed gives the same split.
    :returns: ``(train, test)``.
    """
    _check_fraction(test_fraction)
    n = len(log)
    n_test = int(round(test_fraction * n))
    if n_test == 0 or n_test == n:
        raise ValueError(f"split_random_ratings: {n} ratings are too few for test_fraction={test_fraction}")
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[:n_test]] = True
    return _by_mask(log, mask)


def split_temporal(
    log: RatingLog, last_k: int | None = None, last_fraction: float | None = None
) -> tuple[RatingLog, RatingLog]:
    """Per user, hold out the latest ratings: the last ``last_k`` or the last ``last_fraction``.

    Ratings are ordered by timestamp, equal timestamps by their original order.
    Every user keeps at least one rating in train, so users with a single
    rating stay entirely in train. With ``last_fraction`` a user with ``n``
    ratings holds out ``floor(last_fraction * n)`` of them, at least one.

    :param log: a log with timestamps.
    :param last_k: number of ratings per user to hold out (>= 1).
    :param last_fraction: share of each user's ratings to hold out, in (0, 1).
    :returns: ``(train, test)``.
    """
    if (last_k is None) == (last_fraction is None):
        raise ValueError("split_temporal needs exactly one of last_k or last_fraction")
    if last_k is not None and (int(last_k) != last_k or last_k < 1):
        raise ValueError(f"last_k must be a positive integer, got {last_k}")
    if last_fraction is not None:
        _check_fraction(last_fraction)
    df = log.interactions
    times = df["timestamp"].to_numpy()
    if np.isnan(times).any():
        what = "has no timestamps" if np.isnan(times).all() else "has ratings without timestamps"
        raise ValueError(
            f"split_temporal: {log.name!r} {what}; use split_by_users or split_random_ratings instead"
        )
    users = df["user"].to_numpy()
    order = np.lexsort((np.arange(len(df)), times, users))  # by user, time, then original row
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    sizes = np.diff(np.r_[starts, len(df)])
    if last_k is not None:
        hold = np.full(len(sizes), int(last_k))
    else:
        # tiny epsilon: 0.2 * 10 must give 2, not 1 through rounding error
        hold = np.maximum(1, np.floor(last_fraction * sizes + 1e-9).astype(np.int64))
    hold = np.minimum(hold, sizes - 1)
    rank = np.arange(len(df)) - np.repeat(starts, sizes)  # position within the user's history
    test_sorted = rank >= np.repeat(sizes - hold, sizes)
    mask = np.zeros(len(df), dtype=bool)
    mask[order] = test_sorted
    return _by_mask(log, mask)


def official_split(
    log_or_data_dir: RatingLog | str | os.PathLike[str] | None,
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    verify: bool = True,
) -> tuple[RatingLog, RatingLog]:
    """One of ML-100K's official splits (``u1``..``u5``: 5-fold 80/20; ``ua``/``ub``: 10 test ratings per user).

    :param log_or_data_dir: the full ml-100k log (its source directory is
        taken from ``log.meta``) or a data directory (the log is loaded from it);
        None searches ``RECGYM_DATA_DIR`` and the cache.
    :param name: ``"u1"`` .. ``"u5"``, ``"ua"`` or ``"ub"``.
    :param data_dir: where the ``.base``/``.test`` files are, if not next to the log's files.
    :param verify: verify the files' registered checksums.
    :returns: ``(train, test)`` in the id space of the full ml-100k log.
    """
    from recgym.data.fetch import resolve
    from recgym.data.loading import load
    from recgym.data.movielens import read_ratings
    from recgym.data.registry import get_info

    if name not in OFFICIAL_SPLITS:
        raise ValueError(f"unknown official split {name!r}; ml-100k has {', '.join(OFFICIAL_SPLITS)}")
    if isinstance(log_or_data_dir, RatingLog):
        log = log_or_data_dir
        if not log.name.startswith("ml-100k"):
            raise ValueError(f"official splits exist for ml-100k only, got a {log.name!r} log")
        search = data_dir if data_dir is not None else log.meta.get("source_dir")
    else:
        search = data_dir if data_dir is not None else log_or_data_dir
        log = load("ml-100k", data_dir=search, verify=verify)
    info = get_info("ml-100k")
    names = (f"{name}.base", f"{name}.test")
    resolved = resolve(info, names, data_dir=search, verify_files=verify)
    parts = []
    for file_name in names:
        path = resolved.files[file_name]
        raw = read_ratings(path, "\t")
        user_idx = np.searchsorted(log.user_ids, raw["user"].to_numpy())
        item_idx = np.searchsorted(log.item_ids, raw["item"].to_numpy())
        for column, idx, ids in (("user", user_idx, log.user_ids), ("item", item_idx, log.item_ids)):
            clipped = np.minimum(idx, len(ids) - 1)
            unknown = ids[clipped] != raw[column].to_numpy()
            if unknown.any():
                i = int(np.flatnonzero(unknown)[0])
                raise MalformedFileError(path, int(raw.index[i]) + 1,
                                         f"{column} {raw[column].iloc[i]} is not in the ml-100k log")
        frame = raw.assign(user=user_idx.astype(np.int64), item=item_idx.astype(np.int64),
                           rating=raw["rating"].astype(np.float64), timestamp=raw["timestamp"].astype(np.float64))
        parts.append(log.with_interactions(frame[["user", "item", "rating", "timestamp"]],
                                           name=f"{log.name}:{file_name}"))
    return parts[0], parts[1]
