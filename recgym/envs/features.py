"""The feature observation: a float32 vector of fixed length for clients that read a ``Box`` (an MLP).

``observation="features"`` (the ``recgym/<Dataset>-<Simulator>-Flat-v0`` ids)
replaces the dict of item ids, whose numbers mean nothing to a plain network,
by what the scenario's **embedding model** makes of the episode so far. That
model is fitted on the training users' ratings only (``embedding_fit="train"``),
and every user, training or test, is folded in from the ratings the episode has
shown (:func:`recgym.scenario.fold_in_users`), so a test user's held-out ratings
never reach the vector. Its length depends on the embedding dimension ``d``,
the log's genres ``G`` and the candidate count ``K``, never on ``max_steps``.

User block (``2d + 5 + 2G`` numbers):

=========================  =====  ===============================================================
name                       size   meaning
=========================  =====  ===============================================================
``user_factors``           d      fold-in ``U`` from the history window, over the RMS of the
                                  model's fitted user factors
``user_bias``              1      fold-in ``b`` over the rating scale's half range
``taste``                  d      the history items' factors ``V``, weighted by their feedback
                                  and recency (newest weighs most), over the RMS of ``V``
``mean_feedback``          1      mean normalised rating of the history window, [-1, 1]
``liked_fraction``         1      share of the window clicked or purchased (not skipped)
``last_feedback``          1      normalised rating of the newest history item
``progress``               1      steps taken over ``max_steps``, [0, 1]
``genre_taste``            G      genre flags of the history items weighted by feedback and recency
``genre_recent``           G      the same without the feedback: how much of each genre was shown
=========================  =====  ===============================================================

Candidate block (``candidates=K``; 6 numbers per candidate, candidate-major):
``predicted`` (the embedding model's predicted rating of the candidate for the
folded-in user, normalised like the feedback), ``predicted_vs_slate`` (the same
minus its mean over the slate: what a policy choosing among the K compares), ``item_bias`` (``c_j`` over the
half range), ``popularity`` (``log1p`` of the candidate's rating count among the
training users, over the largest), ``similarity`` (cosine of ``V_j`` and
``taste``) and ``genre_repeat`` (the share of the candidate's genres among the
recently shown ones: satiation).

Every value is clipped to ``[-FEATURE_BOUND, FEATURE_BOUND]``, the bounds of the space.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from recgym.envs.config import EpisodeConfig
from recgym.scenario import Scenario, fold_in_users
from simulators.base import Behavior

#: bound of every feature (the Box's low and high); the features are scaled to be O(1) well inside it
FEATURE_BOUND = 10.0
#: weight of a history item relative to the next newer one
RECENCY_DECAY = 0.7
CANDIDATE_FEATURES = ("predicted", "predicted_vs_slate", "item_bias", "popularity", "similarity", "genre_repeat")


class FeatureMap:
    """Turn batched dict observations (and a candidate slate) into float32 feature vectors.

    :param scenario: the scenario; its embedding model, training log and genres give the features.
    :param config: the episode configuration (``max_steps`` and ``candidates``).
    """

    def __init__(self, scenario: Scenario, config: EpisodeConfig) -> None:
        model = scenario.embedding_model
        self.model = model
        self.max_steps = config.max_steps
        self.n_candidates = config.candidates or 0
        self.n_items = scenario.n_items
        scale = scenario.log.scale
        self.midpoint, self.half_range = float(scale.midpoint), float(scale.half_range)
        item_factors = np.asarray(model.item_embeddings, dtype=np.float64)
        # one extra all-zero row: the padding id of the history counts for nothing
        self.item_factors = np.vstack([item_factors, np.zeros((1, item_factors.shape[1]))])
        self.factor_scale = float(np.sqrt(np.mean(item_factors**2))) or 1.0
        seen = scenario.seen_users()
        fitted_users = np.asarray(model.user_embeddings, dtype=np.float64)[seen]
        self.user_scale = float(np.sqrt(np.mean(fitted_users**2))) if fitted_users.size else 1.0
        self.user_scale = self.user_scale or 1.0
        self.item_bias = np.asarray(model.item_bias, dtype=np.float64)
        genres = scenario.log.item_genres()
        genres = np.zeros((self.n_items, 0)) if genres is None else (np.asarray(genres) > 0).astype(np.float64)
        self.genres = np.vstack([genres, np.zeros((1, genres.shape[1]))])
        self.genre_count = np.maximum(genres.sum(axis=1), 1.0)
        # popularity among the training users only: what an agent may know
        counts = np.bincount(scenario.training_log().interactions["item"].to_numpy(), minlength=self.n_items)
        self.popularity = np.log1p(counts) / (np.log1p(counts.max()) or 1.0)
        d, g = item_factors.shape[1], genres.shape[1]
        self.names = (
            [f"user_factors[{i}]" for i in range(d)] + ["user_bias"] + [f"taste[{i}]" for i in range(d)]
            + ["mean_feedback", "liked_fraction", "last_feedback", "progress"]
            + [f"genre_taste[{i}]" for i in range(g)] + [f"genre_recent[{i}]" for i in range(g)]
            + [f"candidate[{k}].{name}" for k in range(self.n_candidates) for name in CANDIDATE_FEATURES]
        )
        self.space = spaces.Box(-FEATURE_BOUND, FEATURE_BOUND, shape=(len(self.names),), dtype=np.float32)

    def encode(self, obs: dict[str, np.ndarray], candidates: np.ndarray | None = None) -> np.ndarray:
        """``(B, dim)`` float32 features of batched dict observations and, with K candidates, their ``(B, K)`` items."""
        items = np.asarray(obs["history_items"], dtype=np.int64)
        mask = np.asarray(obs["history_mask"]).astype(bool) & (items >= 0) & (items < self.n_items)
        items = np.where(mask, items, self.n_items)
        feedback = np.asarray(obs["history_feedback"], dtype=np.float64) * mask
        n = items.shape[1]
        ratings = feedback * self.half_range + self.midpoint
        factors, bias = fold_in_users(self.model, items, ratings, mask)
        recency = mask * RECENCY_DECAY ** np.arange(n - 1, -1, -1, dtype=np.float64)
        weights = recency / np.maximum(recency.sum(axis=1, keepdims=True), 1e-12)
        item_factors = self.item_factors[items]  # (B, N, d)
        taste = np.einsum("bn,bnd->bd", weights * feedback, item_factors)
        count = np.maximum(mask.sum(axis=1), 1)
        liked = (np.asarray(obs["history_behavior"]) != int(Behavior.SKIP)) & mask
        last_time = np.where(mask[:, -1], np.asarray(obs["history_time"], dtype=np.float64)[:, -1], -1.0)
        item_genres = self.genres[items]  # (B, N, G)
        genre_recent = np.einsum("bn,bng->bg", weights, item_genres)
        blocks = [
            factors / self.user_scale,
            (bias / self.half_range)[:, None],
            taste / self.factor_scale,
            (feedback.sum(axis=1) / count)[:, None],
            (liked.sum(axis=1) / count)[:, None],
            feedback[:, -1:],
            np.clip((last_time + 1.0) / self.max_steps, 0.0, 1.0)[:, None],
            np.einsum("bn,bng->bg", weights * feedback, item_genres),
            genre_recent,
        ]
        if self.n_candidates:
            blocks.append(self._candidates(np.asarray(candidates, dtype=np.int64), factors, bias, taste, genre_recent))
        out = np.concatenate(blocks, axis=1)
        return np.clip(out, -FEATURE_BOUND, FEATURE_BOUND).astype(np.float32)

    def _candidates(self, items: np.ndarray, factors: np.ndarray, bias: np.ndarray, taste: np.ndarray,
                    genre_recent: np.ndarray) -> np.ndarray:
        v = self.item_factors[items]  # (B, K, d)
        predicted = self.model.global_mean + bias[:, None] + self.item_bias[items] + np.einsum("bkd,bd->bk", v, factors)
        norms = np.linalg.norm(v, axis=2) * np.linalg.norm(taste, axis=1, keepdims=True)
        similarity = np.einsum("bkd,bd->bk", v, taste) / np.maximum(norms, 1e-12)
        repeat = np.einsum("bkg,bg->bk", self.genres[items], genre_recent) / self.genre_count[items]
        predicted = (predicted - self.midpoint) / self.half_range
        per_candidate = np.stack(
            [predicted, predicted - predicted.mean(axis=1, keepdims=True), self.item_bias[items] / self.half_range,
             self.popularity[items], similarity, repeat],
            axis=2,
        )
        return per_candidate.reshape(items.shape[0], -1)


def draw_candidates(blocked: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``(B, k)`` items drawn uniformly without replacement from each row's available ones, in random order.

    :param blocked: ``(B, n_items)`` True where an item is unavailable (consumed, or outside the candidates).
    :param k: candidates per row.
    :param rng: the environment's generator.

    A row with fewer than ``k`` available items repeats them (a running episode
    always has at least one: it terminates when none is left).
    """
    b, n = blocked.shape
    if b == 1 and 4 * k <= n:
        # the single environment's step: a few rejection draws beat sorting the whole catalogue
        row = blocked[0]
        draws = rng.integers(n, size=4 * k)
        picked = list(dict.fromkeys(int(i) for i in draws[~row[draws]]))[:k]
        if len(picked) == k:
            return np.asarray(picked, dtype=np.int64)[None]
    keys = rng.random((b, n))
    keys[blocked] += 2.0  # available items (keys < 1) sort before every unavailable one
    if k < n:
        part = np.argpartition(keys, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), (b, n))
    order = np.argsort(np.take_along_axis(keys, part, axis=1), axis=1)
    chosen = np.take_along_axis(part, order, axis=1)  # (B, min(k, n)), available ones first
    available = np.minimum((~blocked).sum(axis=1), chosen.shape[1])
    if (available < k).any():
        slots = np.arange(k)[None, :] % np.maximum(available, 1)[:, None]
        chosen = np.take_along_axis(chosen, slots, axis=1)
    return chosen.astype(np.int64)
