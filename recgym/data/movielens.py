"""Parsers of the MovieLens 100K and 1M file formats.

ML-100K: ``u.data`` (tab: user item rating timestamp), ``u.item`` (``|``,
latin-1: id, title, release date, video release date, IMDb URL, 19 genre
flags), ``u.genre`` (genre names in flag order) and ``u.user``
(``id|age|gender|occupation|zip``). ML-1M: ``ratings.dat``, ``movies.dat``
(genres as ``A|B``) and ``users.dat``, ``::``-separated, latin-1.

The text files are officially latin-1, but a copy re-saved as UTF-8 is read
as UTF-8: a file that decodes as strict UTF-8 is taken to be UTF-8
(:data:`~recgym.data.textfile.AUTO_ENCODING`), so titles never turn to mojibake.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from recgym.data.errors import DataWarning, MalformedFileError
from recgym.data.rating_log import STAR_SCALE, RatingLog, build_rating_log, drop_duplicate_ratings
from recgym.data.textfile import AUTO_ENCODING, check_values, read_table

STARS = (1, 2, 3, 4, 5)

ML1M_GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
    "Western",
)
ML1M_AGES = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)

_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")
RATING_COLUMNS = ("user", "item", "rating", "timestamp")
_RATING_TYPES = {"user": "int", "item": "int", "rating": "int", "timestamp": "int"}


def read_ratings(path: Path, sep: str) -> pd.DataFrame:
    """A MovieLens ratings file (``u.data``, ``u1.base``, ``ratings.dat``) as raw columns.

    :param path: the file.
    :param sep: ``"\\t"`` (100K) or ``"::"`` (1M).
    :raises MalformedFileError: a bad line, or a rating outside 1..5.
    """
    frame = read_table(path, sep, RATING_COLUMNS, _RATING_TYPES)
    check_values(frame, "rating", STARS, path)
    return frame


def title_year(titles: pd.Series, release_dates: pd.Series | None = None) -> pd.Series:
    """Year from a ``"Title (1995)"`` title, else from a ``01-Jan-1995`` release date (float, NaN if none)."""
    year = pd.to_numeric(titles.str.extract(_YEAR_IN_TITLE, expand=False), errors="coerce")
    if release_dates is not None:
        released = pd.to_datetime(release_dates, format="%d-%b-%Y", errors="coerce").dt.year
        year = year.fillna(released)
    return year.astype(np.float64)


def read_genres_100k(path: Path) -> list[str]:
    """Genre names of ``u.genre`` in flag order (``name|index`` lines)."""
    frame = read_table(path, "|", ("name", "index"), {"index": "int"}, encoding=AUTO_ENCODING, required=("name",))
    if sorted(frame["index"]) != list(range(len(frame))):
        raise MalformedFileError(path, None, f"genre indices {frame['index'].tolist()} are not 0..{len(frame) - 1}")
    return frame.sort_values("index")["name"].tolist()


def read_items_100k(path: Path, genres: list[str]) -> pd.DataFrame:
    """``u.item`` as item features indexed by raw item id: title, year, release_date, imdb_url, genre:<Name>."""
    flags = [f"genre:{g}" for g in genres]
    names = ("item", "title", "release_date", "video_release_date", "imdb_url", *flags)
    frame = read_table(path, "|", names, {"item": "int", **{f: "int" for f in flags}}, encoding=AUTO_ENCODING)
    for flag in flags:
        check_values(frame, flag, (0, 1), path)
    features = pd.DataFrame(
        {
            "title": frame["title"].fillna(""),
            "year": title_year(frame["title"].fillna(""), frame["release_date"]),
            "release_date": frame["release_date"],
            "imdb_url": frame["imdb_url"],
        }
    )
    for flag in flags:
        features[flag] = frame[flag].astype(np.int8)
    features.index = pd.Index(frame["item"].to_numpy(), name="item")
    _check_unique(features.index, path, "item id")
    return features


def read_users_100k(path: Path) -> pd.DataFrame:
    """``u.user`` as user features indexed by raw user id: age, gender, occupation, zip."""
    frame = read_table(
        path, "|", ("user", "age", "gender", "occupation", "zip"), {"user": "int", "age": "int"},
        encoding=AUTO_ENCODING, required=("gender", "occupation"),
    )
    check_values(frame, "gender", ("M", "F"), path)
    features = frame.set_index("user")
    _check_unique(features.index, path, "user id")
    return features


def read_movies_1m(path: Path) -> pd.DataFrame:
    """``movies.dat`` as item features indexed by raw movie id: title, year, genre:<Name> (18 flags)."""
    frame = read_table(path, "::", ("item", "title", "genres"), {"item": "int"}, encoding=AUTO_ENCODING,
                       required=("title",))
    genres = frame["genres"].fillna("")
    flags = genres.str.get_dummies(sep="|")
    unknown = sorted(set(flags.columns) - set(ML1M_GENRES))
    if unknown:
        bad = genres.index[genres.str.split("|").map(lambda gs: bool(set(gs) & set(unknown)))][0]
        raise MalformedFileError(path, int(bad) + 1, f"unknown genre(s) {unknown}; known: {list(ML1M_GENRES)}")
    features = pd.DataFrame({"title": frame["title"], "year": title_year(frame["title"])})
    for genre in ML1M_GENRES:
        features[f"genre:{genre}"] = (
            flags[genre].to_numpy(np.int8) if genre in flags else np.zeros(len(frame), np.int8)
        )
    features.index = pd.Index(frame["item"].to_numpy(), name="item")
    _check_unique(features.index, path, "movie id")
    return features


def read_users_1m(path: Path) -> pd.DataFrame:
    """``users.dat`` as user features indexed by raw user id.

    Columns: gender, age (the code: 1, 18, 25, ...), age_group, occupation
    (the code 0..20), occupation_name, zip.
    """
    frame = read_table(
        path, "::", ("user", "gender", "age", "occupation", "zip"),
        {"user": "int", "age": "int", "occupation": "int"}, encoding=AUTO_ENCODING, required=("gender",),
    )
    check_values(frame, "gender", ("M", "F"), path)
    check_values(frame, "age", tuple(ML1M_AGES), path)
    check_values(frame, "occupation", tuple(range(len(ML1M_OCCUPATIONS))), path)
    features = frame.set_index("user")
    features.insert(2, "age_group", features["age"].map(ML1M_AGES))
    features.insert(4, "occupation_name", features["occupation"].map(dict(enumerate(ML1M_OCCUPATIONS))))
    _check_unique(features.index, path, "user id")
    return features


def _check_unique(index: pd.Index, path: Path, what: str) -> None:
    if index.has_duplicates:
        dup = index[index.duplicated()][0]
        raise MalformedFileError(path, None, f"duplicate {what} {dup}")


def _check_known(ratings: pd.DataFrame, column: str, known: pd.Index, path: Path, what: str) -> None:
    unknown = ~ratings[column].isin(known)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise MalformedFileError(
            path, int(ratings.index[i]) + 1, f"{what} {ratings[column].iloc[i]} is not in the {what} file"
        )


def unique_ratings(
    frame: pd.DataFrame, path: Path, duplicates: str, stacklevel: int = 4
) -> tuple[pd.DataFrame, list[str]]:
    """One rating per (user, item) pair of a ratings file (see :func:`drop_duplicate_ratings`).

    The official files have none; an unverified copy may. Dropping warns
    (:class:`DataWarning`) with the count; the message is also returned, for
    ``log.meta["warnings"]`` (a cached load repeats it).

    :param frame: as from :func:`read_ratings` (index = 0-based line number).
    :param path: the file, for messages.
    :param duplicates: ``"latest"`` or ``"error"``.
    :param stacklevel: of the warning; 4 points at the caller of :func:`recgym.data.load`
        (unique_ratings <- parse_ml100k <- load <- caller).
    """
    kept, message = drop_duplicate_ratings(frame, duplicates, str(path), path=path)
    if message is None:
        return kept, []
    warnings.warn(message, DataWarning, stacklevel=stacklevel)
    return kept, [message]


def _with_notes(rating_log: RatingLog, n_dropped: int, messages: list[str]) -> RatingLog:
    if messages:
        rating_log.meta.update(duplicates_dropped=n_dropped, warnings=messages)
    return rating_log


def parse_ml100k(files: Mapping[str, Path], duplicates: str = "latest") -> RatingLog:
    """Assemble the ML-100K log from ``u.data``, ``u.item``, ``u.genre`` and ``u.user``.

    :param files: canonical file name -> path.
    :param duplicates: repeated (user, item) pairs in ``u.data``: ``"latest"``
        keeps the latest by timestamp (ties: the last line) and warns; ``"error"`` refuses the file.
    """
    read = read_ratings(files["u.data"], "\t")
    ratings, messages = unique_ratings(read, files["u.data"], duplicates)
    genres = read_genres_100k(files["u.genre"])
    items = read_items_100k(files["u.item"], genres)
    users = read_users_100k(files["u.user"])
    _check_known(ratings, "item", items.index, files["u.data"], "item")
    _check_known(ratings, "user", users.index, files["u.data"], "user")
    rating_log = build_rating_log("ml-100k", ratings, STAR_SCALE, item_features=items, user_features=users)
    return _with_notes(rating_log, len(read) - len(ratings), messages)


def parse_ml1m(files: Mapping[str, Path], duplicates: str = "latest") -> RatingLog:
    """Assemble the ML-1M log from ``ratings.dat``, ``movies.dat`` and ``users.dat``.

    Items are the rated movies (3,706 officially), not all 3,883 listed ones.

    :param files: canonical file name -> path.
    :param duplicates: repeated (user, movie) pairs in ``ratings.dat``, as :func:`parse_ml100k`.
    """
    read = read_ratings(files["ratings.dat"], "::")
    ratings, messages = unique_ratings(read, files["ratings.dat"], duplicates)
    items = read_movies_1m(files["movies.dat"])
    users = read_users_1m(files["users.dat"])
    _check_known(ratings, "item", items.index, files["ratings.dat"], "movie")
    _check_known(ratings, "user", users.index, files["ratings.dat"], "user")
    rating_log = build_rating_log("ml-1m", ratings, STAR_SCALE, item_features=items, user_features=users)
    return _with_notes(rating_log, len(read) - len(ratings), messages)
