"""Parser of Yahoo! Music R3 (Webscope ``ydata-ymusic-rating-study-v1_0``).

``-train.txt`` and ``-test.txt`` are tab-separated ``user song rating`` lines
with 1-based ids and 1..5 stars, no timestamps. Train holds ratings of songs
users chose themselves (missing not at random); test holds 10 songs chosen at
random for each of the first 5,400 users, an unbiased random-exposure set. It
is kept apart as ``log.extra["test"]`` in the same id space.
"""

from __future__ import annotations

from pathlib import Path

from recgym.data.movielens import STARS, unique_ratings
from recgym.data.rating_log import STAR_SCALE, RatingLog, build_rating_log
from recgym.data.textfile import check_values, read_table

_COLUMNS = ("user", "item", "rating")
_TYPES = {"user": "int", "item": "int", "rating": "int"}


def read_yahoo_ratings(path: Path):
    """One R3 file as raw ``user, item, rating`` columns (timestamps NaN).

    :raises MalformedFileError: a bad line or a rating outside 1..5.
    """
    frame = read_table(path, "\t", _COLUMNS, _TYPES)
    check_values(frame, "rating", STARS, path)
    return frame


def parse_yahoo_r3(train: Path, test: Path, duplicates: str = "latest") -> RatingLog:
    """The R3 log: train as interactions, the random-exposure set as ``extra["test"]``.

    :param train: ``ydata-ymusic-rating-study-v1_0-train.txt``.
    :param test: ``ydata-ymusic-rating-study-v1_0-test.txt``.
    :param duplicates: repeated (user, song) pairs within one file (R3 has no
        timestamps): ``"latest"`` keeps the last line and warns; ``"error"`` refuses the file.
    """
    tables, messages, n_dropped = [], [], 0
    for path in (train, test):
        read = read_yahoo_ratings(path)
        kept, notes = unique_ratings(read, path, duplicates, stacklevel=5)  # ... <- _parse_yahoo <- load <- caller
        tables.append(kept)
        messages += notes
        n_dropped += len(read) - len(kept)
    rating_log = build_rating_log("yahoo-r3", tables[0], STAR_SCALE, extra={"test": tables[1]})
    if messages:
        rating_log.meta.update(duplicates_dropped=n_dropped, warnings=messages)
    return rating_log
