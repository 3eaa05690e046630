"""Parsers of the Jester joke-rating layouts (Datasets 1 and 4).

Both official layouts are one row per user, no header: column 0 is the number
of jokes the user rated, then one column per joke (1..100 for Dataset 1,
1..158 for Dataset 4) holding a rating in [-10, 10] or ``99`` for "not rated".
Dataset 1 ships as three .xls sheets, Dataset 4 as one .xlsx; any file of that
layout (.xls, .xlsx, .csv) can be read. Jester has no timestamps.

Some official values lie outside [-10, 10] (541 in Dataset 4, down to -42.28);
by default they are clipped to the scale and a :class:`DataWarning` says how
many. ``out_of_range="drop"`` drops them and ``"raise"`` refuses the file.
"""

from __future__ import annotations

import html
import logging
import re
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from recgym.data.errors import DataWarning, MalformedFileError
from recgym.data.rating_log import JESTER_SCALE, RatingLog, build_rating_log
from recgym.data.spreadsheet import REFETCH_ADVICE, read_numeric_sheet, read_text_column
from recgym.data.textfile import read_table

log = logging.getLogger(__name__)

NOT_RATED = 99.0
OutOfRange = Literal["clip", "drop", "raise"]

_JOKE_BODY = re.compile(r"<!--begin of joke -->(.*?)<!--end of joke -->", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_INIT_HTML = re.compile(r"init(\d+)\.html?$", re.I)


def read_layout_matrix(path: Path) -> np.ndarray:
    """A Jester-layout file as a float matrix (users x (1 + jokes)).

    :param path: .xls / .xlsx sheet or a header-less .csv / .txt.
    :raises MalformedFileError: empty cells, non-numbers or ragged lines (with the line/row).
    """
    path = Path(path)
    if path.suffix.lower() in (".xls", ".xlsx"):
        matrix = read_numeric_sheet(path)
        unit = "row"
    else:
        with open(path, "rb") as fh:
            first = fh.readline()
        n_fields = first.count(b",") + 1
        if n_fields < 2:
            raise MalformedFileError(path, 1, "expected comma-separated values: count, then one column per joke")
        names = [f"c{i}" for i in range(n_fields)]
        matrix = read_table(path, ",", names, {n: "float" for n in names}).to_numpy(np.float64)
        unit = "line"
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] < 2:
        raise MalformedFileError(path, None, f"expected a count column and joke columns, got shape {matrix.shape}")
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise MalformedFileError(path, row + 1, f"{unit} {row + 1}, column {col + 1}: empty cell or not a number")
    return matrix


def matrix_to_ratings(
    matrix: np.ndarray,
    path: Path,
    first_user: int = 1,
    out_of_range: OutOfRange = "clip",
) -> tuple[pd.DataFrame, dict]:
    """The rated cells of a Jester-layout matrix as ``user, item, rating`` rows.

    :param matrix: users x (1 + jokes), as from :func:`read_layout_matrix`.
    :param path: the source file (for messages).
    :param first_user: raw id of the first row's user (rows are numbered from it).
    :param out_of_range: what to do with ratings outside [-10, 10] (not 99).
    :returns: the raw ratings (joke ids 1-based) and notes (counts of clipped/dropped values).
    """
    counts, values = matrix[:, 0], matrix[:, 1:]
    rated = values != NOT_RATED
    if np.any(counts != np.floor(counts)) or np.any(counts < 0):
        row = int(np.flatnonzero((counts != np.floor(counts)) | (counts < 0))[0])
        raise MalformedFileError(path, row + 1, f"column 1 (number of rated jokes) is {float(counts[row])!r}")
    mismatch = np.flatnonzero(counts != rated.sum(axis=1))
    if len(mismatch):
        row = int(mismatch[0])
        warnings.warn(
            f"{path.name}: in {len(mismatch)} rows the count column differs from the number of "
            f"rated jokes (first: row {row + 1}, {int(counts[row])} vs {int(rated[row].sum())}); "
            "the ratings themselves are used",
            DataWarning,
            stacklevel=3,
        )
    users, jokes = np.nonzero(rated)
    ratings = values[users, jokes]
    outside = (ratings < JESTER_SCALE.low) | (ratings > JESTER_SCALE.high)
    notes = {"out_of_range": int(outside.sum()), "out_of_range_action": out_of_range}
    if outside.any():
        where = (
            f"{path.name}: {int(outside.sum())} of {len(ratings):,} ratings lie outside [-10, 10] "
            f"(from {ratings[outside].min():g} to {ratings[outside].max():g})"
        )
        if out_of_range == "raise":
            row = int(users[np.flatnonzero(outside)[0]])
            raise MalformedFileError(path, row + 1, where)
        if out_of_range == "clip":
            ratings = JESTER_SCALE.clip(ratings)
            message = f"{where}; clipped them to [-10, 10]"
        elif out_of_range == "drop":
            users, jokes, ratings = users[~outside], jokes[~outside], ratings[~outside]
            message = f"{where}; dropped them"
        else:
            raise ValueError(f"out_of_range must be 'clip', 'drop' or 'raise', got {out_of_range!r}")
        notes["message"] = message
    raw = pd.DataFrame(
        {
            "user": users.astype(np.int64) + first_user,
            "item": jokes.astype(np.int64) + 1,
            "rating": ratings.astype(np.float64),
            "timestamp": np.nan,
        }
    )
    return raw, notes


