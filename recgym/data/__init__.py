"""Datasets: loaders, the RatingLog form, splits and synthetic logs."""

from recgym.data.rating_log import JESTER_SCALE, STAR_SCALE, RatingLog, RatingScale, build_rating_log
from recgym.data.synthetic import make_synthetic_log

__all__ = [
    "JESTER_SCALE",
    "STAR_SCALE",
    "RatingLog",
    "RatingScale",
    "build_rating_log",
    "make_synthetic_log",
]
