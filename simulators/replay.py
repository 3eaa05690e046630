"""Logged replay: DRR's offline re-ranking protocol as an environment.

In DRR's offline evaluation (Liu et al., arXiv 1810.12027, section 4.3) each
test user's candidate set is the items that user rated, and a recommendation is
answered with the logged rating. :class:`LoggedReplaySimulator` is that user:
it knows only the log, answers only for logged (user, item) pairs and exposes
the candidates through :meth:`candidate_items`, so the environment restricts
the action set (and ends the episode when the candidates run out). DRR's actor
still needs item embeddings to score candidates; they come from a PMF fitted
on the same log (or a given fitted one).

Huang et al. (RecSys 2020) point out that restricting actions to rated items
biases evaluation; this simulator makes that protocol explicit rather than
hiding it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from recgym.data.rating_log import RatingLog
from simulators.base import Behavior, Feedback, NotFittedError, UserSimulator
from simulators.pmf import PMFSimulator, gather_user_items

#: Expected reward reported for items the user did not rate: just below the
#: smallest possible reward (-1), so an argmax never prefers a non-candidate
#: while a candidate is left, and the value stays finite in sums and means.
NON_CANDIDATE_REWARD = -1.0 - 1e-3


class LoggedReplaySimulator(UserSimulator):
    """A user who answers only with their logged ratings.

    Reward = the normalised logged rating; behaviour = CLICK if liked (reward > 0)
    else SKIP; users never leave (the environment ends an episode when the
    user's candidates are exhausted).

    :param embedding_model: a fitted :class:`PMFSimulator` on the same id space
        whose factors become ``user_embeddings`` / ``item_embeddings``; if None,
        :meth:`fit` fits one on the same log with ``pmf_params``.
    :param pmf_params: keyword arguments of the internal :class:`PMFSimulator`
        (ignored when ``embedding_model`` is given).
    """

    name = "Replay"

    def __init__(
        self,
        embedding_model: PMFSimulator | None = None,
        pmf_params: dict[str, Any] | None = None,
    ) -> None:
        if embedding_model is not None and not isinstance(embedding_model, PMFSimulator):
            raise TypeError(
                f"LoggedReplaySimulator: embedding_model must be a PMFSimulator, got {type(embedding_model).__name__}"
            )
        self.embedding_model = embedding_model
        self.pmf_params = dict(pmf_params or {})
        self.user_embeddings = None  # type: ignore[assignment]
        self.item_embeddings = None  # type: ignore[assignment]
        self._ratings: np.ndarray | None = None  # (n_users, n_items) float32, NaN = unrated
        self._indptr: np.ndarray | None = None
        self._items: np.ndarray | None = None  # items of each user, sorted, CSR order

    def fit(self, log: RatingLog) -> "LoggedReplaySimulator":
        """Index the logged ratings of ``log`` and get the embeddings.

        :param log: the ratings to replay (for DRR: the test users' ratings,
            with the embedding model fitted on the training users).
        """
        model = self.embedding_model
        if model is None:
            model = PMFSimulator(**self.pmf_params).fit(log)
            self.embedding_model = model
        elif not model.is_fitted:
            model.fit(log)
        if (model.n_users, model.n_items) != (log.n_users, log.n_items):
            raise ValueError(
                f"LoggedReplaySimulator: embedding_model has {model.n_users} users x {model.n_items} items "
                f"but log {log.name!r} has {log.n_users} x {log.n_items}; fit both in one id space"
            )
        df = log.interactions
        self._set_log(
            df["user"].to_numpy(np.int64), df["item"].to_numpy(np.int64), df["rating"].to_numpy(np.float64),
            log.n_users, log.n_items,
        )
        self.scale = log.scale
        self.user_embeddings = model.user_embeddings
        self.item_embeddings = model.item_embeddings
        return self

    def _set_log(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                 n_users: int, n_items: int) -> None:
        self.n_users, self.n_items = int(n_users), int(n_items)
        dense = np.full((self.n_users, self.n_items), np.nan, dtype=np.float32)
        dense[users, items] = ratings
        self._ratings = dense
        # Candidates as CSR over the unique rated pairs, items sorted per user.
        u, i = np.nonzero(~np.isnan(dense))  # row-major: sorted by user, then item
        self._indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(u, minlength=self.n_users), out=self._indptr[1:])
        self._items = i.astype(np.int64)

    def candidate_items(self, user: int) -> np.ndarray:
        """The items ``user`` rated in the log, sorted ascending."""
        self._check_fitted()
        user = int(user)
        if not 0 <= user < self.n_users:
            raise ValueError(f"Replay: user {user} out of range [0, {self.n_users})")
        return self._items[self._indptr[user]: self._indptr[user + 1]]

    def logged_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Logged ratings ``(B, k)`` (float32), NaN where unrated."""
        if self._ratings is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call .fit(log) first")
        return gather_user_items(self._ratings, np.asarray(users), np.asarray(items), self.name)

    def respond(
        self,
        state: dict[str, np.ndarray],
        users: np.ndarray,
        items: np.ndarray,
        rng: np.random.Generator,
    ) -> Feedback:
        """Answer with the logged ratings; ValueError for any unrated (user, item)."""
        users = np.asarray(users)
        rating = self.logged_ratings(users, items).astype(np.float64)
        if np.isnan(rating.sum()):  # one reduction instead of a mask on the hot path
            b, j = np.argwhere(np.isnan(rating))[0]
            raise ValueError(
                f"Replay: user {int(users[b])} never rated item {int(np.asarray(items)[b, j])}; "
                "recommend only from candidate_items(user)"
            )
        reward = rating - self.scale.midpoint  # exactly scale.to_reward(rating)
        reward /= self.scale.half_range
        behavior = (reward > 0.0).view(np.int8) + np.int8(Behavior.SKIP)
        return Feedback(rating, reward, behavior, np.zeros(users.shape[0], dtype=bool))

    def respond_one(
        self, state: dict[str, np.ndarray], user: int, item: int, rng: np.random.Generator
    ) -> tuple[float, float, int, bool]:
        """Scalar :meth:`respond` for one user and one item."""
        if self._ratings is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call .fit(log) first")
        user, item = int(user), int(item)
        if not (0 <= user < self.n_users and 0 <= item < self.n_items):
            return super().respond_one(state, user, item, rng)  # raises the ValueError naming the ids
        rating = float(self._ratings[user, item])
        if math.isnan(rating):
            raise ValueError(
                f"Replay: user {user} never rated item {item}; recommend only from candidate_items(user)"
            )
        reward = (rating - self.scale.midpoint) / self.scale.half_range
        return rating, reward, int(Behavior.CLICK if reward > 0.0 else Behavior.SKIP), False

    def expected_reward(
        self, state: dict[str, np.ndarray], users: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """Normalised logged rating ``(B, m)``; :data:`NON_CANDIDATE_REWARD` where unrated."""
        rating = self.logged_ratings(users, items)
        reward = (rating - self.scale.midpoint) / self.scale.half_range
        return np.where(np.isnan(reward), np.float32(NON_CANDIDATE_REWARD), reward)

    # -- persistence -------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {"pmf_params": dict(self.pmf_params)}

    def state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        u, i = np.nonzero(~np.isnan(self._ratings))
        return {
            "user_factors": self.user_embeddings,
            "item_factors": self.item_embeddings,
            "logged_users": u.astype(np.int64),
            "logged_items": i.astype(np.int64),
            "logged_ratings": self._ratings[u, i].astype(np.float64),
        }

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        try:
            user_f, item_f = arrays["user_factors"], arrays["item_factors"]
            users, items, ratings = arrays["logged_users"], arrays["logged_items"], arrays["logged_ratings"]
        except KeyError as err:
            raise ValueError(f"not a LoggedReplaySimulator file: missing array {err}; refit and save") from err
        self._set_log(users, items, ratings, len(user_f), len(item_f))
        self.user_embeddings = user_f.astype(np.float32)
        self.item_embeddings = item_f.astype(np.float32)
