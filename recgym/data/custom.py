"""Bring your own ratings: :func:`from_dataframe` and :func:`load_csv`.

Input is validated before it becomes a :class:`RatingLog`: missing columns are
named, empty, missing, non-numeric or non-finite ratings and missing ids are
refused with the offending row, ratings and scales that float32 arithmetic
(the simulators' dtype) cannot hold comfortably are refused, repeated
(user, item) pairs are resolved by the ``duplicates`` policy, and the rating
scale is inferred from the observed minimum and maximum when not given.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recgym.data.errors import DatasetNotFoundError, DataWarning, MalformedFileError
from recgym.data.rating_log import (
    RatingLog,
    RatingScale,
    build_rating_log,
    check_duplicates_policy,
    drop_duplicate_ratings,
    show_value,
)
from recgym.data.textfile import SNIFF_BYTES, sniff_wide_text, wide_text_advice

log = logging.getLogger(__name__)

_FLOAT32 = np.finfo(np.float32)
#: Largest accepted |rating|, |scale bound| and scale range: 2**24 = 16,777,216,
#: up to which float32 (the dtype of the simulators' factors and answered
#: ratings) holds every integer exactly, and far from its overflow at 3.4e38.
#: PMF's fixed ridge penalties also stop working (singular solves) from about
#: 1e10, so a larger bound would only move the failure into the simulator.
MAX_RATING_MAGNITUDE = 2.0 ** 24
#: Smallest accepted scale range relative to the largest |bound|: float32 then
#: still tells about a thousand rating levels apart across the scale.
MIN_RELATIVE_RANGE = 1024 * float(_FLOAT32.eps)
#: Smallest accepted scale range: the square root of float32's smallest normal value.
MIN_RANGE = float(np.sqrt(_FLOAT32.tiny))


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


def check_scale_fits_float32(scale: RatingScale, name: str = "custom") -> None:
    """Refuse a rating scale that float32 arithmetic cannot handle comfortably.

    The simulators keep factors, biases and answered ratings in float32: beyond
    :data:`MAX_RATING_MAGNITUDE` ratings stop being exact there, and far beyond
    they overflow (NaN rewards); a range below :data:`MIN_RANGE` or
    :data:`MIN_RELATIVE_RANGE` times the largest bound rounds distinct ratings together.

    :param scale: the scale to check.
    :param name: the log named in the message.
    :raises ValueError: naming the scale, the limit and how to rescale.
    """
    low, high = float(scale.low), float(scale.high)
    span, biggest = high - low, max(abs(low), abs(high))
    if biggest > MAX_RATING_MAGNITUDE or span > MAX_RATING_MAGNITUDE:
        raise ValueError(
            f"{name}: rating scale [{low:g}, {high:g}] does not fit float32 comfortably: its bounds and "
            f"range must lie within {MAX_RATING_MAGNITUDE:,.0f}; rescale the ratings (e.g. divide them "
            "by 1e6) and pass a matching scale=RatingScale(low, high)"
        )
    narrowest = max(MIN_RANGE, MIN_RELATIVE_RANGE * biggest)
    if span < narrowest:
        raise ValueError(
            f"{name}: rating scale [{low:.17g}, {high:.17g}] is too narrow for float32: its range {span:.3g} "
            f"is below {narrowest:.3g}, so distinct ratings would round together; subtract an offset or "
            "multiply the ratings, or pass a wider scale=RatingScale(low, high)"
        )


def _first(mask: pd.Series | np.ndarray, column: pd.Series) -> tuple[Any, Any]:
    """Label and value of the first row where ``mask`` holds (positional, so repeated labels are fine)."""
    i = int(np.flatnonzero(np.asarray(mask, dtype=bool))[0])
    return column.index[i], column.iloc[i]


def _is_bool_or_complex(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_, complex, np.complexfloating))


def _numbers(column: pd.Series, where: str) -> np.ndarray:
    """A column as float64 (NaN where missing), refusing booleans, complex and non-numeric values.

    :param column: the column.
    :param where: ``"<log>: rating column 'x'"``, the start of every message.
    """
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_complex_dtype(column):
        raise ValueError(f"{where} is not numeric: it holds {column.dtype} values such as {show_value(column.iloc[0])}")
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(np.float64, na_value=np.nan)
    objects = column.astype(object)  # strings, categoricals, mixed Python objects
    odd = objects.map(_is_bool_or_complex).to_numpy(dtype=bool)
    if odd.any():
        label, value = _first(odd, objects)
        raise ValueError(f"{where} is not numeric: row {show_value(label)} holds {show_value(value)}")
    try:
        converted = pd.to_numeric(objects, errors="coerce")
    except (OverflowError, TypeError, ValueError):
        converted = None  # e.g. an int beyond float range: find the row below
    if converted is None or not pd.api.types.is_numeric_dtype(converted) or pd.api.types.is_complex_dtype(converted):
        for label, value in objects.items():
            try:
                float(value)
            except OverflowError:
                raise ValueError(
                    f"{where}, row {show_value(label)} holds {show_value(value)}, too large for a float; "
                    "rescale the column"
                ) from None
            except (TypeError, ValueError):
                raise ValueError(f"{where} is not numeric: row {show_value(label)} holds {show_value(value)}") from None
        raise ValueError(f"{where} is not numeric ({objects.dtype} values pandas cannot convert)")
    unparsed = converted.isna().to_numpy() & objects.notna().to_numpy()
    if unparsed.any():
        label, value = _first(unparsed, objects)
        raise ValueError(f"{where} is not numeric: row {show_value(label)} holds {show_value(value)}")
    return converted.to_numpy(np.float64, na_value=np.nan)


def _ratings(column: pd.Series, rating: str, name: str) -> np.ndarray:
    """The rating column as finite float64 values of float32-safe size."""
    where = f"{name}: rating column {rating!r}"
    values = _numbers(column, where)
    missing = np.isnan(values)
    if missing.any():
        label, _ = _first(missing, column)
        raise ValueError(
            f"{name}: {int(missing.sum())} missing (NaN) rating(s) in column {rating!r}, "
            f"first at row {show_value(label)}; drop or fill them first"
        )
    infinite = np.isinf(values)
    if infinite.any():
        label, value = _first(infinite, column)
        raise ValueError(
            f"{where}, row {show_value(label)} holds {show_value(value)}: ratings must be finite; drop or fix that row"
        )
    huge = np.abs(values) > MAX_RATING_MAGNITUDE
    if huge.any():
        label, value = _first(huge, column)
        raise ValueError(
            f"{where}, row {show_value(label)} holds {show_value(value)}, too large for float32 arithmetic "
            f"(|rating| <= {MAX_RATING_MAGNITUDE:,.0f}); rescale the ratings (e.g. divide them by 1e6)"
        )
    return values


def _timestamps(column: pd.Series, label: str, name: str) -> np.ndarray:
    """The timestamp column as float64 Unix seconds (NaN where unknown)."""
    where = f"{name}: timestamp column {show_value(label)}"
    if pd.api.types.is_datetime64_any_dtype(column):
        # Unix seconds; NaT stays NaN
        stamps = column.dt.tz_convert("UTC").dt.tz_localize(None) if column.dt.tz is not None else column
        seconds = (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
        seconds = seconds.to_numpy(np.float64, na_value=np.nan)
    else:
        try:
            seconds = _numbers(column, where)
        except ValueError as err:
            raise ValueError(f"{err}; timestamps must be Unix seconds or datetimes") from None
    infinite = np.isinf(seconds)
    if infinite.any():
        row, value = _first(infinite, column)
        raise ValueError(
            f"{where}: row {show_value(row)} holds {show_value(value)}; timestamps must be finite (NaN/NaT for unknown)"
        )
    return seconds


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
    duplicates: str = "latest",
) -> RatingLog:
    """A :class:`RatingLog` from a DataFrame of explicit ratings.

    Users and items may have any (sortable) ids; they are mapped to contiguous
    ids and kept in ``log.user_ids`` / ``log.item_ids``. Ratings must be finite
    and, like the scale's bounds and range, at most
    :data:`MAX_RATING_MAGNITUDE` (2**24, about 1.7e7) in size, so that the float32
    simulators stay exact and never overflow.

    :param df: one row per rating.
    :param user: column of user ids.
    :param item: column of item ids.
    :param rating: column of numeric ratings.
    :param timestamp: optional column of Unix seconds or datetimes (NaN/NaT: unknown).
    :param scale: the rating scale; inferred from the min and max rating if None.
    :param name: name of the log.
    :param item_features: optional features indexed by raw item id.
    :param user_features: optional features indexed by raw user id.
    :param duplicates: several ratings of one (user, item) pair: ``"latest"``
        keeps the one with the latest timestamp (ties, or no timestamps: the
        last row) and warns (:class:`DataWarning`) how many were dropped;
        ``"error"`` refuses the frame.
    :raises ValueError: empty frame, missing or repeated columns, missing ids,
        missing, non-numeric, non-finite or too large ratings, ratings outside
        ``scale``, a scale float32 cannot hold, or repeated pairs with
        ``duplicates="error"``; the message names the log and the first bad row.
    """
    return _log_from_frame(df, user, item, rating, timestamp, scale, name, item_features, user_features,
                           duplicates, stacklevel=3)


def _log_from_frame(
    df: pd.DataFrame,
    user: str,
    item: str,
    rating: str,
    timestamp: str | None,
    scale: RatingScale | None,
    name: str,
    item_features: pd.DataFrame | None,
    user_features: pd.DataFrame | None,
    duplicates: str,
    stacklevel: int,
) -> RatingLog:
    """:func:`from_dataframe`; ``stacklevel`` makes the duplicates warning point at the user's call."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"from_dataframe expects a pandas DataFrame, got {type(df).__name__}")
    check_duplicates_policy(duplicates)
    wanted = {"user": user, "item": item, "rating": rating}
    if timestamp is not None:
        wanted["timestamp"] = timestamp
    missing = [f"{role}={col!r}" for role, col in wanted.items() if col not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}; the frame has {list(df.columns)}")
    repeated = [repr(col) for col in dict.fromkeys(wanted.values()) if int((df.columns == col).sum()) > 1]
    if repeated:
        raise ValueError(f"{name}: column(s) {', '.join(repeated)} appear more than once; rename or drop the copies")
    if len(df) == 0:
        raise ValueError(f"{name}: the DataFrame is empty, there are no ratings")

    for role in ("user", "item"):
        empty = df[wanted[role]].isna().to_numpy()
        if empty.any():
            label, _ = _first(empty, df[wanted[role]])
            raise ValueError(f"{name}: {int(empty.sum())} missing {role} id(s) in column {wanted[role]!r}, "
                             f"first at row {show_value(label)}")
    values = _ratings(df[rating], rating, name)
    if scale is None:
        try:
            scale = infer_scale(values)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        log.info("%s: inferred rating scale [%g, %g]", name, scale.low, scale.high)
        check_scale_fits_float32(scale, name)
    else:
        check_scale_fits_float32(scale, name)
        outside = (values < scale.low) | (values > scale.high)
        if outside.any():
            label, value = _first(outside, df[rating])
            raise ValueError(
                f"{name}: {int(outside.sum())} rating(s) outside the scale [{scale.low:g}, {scale.high:g}], "
                f"first at row {show_value(label)}: {show_value(value)}"
            )
    for role, features in (("item_features", item_features), ("user_features", user_features)):
        if features is not None and features.index.has_duplicates:
            raise ValueError(f"{name}: {role} has repeated index labels; keep one row per raw id")

    raw = pd.DataFrame(
        {
            "user": df[user].to_numpy(),
            "item": df[item].to_numpy(),
            "rating": values,
            "timestamp": _timestamps(df[timestamp], timestamp, name) if timestamp is not None else np.nan,
        }
    )
    try:
        raw, dropped = drop_duplicate_ratings(raw, duplicates, name, row_labels=df.index)
        rating_log = build_rating_log(name, raw, scale, item_features=item_features, user_features=user_features)
    except TypeError as err:  # unhashable ids, or np.unique over mixed id types
        raise ValueError(
            f"{name}: user and item ids must be hashable values of one sortable type each ({err})"
        ) from err
    if dropped:
        warnings.warn(dropped, DataWarning, stacklevel=stacklevel)
        rating_log.meta.update(duplicates_dropped=len(df) - len(raw), warnings=[dropped])
    return rating_log