def read_jokes_txt(path: Path) -> list[str]:
    """Joke texts, one per line (joke id = line number)."""
    return [line.rstrip("\r\n") for line in Path(path).read_text(encoding="utf-8").splitlines()]


def _html_joke(page: str) -> str:
    match = _JOKE_BODY.search(page)
    body = match.group(1) if match else page
    return " ".join(html.unescape(_TAG.sub(" ", body)).split())


def read_jokes_html_zip(path: Path) -> dict[int, str]:
    """Dataset 1 joke texts from ``jester_dataset_1_joke_texts.zip`` (``initN.html`` -> joke N)."""
    jokes: dict[int, str] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                match = _INIT_HTML.search(member)
                if match:
                    raw = zf.read(member)
                    try:
                        page = raw.decode("utf-8")
                    except UnicodeDecodeError:  # the 1999 pages are not all UTF-8
                        page = raw.decode("latin-1")
                    jokes[int(match.group(1))] = _html_joke(page)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise MalformedFileError(
            path, None, f"the zip archive is truncated or corrupt ({err}); {REFETCH_ADVICE}"
        ) from err
    return jokes


def read_jokes(path: Path) -> dict[int, str]:
    """Joke id (1-based) -> text, from a .txt (one per line), .xlsx (one per row) or the Dataset 1 html zip."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return read_jokes_html_zip(path)
    texts = read_text_column(path) if suffix in (".xls", ".xlsx") else read_jokes_txt(path)
    return {i + 1: t for i, t in enumerate(texts)}


def find_jokes_beside(ratings_path: Path) -> Path | None:
    """A joke-text file next to a ratings file: ``*jokes*.txt``, ``*JokeSet*.xlsx`` or the Dataset 1 zip."""
    folder = Path(ratings_path).parent
    for pattern in ("*jokes*.txt", "*JokeSet*.xlsx", "jester_dataset_1_joke_texts.zip"):
        matches = sorted(folder.glob(pattern))
        if len(matches) == 1:
            return matches[0]
    return None


def build_jester_log(
    name: str,
    sheets: Sequence[Path],
    jokes: Path | None = None,
    out_of_range: OutOfRange = "clip",
    expected_rows: dict[str, int] | None = None,
) -> RatingLog:
    """Parse one or more Jester-layout sheets into a log (users numbered across sheets).

    :param name: log name (``"jester"``, ``"jester-4"``).
    :param sheets: the sheets, in user order.
    :param jokes: optional joke-text file (see :func:`read_jokes`).
    :param out_of_range: what to do with ratings outside [-10, 10].
    :param expected_rows: official row count per file name, checked when the name matches.
    :returns: the log; ``log.meta`` records the clipped/dropped counts.
    """
    frames, notes, first_user, n_jokes = [], [], 1, None
    for sheet in sheets:
        sheet = Path(sheet)
        matrix = read_layout_matrix(sheet)
        expected = (expected_rows or {}).get(sheet.name)
        if expected is not None and matrix.shape[0] != expected:
            raise MalformedFileError(
                sheet, None, f"has {matrix.shape[0]:,} rows, the official file has {expected:,}: not the official file"
            )
        if n_jokes is not None and matrix.shape[1] - 1 != n_jokes:
            raise MalformedFileError(sheet, None, f"has {matrix.shape[1] - 1} joke columns, the first sheet {n_jokes}")
        n_jokes = matrix.shape[1] - 1
        raw, note = matrix_to_ratings(matrix, sheet, first_user, out_of_range)
        first_user += matrix.shape[0]
        frames.append(raw)
        notes.append(note)
    raw = pd.concat(frames, ignore_index=True)
    messages = [n["message"] for n in notes if "message" in n]
    for message in messages:
        # stacklevel 4: build_jester_log <- Loader.parse <- load() <- the caller of load()
        warnings.warn(message, DataWarning, stacklevel=4)
        log.info(message)

    item_features = None
    if jokes is not None:
        texts = read_jokes(jokes)
        if len(texts) < n_jokes:
            raise MalformedFileError(jokes, None, f"holds {len(texts)} joke texts, the ratings have {n_jokes} jokes")
        item_features = pd.DataFrame({"text": pd.Series(texts)}).rename_axis("item")
    rating_log = build_rating_log(name, raw, JESTER_SCALE, item_features=item_features)
    rating_log.meta.update(
        {
            "out_of_range": sum(n["out_of_range"] for n in notes),
            "out_of_range_action": out_of_range,
            "warnings": messages,
        }
    )
    return rating_log
