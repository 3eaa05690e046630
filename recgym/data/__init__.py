"""Datasets: loaders, the RatingLog form, splits and synthetic logs."""

from recgym.data.custom import from_dataframe, load_csv
from recgym.data.errors import (
    ChecksumError,
    DataWarning,
    DatasetNotFoundError,
    MalformedFileError,
    UnknownDatasetError,
)
from recgym.data.fetch import locate
from recgym.data.loading import available_datasets, load
from recgym.data.rating_log import JESTER_SCALE, STAR_SCALE, RatingLog, RatingScale, build_rating_log
from recgym.data.registry import DATASETS, Counts, DatasetInfo, get_info
from recgym.data.splits import official_split, split_by_users, split_random_ratings, split_temporal
from recgym.data.synthetic import make_synthetic_log

__all__ = [
    "DATASETS",
    "JESTER_SCALE",
    "STAR_SCALE",
    "ChecksumError",
    "Counts",
    "DataWarning",
    "DatasetInfo",
    "DatasetNotFoundError",
    "MalformedFileError",
    "RatingLog",
    "RatingScale",
    "UnknownDatasetError",
    "available_datasets",
    "build_rating_log",
    "from_dataframe",
    "get_info",
    "load",
    "load_csv",
    "locate",
    "make_synthetic_log",
    "official_split",
    "split_by_users",
    "split_random_ratings",
    "split_temporal",
]