def load_csv(
    path: str | os.PathLike[str],
    sep: str = ",",
    user: str = "user",
    item: str = "item",
    rating: str = "rating",
    timestamp: str | None = None,
    scale: RatingScale | None = None,
    name: str | None = None,
    duplicates: str = "latest",
    **read_csv_kwargs: Any,
) -> RatingLog:
    """A :class:`RatingLog` from a delimited text file with a header row.

    The file must be 8-bit text (UTF-8 by default): a UTF-16 or UTF-32 file is
    refused with the advice to convert it, unless ``encoding=`` is passed.

    :param path: the file.
    :param sep: field separator.
    :param user: column of user ids.
    :param item: column of item ids.
    :param rating: column of ratings.
    :param timestamp: optional column of Unix seconds (or datetimes, with ``parse_dates``).
    :param scale: rating scale; inferred from min/max if None.
    :param name: log name (default: the file's stem).
    :param duplicates: ``"latest"`` or ``"error"``, as :func:`from_dataframe`.
    :param read_csv_kwargs: passed to :func:`pandas.read_csv` (e.g. ``header=None, names=[...]``,
        ``encoding="latin-1"``).
    :raises DatasetNotFoundError: the file does not exist, or is a directory.
    :raises MalformedFileError: the file is empty, UTF-16/32, binary or not in
        its encoding, a line the parser cannot split (with its number), or any
        refusal of :func:`from_dataframe` (naming the file).
    """
    check_duplicates_policy(duplicates)
    path = Path(path).expanduser()
    if path.is_dir():
        raise DatasetNotFoundError(
            f"{path} is a directory, not a CSV file; pass the ratings file inside it, e.g. {path / 'ratings.csv'}"
        )
    if not path.is_file():
        raise DatasetNotFoundError(f"ratings file {path} does not exist")
    encoding = read_csv_kwargs.get("encoding")
    if encoding is None:  # an explicit encoding= is the caller's decision
        with open(path, "rb") as fh:
            wide = sniff_wide_text(fh.read(SNIFF_BYTES))
        if wide:
            also = f", or pass encoding={wide.lower()!r}" if wide != "binary" else ""
            raise MalformedFileError(path, None, wide_text_advice(path, wide) + also)
    try:
        df = pd.read_csv(path, sep=sep, **read_csv_kwargs)
    except pd.errors.EmptyDataError as err:
        raise MalformedFileError(path, None, "the file is empty, there are no ratings") from err
    except pd.errors.ParserError as err:
        line = re.search(r"line (\d+)", str(err))
        raise MalformedFileError(path, int(line.group(1)) if line else None, str(err)) from err
    except UnicodeDecodeError as err:
        raise MalformedFileError(
            path, None, f"the file is not valid {encoding or 'utf-8'} text ({err}); convert it to UTF-8 "
            "or pass its encoding, e.g. encoding='latin-1'"
        ) from err
    try:
        return _log_from_frame(df, user, item, rating, timestamp, scale, name or path.stem, None, None,
                               duplicates, stacklevel=3)
    except ValueError as err:
        if isinstance(err, MalformedFileError):
            raise
        # rows are the frame's: data rows counted from 0 after the header
        note = " (rows are data rows counted from 0, after the header)" if re.search(r"\brows? ", str(err)) else ""
        raise MalformedFileError(path, None, f"{err}{note}") from err
