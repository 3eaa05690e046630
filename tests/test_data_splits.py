"""Splits: by users, temporal, random ratings and ML-100K's official u1..u5/ua/ub."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recgym.data import (
    from_dataframe,
    official_split,
    split_by_users,
    split_random_ratings,
    split_temporal,
)
from tests.test_data_support import JESTER5K_CSV, isolated_cache, staged_log  # noqa: F401


@pytest.fixture(scope="module")
def ml100k(data_dir):
    return staged_log(data_dir, "ml-100k")


KEY = ["user", "item", "rating", "timestamp"]


def _assert_partition(full, *parts):
    """The parts together are exactly the full log's ratings (as a multiset)."""
    both = pd.concat([p.interactions for p in parts])
    pd.testing.assert_frame_equal(
        both.sort_values(KEY).reset_index(drop=True), full.interactions.sort_values(KEY).reset_index(drop=True)
    )


def test_split_by_users_disjoint_seeded(ml100k):
    train, test = split_by_users(ml100k, test_fraction=0.2, seed=0)
    train_users, test_users = set(train.interactions["user"]), set(test.interactions["user"])
    assert not train_users & test_users
    assert len(test_users) == round(0.2 * 943) and len(train_users) == 943 - len(test_users)
    _assert_partition(ml100k, train, test)
    assert train.n_users == test.n_users == 943  # same id space
    again, _ = split_by_users(ml100k, test_fraction=0.2, seed=0)
    assert again.interactions.equals(train.interactions)
    other, _ = split_by_users(ml100k, test_fraction=0.2, seed=1)
    assert not other.interactions.equals(train.interactions)


def test_split_random_ratings_sizes_and_seed(ml100k):
    train, test = split_random_ratings(ml100k, test_fraction=0.2, seed=7)
    assert (len(train), len(test)) == (80_000, 20_000)
    _assert_partition(ml100k, train, test)
    same, _ = split_random_ratings(ml100k, test_fraction=0.2, seed=7)
    assert same.interactions.equals(train.interactions)
    with pytest.raises(ValueError, match="test_fraction"):
        split_random_ratings(ml100k, test_fraction=1.0)


def test_split_temporal_last_k_holds_out_latest(ml100k):
    train, test = split_temporal(ml100k, last_k=1)
    assert len(test) == 943 and len(train) == 100_000 - 943
    last_train = train.interactions.groupby("user")["timestamp"].max()
    first_test = test.interactions.groupby("user")["timestamp"].min()
    assert (first_test >= last_train.reindex(first_test.index)).all()


def test_split_temporal_ties_single_rating_users_and_fraction():
    df = pd.DataFrame(
        {
            "user": ["a", "a", "a", "a", "b", "c", "c"],
            "item": [1, 2, 3, 4, 1, 2, 3],
            "rating": [1, 2, 3, 4, 5, 3, 4],
            "timestamp": [30, 10, 30, 20, 5, 7, 7],
        }
    )
    log = from_dataframe(df, timestamp="timestamp")
    train, test = split_temporal(log, last_k=2)
    raw = lambda part: [(log.user_ids[u], log.item_ids[i]) for u, i in part.interactions[["user", "item"]].values]
    # user a: time order 2 (10), 4 (20), 1 (30), 3 (30): tie broken by original order -> 1 then 3
    # user b has one rating: stays in train; user c keeps one rating in train
    assert raw(test) == [("a", 1), ("a", 3), ("c", 3)]
    assert raw(train) == [("a", 2), ("a", 4), ("b", 1), ("c", 2)]
    train, test = split_temporal(log, last_fraction=0.5)
    assert raw(test) == [("a", 1), ("a", 3), ("c", 3)]
    _, test = split_temporal(log, last_fraction=0.25)
    assert raw(test) == [("a", 3), ("c", 3)]
    with pytest.raises(ValueError, match="exactly one"):
        split_temporal(log)
    with pytest.raises(ValueError, match="exactly one"):
        split_temporal(log, last_k=1, last_fraction=0.2)


def test_split_temporal_needs_timestamps(data_dir):
    jester = staged_log(data_dir, "jester", path=data_dir / JESTER5K_CSV)
    with pytest.raises(ValueError, match="no timestamps"):
        split_temporal(jester, last_k=1)


@pytest.mark.parametrize("name", ["u1", "u2", "u3", "u4", "u5"])
def test_official_five_fold_splits(ml100k, name):
    train, test = official_split(ml100k, name)
    assert (len(train), len(test)) == (80_000, 20_000)
    assert np.array_equal(train.user_ids, ml100k.user_ids) and np.array_equal(train.item_ids, ml100k.item_ids)
    _assert_partition(ml100k, train, test)


@pytest.mark.parametrize("name", ["ua", "ub"])
def test_official_ten_per_user_splits(ml100k, name):
    train, test = official_split(ml100k, name)
    assert (len(train), len(test)) == (90_570, 9_430)
    assert (test.interactions.groupby("user").size() == 10).all() and test.interactions["user"].nunique() == 943


def test_official_split_from_data_dir_and_bad_name(data_dir, ml100k):
    train, test = official_split(data_dir, "u1")
    assert len(train) + len(test) == 100_000
    with pytest.raises(ValueError, match="u1, u2, u3, u4, u5, ua, ub"):
        official_split(ml100k, "u6")
    jester = staged_log(data_dir, "jester", path=data_dir / JESTER5K_CSV)
    with pytest.raises(ValueError, match="ml-100k only"):
        official_split(jester, "u1")
