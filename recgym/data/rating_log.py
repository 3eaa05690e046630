"""The one in-memory form every dataset is turned into: :class:`RatingLog`.

A ``RatingLog`` holds explicit-feedback interactions with contiguous integer
ids (``0 .. n_users-1`` and ``0 .. n_items-1``), the maps back to the raw ids
of the source files, optional item and user side information, and the
:class:`RatingScale` that says how a rating becomes a reward.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from recgym.data.errors import MalformedFileError

INTERACTION_COLUMNS = ("user", "item", "rating", "timestamp")
#: Optional interactions column of a multi-behaviour log: the behaviour type of each interaction as a
#: ``simulators.base.Behavior`` code (1 skip, 2 click, 3 purchase). Logs recorded in a behaviour
#: environment and MovieLens ratings read as behaviours carry it
#: (:mod:`recgym.experiments.behavior_log`); the pretraining windows report it in ``history_behavior``.
BEHAVIOR_COLUMN = "behavior"

#: What to do with several ratings of one (user, item) pair, the ``duplicates=``
#: option of every loader of user data: keep the latest, or refuse the input.
DUPLICATE_POLICIES = ("latest", "error")


@dataclass(frozen=True)
class RatingScale:
    """The range of a dataset's ratings and the reward normalisation.

    The reward of a rating ``r`` is ``(r - midpoint) / half_range``, which maps
    the scale onto ``[-1, 1]``: ``(r - 3) / 2`` for 1..5 stars (DRR, Liu et al.
    2018, section 4.1) and ``r / 10`` for Jester's -10..10. An interaction is
    *liked* (positive feedback, relevant for ranking metrics) when its reward is
    strictly positive: rating >= 4 on a 1..5 scale, rating > 0 on Jester.

    :param low: smallest possible rating.
    :param high: largest possible rating.
    :param discrete: whether ratings are integers (stars) or continuous (Jester).
    """

    low: float
    high: float
    discrete: bool = True

    def __post_init__(self) -> None:
        if not np.isfinite(self.low) or not np.isfinite(self.high) or self.high <= self.low:
            raise ValueError(
                f"RatingScale needs finite low < high, got low={self.low}, high={self.high}"
            )

    @property
    def midpoint(self) -> float:
        return (self.low + self.high) / 2.0

    @property
    def half_range(self) -> float:
        return (self.high - self.low) / 2.0

    def to_reward(self, rating: np.ndarray | float) -> np.ndarray | float:
        """Normalise ratings to rewards in ``[-1, 1]``."""
        return (np.asarray(rating, dtype=np.float64) - self.midpoint) / self.half_range

    def from_reward(self, reward: np.ndarray | float) -> np.ndarray | float:
        """Inverse of :meth:`to_reward`."""
        return np.asarray(reward, dtype=np.float64) * self.half_range + self.midpoint

    def is_liked(self, rating: np.ndarray | float) -> np.ndarray | bool:
        """Positive feedback: the normalised reward is > 0."""
        return np.asarray(rating) > self.midpoint

    def clip(self, rating: np.ndarray) -> np.ndarray:
        return np.clip(rating, self.low, self.high)


STAR_SCALE = RatingScale(1.0, 5.0, discrete=True)
JESTER_SCALE = RatingScale(-10.0, 10.0, discrete=False)


@dataclass
class RatingLog:
    """Explicit-feedback interactions with contiguous ids and side information.

    :param name: dataset name (``"ml-100k"``, ``"jester"``, ...).
    :param interactions: DataFrame with columns ``user`` (int64, contiguous),
        ``item`` (int64, contiguous), ``rating`` (float64) and ``timestamp``
        (float64 Unix seconds, NaN where the source has no time); optionally
        :data:`BEHAVIOR_COLUMN` (a multi-behaviour log's behaviour codes).
    :param scale: the rating scale and reward normalisation.
    :param user_ids: raw user id of each contiguous user id (length ``n_users``).
    :param item_ids: raw item id of each contiguous item id (length ``n_items``).
    :param item_features: optional DataFrame indexed by contiguous item id
        (MovieLens: ``title``, ``year`` and one 0/1 column per genre named
        ``genre:<Name>``; Jester: ``text``).
    :param user_features: optional DataFrame indexed by contiguous user id
        (MovieLens demographics).
    :param extra: named extra interaction tables in the same id space, such as
        Yahoo! R3's random-exposure ``"test"`` set.
    :param meta: provenance and loading notes (source directory, file
        checksums, number of clipped ratings, ...); free-form, may be empty.
    """

    name: str
    interactions: pd.DataFrame
    scale: RatingScale
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_features: pd.DataFrame | None = None
    user_features: pd.DataFrame | None = None
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in INTERACTION_COLUMNS if c not in self.interactions.columns]
        if missing:
            raise ValueError(
                f"RatingLog {self.name!r}: interactions lack columns {missing}; "
                f"expected {list(INTERACTION_COLUMNS)}"
            )
        self.user_ids = np.asarray(self.user_ids)
        self.item_ids = np.asarray(self.item_ids)

    # -- sizes -----------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return int(len(self.user_ids))

    @property
    def n_items(self) -> int:
        return int(len(self.item_ids))

    def __len__(self) -> int:
        return int(len(self.interactions))

    @property
    def density(self) -> float:
        return len(self) / max(1, self.n_users * self.n_items)

    @property
    def has_timestamps(self) -> bool:
        return bool(self.interactions["timestamp"].notna().any())

    def __repr__(self) -> str:
        return (
            f"RatingLog(name={self.name!r}, n_users={self.n_users}, n_items={self.n_items}, "
            f"n_ratings={len(self)}, scale=[{self.scale.low:g}, {self.scale.high:g}])"
        )

    # -- side information --------------------------------------------------------
    @property
    def genre_names(self) -> list[str]:
        """Names of the item genre flags (MovieLens), else an empty list."""
        if self.item_features is None:
            return []
        return [c.split(":", 1)[1] for c in self.item_features.columns if c.startswith("genre:")]

    def item_genres(self) -> np.ndarray | None:
        """``(n_items, n_genres)`` 0/1 matrix of genre flags, or None without genres."""
        if not self.genre_names:
            return None
        cols = [f"genre:{g}" for g in self.genre_names]
        return (
            self.item_features.reindex(range(self.n_items))[cols].fillna(0).to_numpy(np.float32)
        )

    # -- views ----------------------------------------------------------------------
    @property
    def rewards(self) -> np.ndarray:
        """Normalised reward of each interaction, in ``[-1, 1]``."""
        return np.asarray(self.scale.to_reward(self.interactions["rating"].to_numpy()))

    def rating_histogram(self, bins: int | None = None) -> pd.Series:
        """Counts per rating value (discrete scales) or per equal-width bin."""
        ratings = self.interactions["rating"]
        if self.scale.discrete and bins is None:
            return ratings.value_counts().sort_index()
        edges = np.linspace(self.scale.low, self.scale.high, (bins or 20) + 1)
        return pd.cut(ratings, edges, include_lowest=True).value_counts().sort_index()

    def with_interactions(self, interactions: pd.DataFrame, name: str | None = None) -> "RatingLog":
        """A log in the same id space with other interactions (used by splits)."""
        return RatingLog(
            name=name or self.name,
            interactions=interactions.reset_index(drop=True),
            scale=self.scale,
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            item_features=self.item_features,
            user_features=self.user_features,
            extra=dict(self.extra),
            meta=dict(self.meta),
        )

    def split_table(self, name: str) -> "RatingLog":
        """The named extra table (e.g. Yahoo! R3's ``"test"``) as a RatingLog."""
        if name not in self.extra:
            raise KeyError(
                f"RatingLog {self.name!r} has no extra table {name!r}; available: {sorted(self.extra)}"
            )
        return self.with_interactions(self.extra[name], name=f"{self.name}:{name}")

    def user_item_matrix(self) -> "np.ndarray":
        """Dense ``(n_users, n_items)`` float32 rating matrix, NaN where unrated."""
        m = np.full((self.n_users, self.n_items), np.nan, dtype=np.float32)
        df = self.interactions
        m[df["user"].to_numpy(), df["item"].to_numpy()] = df["rating"].to_numpy(np.float32)
        return m

    def sorted_interactions(self) -> pd.DataFrame:
        """Interactions sorted by user, then time (then original order)."""
        df = self.interactions
        order = np.lexsort(
            (np.arange(len(df)), df["timestamp"].fillna(0).to_numpy(), df["user"].to_numpy())
        )
        return df.iloc[order].reset_index(drop=True)


def build_rating_log(
    name: str,
    raw: pd.DataFrame,
    scale: RatingScale,
    item_features: pd.DataFrame | None = None,
    user_features: pd.DataFrame | None = None,
    extra: Mapping[str, pd.DataFrame] | None = None,
    all_user_ids: np.ndarray | None = None,
    all_item_ids: np.ndarray | None = None,
) -> RatingLog:
    """Map raw ids to contiguous ids and assemble a :class:`RatingLog`.

    :param raw: DataFrame with columns ``user``, ``item``, ``rating`` and
        optionally ``timestamp``, holding *raw* ids.
    :param item_features: indexed by raw item id; re-indexed to contiguous ids.
    :param user_features: indexed by raw user id; re-indexed to contiguous ids.
    :param extra: extra raw tables in the same raw id space (their ids must be
        known from ``raw`` or from ``all_user_ids`` / ``all_item_ids``).
    :param all_user_ids: raw user ids to include even without ratings in ``raw``.
    :param all_item_ids: raw item ids to include even without ratings in ``raw``.
    """
    extra = dict(extra or {})
    frames = [raw, *extra.values()]
    users = np.unique(np.concatenate([f["user"].to_numpy() for f in frames]))
    items = np.unique(np.concatenate([f["item"].to_numpy() for f in frames]))
    if all_user_ids is not None:
        users = np.unique(np.concatenate([users, np.asarray(all_user_ids)]))
    if all_item_ids is not None:
        items = np.unique(np.concatenate([items, np.asarray(all_item_ids)]))

    def convert(frame: pd.DataFrame) -> pd.DataFrame:
        ts = frame["timestamp"] if "timestamp" in frame.columns else np.nan
        return pd.DataFrame(
            {
                "user": np.searchsorted(users, frame["user"].to_numpy()).astype(np.int64),
                "item": np.searchsorted(items, frame["item"].to_numpy()).astype(np.int64),
                "rating": frame["rating"].to_numpy(np.float64),
                "timestamp": pd.Series(ts, index=frame.index, dtype=np.float64).to_numpy(),
            }
        )

    def reindex(features: pd.DataFrame | None, raw_ids: np.ndarray) -> pd.DataFrame | None:
        if features is None:
            return None
        out = features.reindex(raw_ids)
        out.index = pd.RangeIndex(len(raw_ids))
        return out

    return RatingLog(
        name=name,
        interactions=convert(raw),
        scale=scale,
        user_ids=users,
        item_ids=items,
        item_features=reindex(item_features, items),
        user_features=reindex(user_features, users),
        extra={k: convert(v) for k, v in extra.items()},
    )


def check_duplicates_policy(duplicates: str) -> None:
    """Raise a ValueError unless ``duplicates`` is one of :data:`DUPLICATE_POLICIES`."""
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(
            f"duplicates must be 'latest' or 'error', got {duplicates!r}: 'latest' keeps the latest "
            "rating of each (user, item) pair, 'error' refuses input with repeated pairs"
        )


def show_value(value: Any, limit: int = 60) -> str:
    """``repr`` of a value for an error message: numpy scalars as Python values
    (``196``, not ``np.int64(196)``), shortened to ``limit`` characters."""
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def drop_duplicate_ratings(
    raw: pd.DataFrame,
    duplicates: str,
    source: str,
    path: Path | None = None,
    row_labels: Sequence[Any] | None = None,
) -> tuple[pd.DataFrame, str | None]:
    """Keep one rating per (user, item) pair of raw interactions.

    ``"latest"`` keeps the pair's rating with the latest timestamp; ties go to
    the last row, and a missing timestamp (NaN) counts as older than any known
    one, so without timestamps the last row wins. Kept rows keep their order.
    ``"error"`` refuses any repeated pair.

    :param raw: columns ``user``, ``item``, ``rating`` and optionally ``timestamp``.
    :param duplicates: ``"latest"`` or ``"error"``.
    :param source: the log or file named in messages.
    :param path: the file the rows come from, with ``raw``'s index the 0-based
        line number (as from :func:`~recgym.data.textfile.read_table`); errors
        are then :class:`MalformedFileError` naming the line.
    :param row_labels: the caller's label of each row, for messages (default: ``raw``'s index).
    :returns: the kept rows and, when some were dropped, a warning text that says how many.
    :raises ValueError: ``duplicates="error"`` and a pair is repeated, or an unknown policy.
    """
    check_duplicates_policy(duplicates)
    repeated = raw.duplicated(["user", "item"], keep="first").to_numpy()
    if not repeated.any():
        return raw, None
    n_dropped = int(repeated.sum())
    if duplicates == "error":
        later = int(np.flatnonzero(repeated)[0])
        user, item = raw["user"].iloc[later], raw["item"].iloc[later]
        first = int(np.flatnonzero(((raw["user"] == user) & (raw["item"] == item)).to_numpy())[0])
        what = (f"{n_dropped} duplicate rating(s) of one (user, item) pair; the first: "
                f"user {show_value(user)}, item {show_value(item)}")
        fix = "pass duplicates='latest' to keep the latest rating of each pair"
        if path is not None:
            raise MalformedFileError(path, int(raw.index[later]) + 1,
                                     f"{what}, also on line {int(raw.index[first]) + 1}; {fix}")
        labels = raw.index if row_labels is None else row_labels
        rows = f"rows {show_value(labels[first])} and {show_value(labels[later])}"
        raise ValueError(f"{source}: {what}, in {rows}; {fix}")
    n = len(raw)
    times = raw["timestamp"].to_numpy(np.float64) if "timestamp" in raw.columns else np.full(n, np.nan)
    # by time (unknown = oldest), then by row: the last row of each pair is the one to keep
    order = np.lexsort((np.arange(n), np.where(np.isnan(times), -np.inf, times)))
    last_in_order = ~raw.iloc[order].duplicated(["user", "item"], keep="last").to_numpy()
    keep = np.zeros(n, dtype=bool)
    keep[order[last_in_order]] = True
    message = (
        f"{source}: dropped {n_dropped} duplicate rating(s) of the same (user, item) pair, keeping the "
        "latest of each by timestamp (ties: the last row); pass duplicates='error' to refuse such input"
    )
    return raw[keep], message
