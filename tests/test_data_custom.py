"""Bring-your-own ratings: from_dataframe and load_csv validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recgym.data import MalformedFileError, RatingScale, from_dataframe, load_csv
from tests.test_data_support import isolated_cache, write_lines  # noqa: F401


def _frame():
    return pd.DataFrame(
        {"uid": ["u2", "u1", "u2", "u3"], "iid": [10, 20, 20, 30], "stars": [1, 5, 4, 2], "ts": [3, 1, 2, 4]}
    )


def test_from_dataframe_maps_ids_and_infers_scale():
    log = from_dataframe(_frame(), user="uid", item="iid", rating="stars", timestamp="ts", name="mine")
    assert (log.name, log.n_users, log.n_items, len(log)) == ("mine", 3, 3, 4)
    assert log.user_ids.tolist() == ["u1", "u2", "u3"]
    assert log.interactions["user"].tolist() == [1, 0, 1, 2]
    assert (log.scale.low, log.scale.high, log.scale.discrete) == (1.0, 5.0, True)
    np.testing.assert_allclose(log.rewards, [-1, 1, 0.5, -0.5])
    assert log.interactions["timestamp"].tolist() == [3.0, 1.0, 2.0, 4.0]


def test_from_dataframe_datetime_timestamps_and_explicit_scale():
    df = _frame().assign(ts=pd.to_datetime(["2020-01-01", "1970-01-02", "2020-01-02", "2021-01-01"]))
    log = from_dataframe(df, "uid", "iid", "stars", timestamp="ts", scale=RatingScale(0, 10))
    assert log.interactions["timestamp"].iloc[1] == 86400.0
    assert log.scale.high == 10
    continuous = from_dataframe(df.assign(stars=[0.5, 1.5, 2.25, 3.0]), "uid", "iid", "stars")
    assert not continuous.scale.discrete and continuous.has_timestamps is False


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda df: df.drop(columns=["stars"]), r"missing column\(s\) rating='stars'"),
        (lambda df: df.drop(columns=["uid", "iid"]), r"user='uid', item='iid'"),
        (lambda df: df.iloc[:0], "empty"),
        (lambda df: df.assign(stars=[1, np.nan, 3, 4]), r"1 missing \(NaN\) rating.*row 1"),
        (lambda df: df.assign(stars=["1", "five", "3", "4"]), r"not numeric: row 1 holds 'five'"),
        (lambda df: df.assign(stars=[3, 3, 3, 3]), "cannot infer a rating scale"),
        (lambda df: df.assign(uid=["a", None, "b", "c"]), "missing user id"),
        (lambda df: df.assign(ts=["x", 1, 2, 3]), "timestamp column"),
    ],
)
def test_from_dataframe_rejects_bad_input(change, message):
    with pytest.raises(ValueError, match=message):
        from_dataframe(change(_frame()), user="uid", item="iid", rating="stars", timestamp="ts")


def test_from_dataframe_outside_given_scale():
    with pytest.raises(ValueError, match=r"1 rating\(s\) outside the scale \[1, 4\]"):
        from_dataframe(_frame(), "uid", "iid", "stars", scale=RatingScale(1, 4))


def test_from_dataframe_numeric_strings_are_accepted():
    log = from_dataframe(_frame().assign(stars=["1", "5", "4", "2"]), "uid", "iid", "stars")
    assert log.interactions["rating"].tolist() == [1.0, 5.0, 4.0, 2.0]


def test_load_csv(tmp_path):
    path = write_lines(tmp_path / "ratings.csv", ["user;item;score", "1;7;4", "2;7;2", "2;8;5"])
    log = load_csv(path, sep=";", rating="score")
    assert (log.name, len(log), log.n_users, log.n_items) == ("ratings", 3, 2, 2)
    with pytest.raises(ValueError, match=r"missing column\(s\) rating='rating'"):
        load_csv(path, sep=";")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_csv(tmp_path / "nope.csv")
    write_lines(path, ["user,item,rating", "1,7,4", "2,7,2,9,9", "2,8,5"])
    with pytest.raises(MalformedFileError) as err:
        load_csv(path)
    assert err.value.line == 3 and "ratings.csv" in str(err.value)
    path.write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_csv(path)
