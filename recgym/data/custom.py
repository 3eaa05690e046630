"""Bring your own ratings: :func:`from_dataframe` and :func:`load_csv`.

Input is validated before it becomes a :class:`RatingLog`: missing columns are
named, empty, missing or non-numeric ratings and missing ids are refused with
the offending row, and the rating scale is inferred from the observed minimum
and maximum when not given.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recgym.data.errors import MalformedFileError
from recgym.data.rating_log import RatingLog, RatingScale, build_rating_log

log = logging.getLogger(__name__)


def infer_scale(ratings: pd.Series | np.ndarray) -> RatingScale:
    """The scale ``[min, max]`` of the ratings, discrete if they are all integers.

    :raises ValueError: when all ratings are equal (no range to normalise by).
    """
    values = np.asarray(ratings, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if not high > low:
        raise ValueError(
            f"cannot infer a rating scale: every rating equals {low:g}; pass scale=RatingScale(low, high)"
        )
    return RatingScale(low, high, discrete=bool(np.all(values == np.round(values))))


def _timestamps(column: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        # Unix seconds; NaT stays NaN
        stamps = column.dt.tz_convert("UTC").dt.tz_localize(None) if column.dt.tz is not None else column
        seconds = (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
        return seconds.astype(np.float64)
    converted = pd.to_numeric(column, errors="coerce")
    bad = converted.isna() & column.notna()
    if bad.any():
        row = bad.idxmax()
        raise ValueError(f"timestamp column: row {row!r} holds {column.loc[row]!r}, not a number or datetime")
    return converted.astype(np.float64)


def from_dataframe(
    df: pd.DataFrame,
    user: str = "user",
    item: str = "item",
    rating: str = "rating",
    timestamp: str | None = None,
    scale: RatingScale | None = None,
    name: str = "custom",
    item_features: pd.DataFrame | None = None,
    user_features: pd.DataFrame | None = None,
) -> RatingLog:
    """A :class:`RatingLog` from a DataFrame of explicit ratings.

    Users and items may have any (sortable) ids; they are mapped to contiguous
    ids and kept in ``log.user_ids`` / ``log.item_ids``.

    :param df: one row per rating.
    :param user: column of user ids.
    :param item: column of item ids.
    :param rating: column of numeric ratings.
    :param timestamp: optional column of Unix seconds or datetimes.
    :param scale: the rating scale; inferred from the min and max rating if None.
    :param name: name of the log.
    :param item_features: optional features indexed by raw item id.
    :param user_features: optional features indexed by raw user id.
    :raises ValueError: empty frame, missing columns, missing ids, missing or
        non-numeric ratings, or ratings outside ``scale``.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"from_dataframe expects a pandas DataFrame, got {type(df).__name__}")
    wanted = {"user": user, "item": item, "rating": rating}
    if timestamp is not None:
        wanted["timestamp"] = timestamp
    missing = [f"{role}={col!r}" for role, col in wanted.items() if col not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}; the frame has {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{name}: the DataFrame is empty, there are no ratings")

    for role in ("user", "item"):
        empty = df[wanted[role]].isna()
        if empty.any():
            raise ValueError(f"{name}: {int(empty.sum())} missing {role} id(s) in column {wanted[role]!r}, "
                             f"first at row {empty.idxmax()!r}")
    values = df[rating]
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        converted = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_bool_dtype(values) else None
        if converted is None or (converted.isna() & values.notna()).any():
            bad = values.index[0] if converted is None else (converted.isna() & values.notna()).idxmax()
            raise ValueError(
                f"{name}: rating column {rating!r} is not numeric: row {bad!r} holds {values.loc[bad]!r}"
            )
        values = converted
    if values.isna().any():
        raise ValueError(
            f"{name}: {int(values.isna().sum())} missing (NaN) rating(s) in column {rating!r}, "
            f"first at row {values.isna().idxmax()!r}; drop or fill them first"
        )
    if not np.isfinite(values.to_numpy(np.float64)).all():
        raise ValueError(f"{name}: rating column {rating!r} holds infinite values")
    if scale is None:
        scale = infer_scale(values)
        log.info("%s: inferred rating scale [%g, %g]", name, scale.low, scale.high)
    else:
        outside = (values < scale.low) | (values > scale.high)
        if outside.any():
            raise ValueError(
                f"{name}: {int(outside.sum())} rating(s) outside the scale [{scale.low:g}, {scale.high:g}], "
                f"first at row {outside.idxmax()!r}: {values.loc[outside.idxmax()]!r}"
            )

    raw = pd.DataFrame(
        {
            "user": df[user].to_numpy(),
            "item": df[item].to_numpy(),
            "rating": values.to_numpy(np.float64),
            "timestamp": _timestamps(df[timestamp]).to_numpy() if timestamp is not None else np.nan,
        }
    )
    try:
        return build_rating_log(name, raw, scale, item_features=item_features, user_features=user_features)
    except TypeError as err:  # np.unique over mixed id types
        raise ValueError(f"{name}: user and item ids must be of one sortable type each ({err})") from err


def load_csv(
    path: str | os.PathLike[str],
    sep: str = ",",
    user: str = "user",
    item: str = "item",
    rating: str = "rating",
    timestamp: str | None = None,
    scale: RatingScale | None = None,
    name: str | None = None,
    **read_csv_kwargs: Any,
) -> RatingLog:
    """A :class:`RatingLog` from a delimited text file with a header row.

    :param path: the file.
    :param sep: field separator.
    :param user: column of user ids.
    :param item: column of item ids.
    :param rating: column of ratings.
    :param timestamp: optional column of Unix seconds (or datetimes, with ``parse_dates``).
    :param scale: rating scale; inferred from min/max if None.
    :param name: log name (default: the file's stem).
    :param read_csv_kwargs: passed to :func:`pandas.read_csv` (e.g. ``header=None, names=[...]``).
    :raises FileNotFoundError: the file does not exist.
    :raises MalformedFileError: a line the parser cannot split (with its number).
    :raises ValueError: as :func:`from_dataframe`.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"ratings file {path} does not exist")
    try:
        df = pd.read_csv(path, sep=sep, **read_csv_kwargs)
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{path} is empty, there are no ratings") from err
    except pd.errors.ParserError as err:
        line = re.search(r"line (\d+)", str(err))
        raise MalformedFileError(path, int(line.group(1)) if line else None, str(err)) from err
    return from_dataframe(df, user=user, item=item, rating=rating, timestamp=timestamp, scale=scale,
                          name=name or path.stem)
