"""Where each user's episode starts, precomputed once per environment.

As in DRR (Liu et al. 2018, section 4.2), an episode begins from the user's
first ``N`` positively rated items in the log, in time order. Precomputing the
padded start arrays for every user turns a reset (of one user or of thousands
in the batched environment) into a gather.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recgym.data.rating_log import RatingLog
from simulators.base import Behavior, UserSimulator


@dataclass
class EpisodeStarts:
    """Padded start state of every user.

    :param items: ``(n_users, N)`` start items, right-aligned (oldest first), padded with ``n_items``.
    :param mask: ``(n_users, N)`` int8, 1 for real start items.
    :param feedback: ``(n_users, N)`` float32 normalised logged reward of the start items.
    :param time: ``(n_users, N)`` float32 step index of the start items (-n .. -1).
    :param n_start: ``(n_users,)`` number of start items.
    :param available: ``(n_users, n_items)`` bool, items that may be recommended at the
        start of an episode: the simulator's candidates minus the start items.
    """

    items: np.ndarray
    mask: np.ndarray
    feedback: np.ndarray
    time: np.ndarray
    n_start: np.ndarray
    available: np.ndarray

    @classmethod
    def build(cls, log: RatingLog, simulator: UserSimulator, history_length: int) -> "EpisodeStarts":
        n_users, n_items, n = simulator.n_users, simulator.n_items, history_length
        if (log.n_users, log.n_items) != (n_users, n_items):
            raise ValueError(
                f"log has {log.n_users} users x {log.n_items} items but the simulator was fitted on "
                f"{n_users} x {n_items}: fit the simulator on a log in the same id space"
            )
        df = log.sorted_interactions()
        liked = np.asarray(log.scale.is_liked(df["rating"].to_numpy()))
        pos = df[liked]
        users = pos["user"].to_numpy()
        # rank of each positive interaction within its user, in time order
        first = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
        counts = np.diff(np.r_[first, len(users)])
        rank = np.arange(len(users)) - np.repeat(first, counts)
        keep = rank < n
        users, rank = users[keep], rank[keep]
        n_start = np.bincount(users, minlength=n_users).astype(np.int64)
        # right-align: the newest start item sits in the last column
        col = (n - n_start[users]) + rank

        items = np.full((n_users, n), n_items, dtype=np.int64)
        mask = np.zeros((n_users, n), dtype=np.int8)
        feedback = np.zeros((n_users, n), dtype=np.float32)
        time = np.zeros((n_users, n), dtype=np.float32)
        items[users, col] = pos["item"].to_numpy()[keep]
        mask[users, col] = 1
        feedback[users, col] = np.asarray(log.scale.to_reward(pos["rating"].to_numpy()[keep]))
        time[users, col] = (rank - n_start[users]).astype(np.float32)

        available = np.ones((n_users, n_items), dtype=bool)
        candidate_users = [u for u in range(n_users) if simulator.candidate_items(u) is not None]
        if candidate_users:
            available[:] = False
            for u in range(n_users):
                cand = simulator.candidate_items(u)
                if cand is None:
                    available[u] = True
                else:
                    available[u, cand] = True
        available[users, items[users, col]] = False
        return cls(items, mask, feedback, time, n_start, available)

    @property
    def behavior(self) -> np.ndarray:
        """Start items were liked in the log: CLICK where real, PAD elsewhere."""
        return (self.mask * int(Behavior.CLICK)).astype(np.int8)

    def eligible_users(self, users: np.ndarray, min_items: int = 1) -> np.ndarray:
        """The users among ``users`` that have at least ``min_items`` items to recommend (a full slate)."""
        users = np.asarray(users, dtype=np.int64)
        return users[self.available[users].sum(axis=1) >= int(min_items)]
