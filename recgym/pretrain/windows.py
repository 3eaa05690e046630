"""A rating log's users as chronological sequences, cut into observations in the environment's format.

Supervised pretraining trains a state encoder on windows of the log: the
observation *before* a target interaction, built exactly as the environment
builds its observations (:mod:`recgym.envs.spaces`), so any registered
:class:`~state_encoders.base.StateEncoder` reads both without a change:

* ``history_items`` / ``history_mask`` / ``history_feedback`` /
  ``history_behavior``: the last ``N`` interactions before the target, oldest
  first, right-aligned and padded with the id ``n_items``; feedback is the
  normalised rating (``scale.to_reward``, in [-1, 1]) and behaviour ``CLICK``
  for a liked item (``scale.is_liked``), ``SKIP`` otherwise, as the PMF and
  replay simulators answer; a multi-behaviour log's own codes (its
  :data:`~recgym.data.rating_log.BEHAVIOR_COLUMN`: skip, click, purchase) where it has them;
* ``history_time``: the interaction's position relative to the target,
  ``-N .. -1`` (newest ``-1``), 0 at padding: the convention of the
  environment's logged start items (:mod:`recgym.envs.episode_starts`), whose
  time is the step index, not the log's timestamp (the observation box is
  ``[-N, C]``, so timestamps would not fit);
* ``positive_items`` / ``negative_items``: the last ``N`` liked / not liked
  items before the target (DRR's window and DEERS's negative queue);
* ``consumed``: the last ``C`` items before the target;
* ``user``: the user id.

With ``C`` the environment's default consumed window for ``N``, a window's
observation lies in the same space as the environment's; a window whose
history is the user's first ``N`` liked items *is* the environment's start
observation of that user (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from recgym.data.rating_log import BEHAVIOR_COLUMN, RatingLog
from recgym.envs.config import EpisodeConfig
from recgym.envs.spaces import ObservationLayout
from simulators.base import Behavior

#: a target needs at least this many earlier interactions (RecBole's augmentation starts at the second item)
MIN_HISTORY = 1


@dataclass(frozen=True)
class UserSequences:
    """Every user's interactions in time order, concatenated user after user.

    Interaction ``g`` (a global index) belongs to ``users[g]``; that user's
    interactions are ``starts[u] .. starts[u] + lengths[u] - 1``.

    :param items: ``(M,)`` item ids.
    :param ratings: ``(M,)`` ratings on the log's scale.
    :param feedback: ``(M,)`` float32 normalised ratings in [-1, 1].
    :param liked: ``(M,)`` bool, ``scale.is_liked`` (rating >= 4 on 1..5 stars, > 0 on Jester); in a
        multi-behaviour log, every behaviour but SKIP (the environment's positive queue).
    :param behaviors: ``(M,)`` int8 :class:`~simulators.base.Behavior` codes: the log's behaviour
        column, else CLICK where liked and SKIP elsewhere (what the rating simulators answer).
    :param timestamps: ``(M,)`` float64 Unix seconds (0 where the log has none).
    :param users: ``(M,)`` user of each interaction.
    :param starts: ``(n_users,)`` first global index of each user (its own length may be 0).
    :param lengths: ``(n_users,)`` interactions per user.
    :param n_items: size of the catalogue (the padding id).
    """

    items: np.ndarray
    ratings: np.ndarray
    feedback: np.ndarray
    liked: np.ndarray
    behaviors: np.ndarray
    timestamps: np.ndarray
    users: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    n_items: int

    @classmethod
    def from_log(cls, log: RatingLog) -> "UserSequences":
        """Sort ``log`` by user, then time, then file order (:meth:`RatingLog.sorted_interactions`)."""
        df = log.sorted_interactions()
        users = df["user"].to_numpy(np.int64)
        ratings = df["rating"].to_numpy(np.float64)
        lengths = np.bincount(users, minlength=log.n_users).astype(np.int64)
        starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
        feedback = np.clip(np.asarray(log.scale.to_reward(ratings)), -1.0, 1.0).astype(np.float32)
        if BEHAVIOR_COLUMN in df.columns:
            behaviors = _behavior_codes(df[BEHAVIOR_COLUMN], log.name)
            liked = behaviors != int(Behavior.SKIP)
        else:
            liked = np.asarray(log.scale.is_liked(ratings), dtype=bool)
            behaviors = np.where(liked, int(Behavior.CLICK), int(Behavior.SKIP)).astype(np.int8)
        return cls(
            items=df["item"].to_numpy(np.int64),
            ratings=ratings,
            feedback=feedback,
            liked=liked,
            behaviors=behaviors,
            timestamps=df["timestamp"].fillna(0).to_numpy(np.float64),
            users=users,
            starts=starts,
            lengths=lengths,
            n_items=int(log.n_items),
        )

    @property
    def n_users(self) -> int:
        return int(self.lengths.size)

    def __len__(self) -> int:
        return int(self.items.size)

    def positions(self) -> np.ndarray:
        """``(M,)`` position of each interaction within its user's sequence (0 = the first)."""
        return np.arange(len(self)) - self.starts[self.users]


class WindowBuilder:
    """Observations (environment format) of the windows that end just before given target interactions.

    :param sequences: the users' chronological sequences.
    :param n_users: the id space's number of users (the observation's ``user`` box).
    :param history_length: ``N``, as the environment's ``history_length``.
    :param consumed_length: ``C``; default: the environment's default window for ``N``
        (:meth:`recgym.envs.config.EpisodeConfig.window`).
    """

    def __init__(self, sequences: UserSequences, n_users: int, history_length: int,
                 consumed_length: int | None = None) -> None:
        config = EpisodeConfig(history_length=history_length, consumed_length=consumed_length)
        self.sequences = sequences
        self.layout = ObservationLayout(n_users=int(n_users), n_items=sequences.n_items,
                                        history_length=config.history_length,
                                        consumed_length=config.window(sequences.n_items))
        self._liked_at = np.flatnonzero(sequences.liked)
        self._disliked_at = np.flatnonzero(~sequences.liked)

    @property
    def observation_space(self) -> spaces.Dict:
        """The environment's observation space for this layout."""
        return self.layout.space()

    def observations(self, targets: np.ndarray, inclusive: bool = False) -> dict[str, np.ndarray]:
        """``(B, ...)`` numpy observations before each target (global indices into the sequences).

        :param inclusive: the windows end *with* each target instead (its last ``N``
            interactions up to and including it: the cloze task's training windows).
        """
        seq, n, c, pad = self.sequences, self.layout.history_length, self.layout.consumed_length, self.layout.pad_item
        targets = np.asarray(targets, dtype=np.int64).reshape(-1)
        start = seq.starts[seq.users[targets]]  # [B]
        ends = targets + 1 if inclusive else targets  # each window holds the interactions before `ends`
        hist, valid = _last(ends, start, n)  # [B, N] global indices, validity
        hist_items = np.where(valid, seq.items[hist], pad)
        positive = self._queue(self._liked_at, ends, start, n)
        negative = self._queue(self._disliked_at, ends, start, n)
        consumed_at, consumed_valid = _last(ends, start, c)
        behavior = seq.behaviors[hist]
        time = np.arange(n, dtype=np.float32) - n  # -N .. -1
        return {
            "user": seq.users[targets][:, None].copy(),
            "history_items": hist_items,
            "history_mask": valid.astype(np.int8),
            "history_feedback": np.where(valid, seq.feedback[hist], 0.0).astype(np.float32),
            "history_behavior": np.where(valid, behavior, int(Behavior.PAD)).astype(np.int8),
            "history_time": np.where(valid, time, 0.0).astype(np.float32),
            "positive_items": positive,
            "positive_mask": (positive != pad).astype(np.int8),
            "negative_items": negative,
            "negative_mask": (negative != pad).astype(np.int8),
            "consumed": np.where(consumed_valid, seq.items[consumed_at], pad),
        }

    def tensors(self, targets: np.ndarray, device: torch.device | str = "cpu",
                inclusive: bool = False) -> dict[str, torch.Tensor]:
        """:meth:`observations` as float32 tensors: what stable-baselines3 hands an encoder (``Box`` -> float)."""
        return {k: torch.as_tensor(v, device=device).float() for k, v in self.observations(targets, inclusive).items()}

    def _queue(self, where: np.ndarray, targets: np.ndarray, start: np.ndarray, n: int) -> np.ndarray:
        """The last ``n`` items among the interactions ``where`` (sorted global indices) before each target."""
        pad = self.layout.pad_item
        if where.size == 0:
            return np.full((targets.size, n), pad, dtype=np.int64)
        hi = np.searchsorted(where, targets)  # entries of `where` before the target
        lo = np.searchsorted(where, start)  # ... and before the user's first interaction
        index = hi[:, None] - n + np.arange(n)  # [B, N] positions in `where`
        valid = index >= lo[:, None]
        return np.where(valid, self.sequences.items[where[np.clip(index, 0, where.size - 1)]], pad)


def _last(targets: np.ndarray, start: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Global indices ``[B, n]`` of the ``n`` interactions before each target (right-aligned) and their validity."""
    index = targets[:, None] - n + np.arange(n)  # [B, n]
    valid = index >= start[:, None]
    return np.where(valid, index, 0), valid


# -- splits ---------------------------------------------------------------------------------


def leave_one_out(sequences: UserSequences, min_history: int = MIN_HISTORY,
                  target_behavior: int | None = None) -> dict[str, np.ndarray]:
    """Chronological leave-one-out: each user's last item tests, the second-last validates, the rest train.

    RecBole's ``split: {LS: valid_and_test}, order: TO``. Every training
    position with at least ``min_history`` earlier interactions is a target
    (RecBole's prefix augmentation); a validation or test target sees every
    earlier interaction (the test history includes the validation item).
    A user too short for a part contributes nothing to it.

    With ``target_behavior`` (a :class:`~simulators.base.Behavior` code, e.g.
    PURCHASE) the test and validation targets are the user's last and
    second-last interactions *of that behaviour* (MB-STR's protocol); the
    training targets are every interaction, of any behaviour, before the
    validation target (:func:`training_cuts`), and the test and validation
    histories hold every behaviour.

    :returns: ``{"train", "valid", "test"}`` -> sorted global indices of the targets.
    """
    pos = sequences.positions()
    eligible = pos >= int(min_history)
    if target_behavior is None:
        length = sequences.lengths[sequences.users]
        return {
            "train": np.flatnonzero(eligible & (pos <= length - 3)),
            "valid": np.flatnonzero(eligible & (pos == length - 2)),
            "test": np.flatnonzero(eligible & (pos == length - 1)),
        }
    from_end = _from_end(sequences, target_behavior)
    cut = training_cuts(sequences, target_behavior)
    return {
        "train": np.flatnonzero(eligible & (np.arange(len(sequences)) < cut[sequences.users])),
        "valid": np.flatnonzero(eligible & (from_end == 1)),
        "test": np.flatnonzero(eligible & (from_end == 0)),
    }


def _from_end(sequences: UserSequences, behavior: int) -> np.ndarray:
    """``(M,)`` how many later interactions of ``behavior`` its user has (-1 where not of that behaviour)."""
    is_target = np.flatnonzero(sequences.behaviors == int(behavior))  # sorted global indices
    users = sequences.users[is_target]
    count = np.bincount(users, minlength=sequences.n_users)  # per user
    first = np.searchsorted(users, np.arange(sequences.n_users))  # first entry of each user in is_target
    out = np.full(len(sequences), -1, dtype=np.int64)
    out[is_target] = count[users] - 1 - (np.arange(is_target.size) - first[users])
    return out


def training_cuts(sequences: UserSequences, target_behavior: int) -> np.ndarray:
    """``(n_users,)`` the global index where each user's training part ends (exclusive).

    The user's second-last ``target_behavior`` interaction (the validation
    target); with only one, the last (the test target); with none, the end of
    the user's sequence (nothing of the user is held out).
    """
    from_end = _from_end(sequences, target_behavior)
    cut = sequences.starts + sequences.lengths  # no target: everything trains
    for rank in (0, 1):  # the second-last overrides the last where it exists
        at = np.flatnonzero(from_end == rank)
        cut[sequences.users[at]] = at
    return cut


def window_ends(sequences: UserSequences, cuts: np.ndarray, stride: int) -> np.ndarray:
    """Global indices ``g`` at which training windows end (inclusive), every ``stride`` interactions.

    For each user, counting back from the last interaction before ``cuts[u]``:
    ``cuts[u] - 1``, ``cuts[u] - 1 - stride``, ... down to the user's first
    interaction. With ``stride`` equal to the window length ``N`` the windows
    tile the training part without overlap (the oldest may be shorter).
    """
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    back = (cuts[sequences.users] - 1) - np.arange(len(sequences))  # [M] distance below the last training item
    return np.flatnonzero((back >= 0) & (back % int(stride) == 0))


def _behavior_codes(column: Any, name: str) -> np.ndarray:
    """A log's behaviour column as int8 codes, refusing anything but SKIP, CLICK and PURCHASE."""
    values = np.asarray(column)
    allowed = (int(Behavior.SKIP), int(Behavior.CLICK), int(Behavior.PURCHASE))
    bad = ~np.isin(values, allowed)
    if bad.any():
        raise ValueError(
            f"log {name!r}: its {BEHAVIOR_COLUMN!r} column holds {values[bad][:5].tolist()}; behaviour codes are "
            f"{allowed} (simulators.base.Behavior: skip, click, purchase); fix the column or drop it"
        )
    return values.astype(np.int8)


def time_ordered_split(
    sequences: UserSequences, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    min_history: int = MIN_HISTORY,
) -> dict[str, np.ndarray]:
    """The targets (interactions with ``min_history`` earlier ones) in global time order, cut ``fractions``.

    RecBole's ``split: {RS: [0.8, 0.1, 0.1]}, order: TO, group_by: None``:
    the oldest 80% train, the next 10% validate, the newest 10% test; ties in
    time keep user order. A target's history is every earlier interaction of
    its user, whatever part it is in (as RecBole's augmentation, done before
    the split).
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    candidates = np.flatnonzero(sequences.positions() >= int(min_history))
    order = candidates[np.lexsort((candidates, sequences.timestamps[candidates]))]
    n_valid, n_test = int(fractions[1] * order.size), int(fractions[2] * order.size)
    n_train = order.size - n_valid - n_test
    return {
        "train": np.sort(order[:n_train]),
        "valid": np.sort(order[n_train : n_train + n_valid]),
        "test": np.sort(order[n_train + n_valid :]),
    }
