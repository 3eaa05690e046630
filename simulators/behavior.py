"""A user with multi-type feedback (skip / click / purchase), boredom and patience.

:class:`BehaviorSimulator` sits on a fitted rating model (a
:class:`~simulators.pmf.PMFSimulator`) and adds the long-term dynamics that make
a myopic recommender sub-optimal. For user ``u`` and recommended item ``j`` at
step ``t`` (all in *reward units*, i.e. normalised ratings in ``[-1, 1]``, so
the same thresholds serve 1..5 stars and Jester's -10..10):

* **Effective rating**: ``e = r(u, j) - w_b * boredom_t(u) . g_j + sigma * eps``,
  ``eps ~ N(0, 1)``, where ``r`` is the rating model's normalised answer (logged
  rating where the rating model uses logged ratings, else the PMF prediction),
  ``g_j`` is item ``j``'s topic vector normalised to sum 1 (so the penalty is
  the mean boredom over ``j``'s genres) and ``w_b`` is ``boredom_weight``.
* **Behaviour**: PURCHASE if ``e >= purchase_threshold``, else CLICK if
  ``e >= click_threshold``, else SKIP (defaults 0.75 and 0.25: 4.5 and 3.5
  stars on 1..5). The reward is ``skip_reward`` / ``click_reward`` /
  ``purchase_reward`` (defaults 0 / 1 / 5, DEERS's skip / click / order rewards,
  Zhao et al. KDD 2018). ``Feedback.rating`` is ``e`` mapped back to the rating
  scale and clipped.
* **Boredom** (per user and topic, in ``[0, 1]``): an exponential moving
  average of exposure, ``boredom_{t+1} = d * boredom_t + (1 - d) * f_t``, with
  ``f_t`` the share of the step's slate carrying each topic (the 0/1 flags of
  the item when ``k = 1``) and ``d = boredom_decay``. Showing a topic again and
  again drives its boredom towards 1; a topic not shown decays geometrically.
* **Patience** (per user, in ``[0, 1]``, starts at ``initial_patience``): a step
  whose slate is all skips costs ``skip_cost``; otherwise the best behaviour of
  the slate restores ``click_recovery`` or ``purchase_recovery``. After the
  update the user leaves with probability
  ``sigmoid(leave_slope * ((1 - patience) - leave_midpoint))``.

* **Satiation** (off in v0; on in :data:`BEHAVIOR_V1`, after SARDINE,
  Deffayet et al. 2023): a decayed exposure count per topic,
  ``c <- satiation_decay * c + f_t``; at ``satiation_threshold`` the topic is
  satiated for ``satiation_duration`` steps and ``c`` restarts from 0. While
  satiated, its items lose ``satiation_weight`` and, while any topic is,
  every item loses ``satiation_global_weight`` (reward units).

Topics are the log's genres (``log.item_genres()``). Logs without genres
(Jester) get topics from spherical k-means on the rating model's item
embeddings (``n_topic_clusters`` clusters, one-hot): items in one cluster are
"near-duplicates" in embedding space, and repeating them bores the user the
same way. Items without any topic never bore.

:meth:`BehaviorSimulator.expected_reward` is the exact one-step expectation
under the Gaussian noise: ``E = R_skip + (R_click - R_skip) Phi((m - c) / sigma)
+ (R_purchase - R_click) Phi((m - p) / sigma)`` with ``m`` the noise-free
effective rating. :meth:`BehaviorSimulator.expected_transition` rolls the
state forward in expectation (boredom and satiation exactly, patience and the
stay probability averaged over the step's behaviours) for planners.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

import numpy as np
from scipy.special import ndtr

from recgym.clustering import kmeans
from recgym.data.rating_log import RatingLog, RatingScale
from simulators.base import Behavior, ExpectedStep, Feedback, UserSimulator, copy_state
from simulators.pmf import PMFSimulator


@dataclass(frozen=True)
class BehaviorConfig:
    """Parameters of :class:`BehaviorSimulator` (thresholds and noise in reward units).

    :param click_threshold: effective rating at and above which the user clicks
        (0.25 = 3.5 stars on 1..5, 2.5 on Jester).
    :param purchase_threshold: effective rating at and above which the user
        purchases (0.75 = 4.5 stars); must be >= ``click_threshold``.
    :param noise_std: standard deviation of the Gaussian noise on the effective
        rating (0.25 = half a star); 0 makes the user deterministic.
    :param skip_reward: reward of a SKIP (DEERS: 0).
    :param click_reward: reward of a CLICK (DEERS: 1).
    :param purchase_reward: reward of a PURCHASE (DEERS's "order": 5).
    :param boredom_decay: ``d`` in ``boredom <- d * boredom + (1 - d) * exposure``,
        in ``[0, 1)``; 0.7 gives a memory of about 3 steps.
    :param boredom_weight: rating penalty (reward units) at full boredom for all
        of an item's topics; 0.8 = 1.6 stars.
    :param initial_patience: patience at the start of an episode, in ``(0, 1]``.
    :param skip_cost: patience lost on a step with no click or purchase, in ``[0, 1]``.
    :param click_recovery: patience regained on a step whose best behaviour is a click.
    :param purchase_recovery: patience regained on a step with a purchase.
    :param leave_midpoint: dissatisfaction ``1 - patience`` at which the leave
        probability is 1/2, in ``[0, 1]``.
    :param leave_slope: steepness of the leave sigmoid (> 0); with the defaults
        a fully patient user leaves with probability ``sigmoid(-6) = 0.25%`` a step.
    :param n_topic_clusters: number of embedding clusters used as topics when
        the log has no genres (>= 2).
    :param cluster_seed: seed of the k-means initialisation for those clusters.
    :param satiation_weight: rating penalty (reward units) on an item all of whose
        topics are *satiated* (SARDINE's temporary loss of interest, Deffayet et
        al. 2023); 0 (the default, the ``-v0`` dynamics) turns satiation off.
    :param satiation_decay: ``lambda`` in the recent-exposure count
        ``c <- lambda * c + f`` of each topic, in ``[0, 1)``.
    :param satiation_threshold: a topic whose count reaches this (> 0) becomes
        satiated and its count restarts from 0.
    :param satiation_duration: steps a topic stays satiated (integer >= 1;
        SARDINE: 5).
    :param satiation_global_weight: rating penalty (reward units) on *every*
        item while any topic is satiated (SARDINE's churn-and-return boredom:
        a satiated user loses interest in the whole session for a while);
        0 (the default) turns it off.
    """

    click_threshold: float = 0.25
    purchase_threshold: float = 0.75
    noise_std: float = 0.25
    skip_reward: float = 0.0
    click_reward: float = 1.0
    purchase_reward: float = 5.0
    boredom_decay: float = 0.7
    boredom_weight: float = 0.8
    initial_patience: float = 1.0
    skip_cost: float = 0.1
    click_recovery: float = 0.05
    purchase_recovery: float = 0.1
    leave_midpoint: float = 0.6
    leave_slope: float = 10.0
    n_topic_clusters: int = 20
    cluster_seed: int = 0
    satiation_weight: float = 0.0
    satiation_decay: float = 0.8
    satiation_threshold: float = 3.0
    satiation_duration: int = 5
    satiation_global_weight: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"BehaviorConfig.{f.name} must be a finite number, got {value!r}")

        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"BehaviorConfig.{name} must be {rule}, got {getattr(self, name)!r}")

        need(-1.0 <= self.click_threshold <= 1.0, "click_threshold", "in [-1, 1] (reward units)")
        need(-1.0 <= self.purchase_threshold <= 1.0, "purchase_threshold", "in [-1, 1] (reward units)")
        need(self.purchase_threshold >= self.click_threshold, "purchase_threshold",
             f">= click_threshold ({self.click_threshold})")
        need(self.noise_std >= 0.0, "noise_std", ">= 0")
        need(self.click_reward >= self.skip_reward, "click_reward", f">= skip_reward ({self.skip_reward})")
        need(self.purchase_reward >= self.click_reward, "purchase_reward",
             f">= click_reward ({self.click_reward})")
        need(0.0 <= self.boredom_decay < 1.0, "boredom_decay", "in [0, 1)")
        need(self.boredom_weight >= 0.0, "boredom_weight", ">= 0")
        need(0.0 < self.initial_patience <= 1.0, "initial_patience", "in (0, 1]")
        need(0.0 <= self.skip_cost <= 1.0, "skip_cost", "in [0, 1]")
        need(0.0 <= self.click_recovery <= 1.0, "click_recovery", "in [0, 1]")
        need(0.0 <= self.purchase_recovery <= 1.0, "purchase_recovery", "in [0, 1]")
        need(0.0 <= self.leave_midpoint <= 1.0, "leave_midpoint", "in [0, 1]")
        need(self.leave_slope > 0.0, "leave_slope", "> 0")
        need(float(self.n_topic_clusters).is_integer() and self.n_topic_clusters >= 2,
             "n_topic_clusters", "an integer >= 2")
        need(self.satiation_weight >= 0.0, "satiation_weight", ">= 0 (0 turns satiation off)")
        need(0.0 <= self.satiation_decay < 1.0, "satiation_decay", "in [0, 1)")
        need(self.satiation_threshold > 0.0, "satiation_threshold", "> 0")
        need(float(self.satiation_duration).is_integer() and self.satiation_duration >= 1,
             "satiation_duration", "an integer >= 1")
        need(self.satiation_global_weight >= 0.0, "satiation_global_weight", ">= 0 (0 turns it off)")

    @property
    def satiates(self) -> bool:
        """Whether topics can become satiated (a satiation weight > 0)."""
        return self.satiation_weight > 0.0 or self.satiation_global_weight > 0.0

    @property
    def behavior_rewards(self) -> np.ndarray:
        """Reward of each :class:`Behavior` code (PAD, SKIP, CLICK, PURCHASE)."""
        return np.array([0.0, self.skip_reward, self.click_reward, self.purchase_reward])

    @property
    def patience_deltas(self) -> np.ndarray:
        """Patience change indexed by the best :class:`Behavior` code of a step."""
        return np.array([0.0, -self.skip_cost, self.click_recovery, self.purchase_recovery])


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF ``Phi(x)``, vectorised (:func:`scipy.special.ndtr`, exact to double precision)."""
    return ndtr(np.asarray(x, dtype=np.float64))


def embedding_topics(embeddings: np.ndarray, n_clusters: int, seed: int, n_iters: int = 30) -> np.ndarray:
    """One-hot topics ``(n_items, n_clusters)`` from spherical k-means on item embeddings.

    Cosine similarity decides the clusters, so items whose embeddings point the
    same way (near-duplicates) share a topic. Deterministic for a given seed.

    :param embeddings: ``(n_items, d)`` item factors.
    :param n_clusters: number of clusters (capped at ``n_items``).
    :param seed: seed of the initial centres (distinct random items).
    :param n_iters: Lloyd iterations.

    The k-means is :func:`recgym.clustering.kmeans` with ``metric="spherical"``.
    """
    labels, centres = kmeans(embeddings, n_clusters, seed=seed, n_iter=n_iters, metric="spherical")
    topics = np.zeros((len(labels), len(centres)), dtype=np.float32)
    topics[np.arange(len(labels)), labels] = 1.0
    return topics


def behaviors_from_ratings(ratings: np.ndarray, scale: RatingScale,
                           config: BehaviorConfig | None = None) -> np.ndarray:
    """The behaviour a noise-free, unbored behaviour user shows for each rating: ``(M,)`` int8 codes.

    The thresholds of :class:`BehaviorConfig` applied to the normalised rating
    itself: PURCHASE at ``purchase_threshold`` and above, CLICK at
    ``click_threshold`` and above, else SKIP. With the defaults on 1..5 stars:
    1-3 stars SKIP ("dislike"), 4 CLICK ("view"), 5 PURCHASE ("like"); this is
    how a rating log is read as a multi-behaviour log
    (:func:`recgym.experiments.behavior_log.rating_behavior_log`), so its codes
    mean what the behaviour environment's do.

    :param ratings: ratings on ``scale``.
    :param scale: the log's rating scale.
    :param config: the thresholds (default: :class:`BehaviorConfig`'s).
    """
    cfg = config if config is not None else BehaviorConfig()
    reward = np.asarray(scale.to_reward(np.asarray(ratings, dtype=np.float64)))
    behavior = np.full(reward.shape, int(Behavior.SKIP), dtype=np.int8)
    behavior[reward >= cfg.click_threshold] = int(Behavior.CLICK)
    behavior[reward >= cfg.purchase_threshold] = int(Behavior.PURCHASE)
    return behavior


def as_behavior_config(config: BehaviorConfig | Mapping[str, Any] | None, base: BehaviorConfig) -> BehaviorConfig:
    """``config`` as a :class:`BehaviorConfig`: ``base`` when None, ``base`` with some fields replaced for a mapping."""
    if config is None:
        return base
    if isinstance(config, Mapping):
        unknown = set(config) - {f.name for f in fields(BehaviorConfig)}
        if unknown:
            raise ValueError(f"BehaviorConfig has no fields {sorted(unknown)}")
        return replace(base, **config)
    if not isinstance(config, BehaviorConfig):
        raise TypeError(f"config must be a BehaviorConfig or a mapping, got {type(config).__name__}")
    return config


class BehaviorSimulator(UserSimulator):
    """Multi-behaviour user with boredom and patience on top of a PMF rating model.

    See the module docstring for the equations and :class:`BehaviorConfig` for
    the parameters. State (per row of the batch): ``"boredom"`` ``(B, n_topics)``
    float64 in ``[0, 1]`` and ``"patience"`` ``(B,)`` float64 in ``[0, 1]``.

    :param config: a :class:`BehaviorConfig` (or a mapping of its fields);
        defaults when None.
    :param rating_model: a :class:`PMFSimulator` giving the ratings; fitted on
        the log by :meth:`fit` if it is not fitted yet. If None, :meth:`fit`
        fits one with ``pmf_params``.
    :param pmf_params: keyword arguments of the internal :class:`PMFSimulator`.
    """

    name = "Behavior"

    def __init__(
        self,
        config: BehaviorConfig | Mapping[str, Any] | None = None,
        rating_model: PMFSimulator | None = None,
        pmf_params: dict[str, Any] | None = None,
    ) -> None:
        config = as_behavior_config(config, BehaviorConfig())
        if rating_model is not None and not isinstance(rating_model, PMFSimulator):
            raise TypeError(f"rating_model must be a PMFSimulator, got {type(rating_model).__name__}")
        self.config = config
        self.rating_model = rating_model
        self.pmf_params = dict(pmf_params or {})
        self.user_embeddings = None  # type: ignore[assignment]
        self.item_embeddings = None  # type: ignore[assignment]
        self.topics: np.ndarray | None = None  # (n_items, G) float64 0/1 flags
        self._topic_mean: np.ndarray | None = None  # rows normalised to sum 1 (or 0)
        self._set_constants()

    def _set_constants(self) -> None:
        cfg = self.config
        self._rewards = cfg.behavior_rewards
        self._deltas = cfg.patience_deltas

    # -- fitting -------------------------------------------------------------------
    def fit(self, log: RatingLog) -> "BehaviorSimulator":
        """Fit (or adopt) the rating model and derive the item topics.

        :param log: the training ratings; its genres become the topics.
        """
        model = self.rating_model
        if model is None:
            model = PMFSimulator(**self.pmf_params)
        if not model.is_fitted:
            model.fit(log)
        if (model.n_users, model.n_items) != (log.n_users, log.n_items):
            raise ValueError(
                f"BehaviorSimulator: rating_model has {model.n_users} users x {model.n_items} items "
                f"but log {log.name!r} has {log.n_users} x {log.n_items}; fit both in one id space"
            )
        genres = log.item_genres()
        if genres is None:
            genres = embedding_topics(model.item_embeddings, int(self.config.n_topic_clusters),
                                      int(self.config.cluster_seed))
        self._adopt(model, np.asarray(genres))
        return self

    def _adopt(self, model: PMFSimulator, topics: np.ndarray) -> None:
        self.rating_model = model
        self.pmf_params = model.get_params()
        self.scale = model.scale
        self.n_users, self.n_items = model.n_users, model.n_items
        self.user_embeddings = model.user_embeddings
        self.item_embeddings = model.item_embeddings
        # float64: both multiply the float64 boredom state on every step.
        self.topics = (np.asarray(topics) > 0).astype(np.float64)
        counts = self.topics.sum(axis=1, keepdims=True)
        self._topic_mean = self.topics / np.where(counts > 0, counts, 1.0)

    @property
    def n_topics(self) -> int:
        self._check_fitted()
        return int(self.topics.shape[1])

    # -- state -----------------------------------------------------------------------
    def initial_state(self, users: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """No boredom and ``initial_patience`` for each of ``users`` (draws nothing from ``rng``).

        With satiation on, also no recent exposure (``"satiation"``) and no
        satiated topic (``"satiated_for"``, steps left), both ``(B, n_topics)``.
        """
        self._check_fitted()
        b = int(np.asarray(users).shape[0])
        state = {
            "boredom": np.zeros((b, self.n_topics)),
            "patience": np.full(b, float(self.config.initial_patience)),
        }
        if self.config.satiates:
            state["satiation"] = np.zeros((b, self.n_topics))
            state["satiated_for"] = np.zeros((b, self.n_topics))
        return state

    def _state_arrays(self, state: dict[str, np.ndarray], batch: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            boredom, patience = state["boredom"], state["patience"]
            if self.config.satiates:
                state["satiation"], state["satiated_for"]
        except KeyError as err:
            raise ValueError(
                f"BehaviorSimulator state lacks {err}: create it with initial_state(users, rng)"
            ) from None
        if boredom.shape[0] != batch or patience.shape[0] != batch:
            raise ValueError(
                f"BehaviorSimulator state is for {patience.shape[0]} users but {batch} were given: "
                "keep one state row per user of the batch"
            )
        return boredom, patience

    # -- the model -------------------------------------------------------------------
    def boredom_penalty(self, boredom: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Rating penalty ``w_b * boredom . g_j`` ``(B, m)`` (reward units) for ``items`` ``(B, m)``."""
        return self._topic_penalty(boredom, items, self.config.boredom_weight)

    def _topic_penalty(self, per_topic: np.ndarray, items: np.ndarray, weight: float) -> np.ndarray:
        """``weight * per_topic . g_j`` ``(B, m)``: the mean of a ``(B, G)`` per-topic value over each item's topics."""
        b, m = items.shape
        # Products then a sum over topics, not einsum: einsum's SIMD summation
        # order depends on memory alignment, and respond_one must agree exactly.
        if m == 1:
            # The env's single-item step: a (B, G) gather and a row sum.
            pen = (per_topic * self._topic_mean[items[:, 0]]).sum(axis=1)[:, None]
        elif m * 4 >= self.n_items:
            # Many items per user (oracle-greedy over the catalogue): one matmul
            # over all items, then a gather, instead of a (B, m, G) topic gather.
            pen = np.take_along_axis(per_topic @ self._topic_mean.T, items, axis=1)
        else:
            # a few items per row (slates, a planner's shortlist): einsum avoids the (B, m, G) product
            pen = np.einsum("bg,bmg->bm", per_topic, self._topic_mean[items])
        pen *= weight
        return pen

    def mean_effective_rating(self, state: dict[str, np.ndarray], users: np.ndarray,
                              items: np.ndarray) -> np.ndarray:
        """Noise-free effective rating ``r(u, j) - w_b * boredom . g_j`` ``(B, m)``, reward units.

        With satiation on, ``- w_s * satiated . g_j`` as well. The expected reward is non-decreasing in it (rewards are ordered skip <=
        click <= purchase), so its argmax is the argmax of :meth:`expected_reward`.
        """
        self._check_fitted()
        users = np.asarray(users)
        self._state_arrays(state, users.shape[0])
        return self._mean_effective(state, users, np.asarray(items))

    def _mean_effective(self, state: dict[str, np.ndarray], users: np.ndarray, items: np.ndarray) -> np.ndarray:
        eff = self.rating_model.response_ratings(users, items).astype(np.float64)
        eff -= self.scale.midpoint  # normalise exactly like scale.to_reward
        eff /= self.scale.half_range
        eff -= self.boredom_penalty(state["boredom"], items)
        if self.config.satiates:
            satiated = self._satiated(state)
            eff -= self._topic_penalty(satiated, items, self.config.satiation_weight)
            if self.config.satiation_global_weight > 0:
                eff -= self.config.satiation_global_weight * satiated.max(axis=1, keepdims=True)
        return eff

    @staticmethod
    def _satiated(state: dict[str, np.ndarray]) -> np.ndarray:
        """``(B, G)`` 1.0 where a topic is satiated now."""
        return (state["satiated_for"] > 0.0).astype(np.float64)

    def _satiate(self, state: dict[str, np.ndarray], exposure: np.ndarray) -> None:
        """Advance satiation in place after a step with topic ``exposure`` ``(B, G)``.

        Running satiations tick down; the recent-exposure count decays and adds
        the exposure; a topic whose count reaches the threshold is satiated for
        ``satiation_duration`` steps and its count restarts from 0.
        """
        cfg = self.config
        timer, count = state["satiated_for"], state["satiation"]
        timer -= 1.0
        np.maximum(timer, 0.0, out=timer)
        count *= cfg.satiation_decay
        count += exposure
        hit = count >= cfg.satiation_threshold
        timer[hit] = float(cfg.satiation_duration)
        count[hit] = 0.0

    def respond(
        self,
        state: dict[str, np.ndarray],
        users: np.ndarray,
        items: np.ndarray,
        rng: np.random.Generator,
    ) -> Feedback:
        """Sample behaviours for ``items`` ``(B, k)``, then update boredom and patience in place.

        Draws ``rng.standard_normal((B, k))`` (noise) then ``rng.random(B)`` (leaving).
        """
        self._check_fitted()
        cfg = self.config
        users = np.asarray(users)
        items = np.asarray(items)
        boredom, patience = self._state_arrays(state, users.shape[0])
        eff = self._mean_effective(state, users, items)  # float64 (B, k)
        noise = rng.standard_normal(eff.shape)
        noise *= cfg.noise_std
        eff += noise
        behavior = (eff >= cfg.click_threshold).view(np.int8) + np.int8(Behavior.SKIP)
        behavior += (eff >= cfg.purchase_threshold).view(np.int8)
        reward = self._rewards[behavior]
        rating = eff * self.scale.half_range
        rating += self.scale.midpoint
        np.maximum(rating, self.scale.low, out=rating)  # np.clip's wrapper costs more than
        np.minimum(rating, self.scale.high, out=rating)  # the two ufuncs on the B = 1 path

        # Boredom: EMA of topic exposure (share of the slate carrying each topic).
        exposure = self.topics[items[:, 0]] if items.shape[1] == 1 else self.topics[items].mean(axis=1)
        boredom *= cfg.boredom_decay
        boredom += (1.0 - cfg.boredom_decay) * exposure
        if cfg.satiates:
            self._satiate(state, exposure)
        # Patience: the slate's best behaviour decides the change.
        best = behavior[:, 0] if items.shape[1] == 1 else behavior.max(axis=1)
        patience += self._deltas[best]
        np.maximum(patience, 0.0, out=patience)
        np.minimum(patience, 1.0, out=patience)
        # Leave probability sigmoid(slope * (dissatisfaction - midpoint)).
        logit = patience * -cfg.leave_slope
        logit += cfg.leave_slope * (1.0 - cfg.leave_midpoint)
        left = rng.random(users.shape[0]) * (1.0 + np.exp(-logit)) < 1.0
        return Feedback(rating, reward, behavior, left)

    def respond_one(
        self, state: dict[str, np.ndarray], user: int, item: int, rng: np.random.Generator
    ) -> tuple[float, float, int, bool]:
        """Scalar :meth:`respond` for one user and one item, on row 0 of ``state``.

        Draws the same random numbers and does the same float64 operations in
        the same order as :meth:`respond` with ``B = k = 1``, so both agree exactly.
        """
        self._check_fitted()
        cfg, scale = self.config, self.scale
        boredom, patience = self._state_arrays(state, 1)
        user, item = int(user), int(item)
        eff = self.rating_model.response_rating_one(user, item)  # validates the ids
        eff = (eff - scale.midpoint) / scale.half_range
        # The same row sum as boredom_penalty's single-item path.
        pen = (boredom[:1] * self._topic_mean[item: item + 1]).sum(axis=1)[0] * cfg.boredom_weight
        eff = float(eff - pen)
        if cfg.satiates:
            satiated = self._satiated(state)[:1]
            pen = (satiated * self._topic_mean[item: item + 1]).sum(axis=1)[0]
            eff = float(eff - pen * cfg.satiation_weight)
            if cfg.satiation_global_weight > 0:
                eff = float(eff - cfg.satiation_global_weight * satiated.max())
        eff += rng.standard_normal() * cfg.noise_std
        behavior = int(Behavior.SKIP) + (eff >= cfg.click_threshold) + (eff >= cfg.purchase_threshold)
        reward = float(self._rewards[behavior])
        rating = min(max(eff * scale.half_range + scale.midpoint, scale.low), scale.high)

        row = boredom[0]
        row *= cfg.boredom_decay
        row += (1.0 - cfg.boredom_decay) * self.topics[item]
        if cfg.satiates:
            self._satiate(state, self.topics[item: item + 1])
        p = min(max(float(patience[0]) + float(self._deltas[behavior]), 0.0), 1.0)
        patience[0] = p
        logit = p * -cfg.leave_slope + cfg.leave_slope * (1.0 - cfg.leave_midpoint)
        left = rng.random() * (1.0 + float(np.exp(-logit))) < 1.0  # np.exp, as in respond
        return rating, reward, behavior, bool(left)

    def leave_probability(self, state: dict[str, np.ndarray]) -> np.ndarray:
        """Probability ``(B,)`` that each user leaves at the current patience."""
        return self._leave_probability(state["patience"])

    @property
    def skip_reward(self) -> float:
        """The configured reward of a SKIP (DEERS: 0)."""
        return float(self.config.skip_reward)

    def expected_reward(
        self, state: dict[str, np.ndarray], users: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """Expected one-step reward ``(B, m)`` under the noise, given the current boredom.

        ``R_skip + (R_click - R_skip) P(e >= c) + (R_purchase - R_click) P(e >= p)``
        with ``P(e >= x) = Phi((m - x) / sigma)`` (an indicator when ``sigma = 0``).
        """
        mean = self.mean_effective_rating(state, users, items)
        return self._reward_from(*self._at_least(mean))

    def _at_least(self, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(P(e >= click_threshold), P(e >= purchase_threshold))`` for noise-free ratings ``mean``."""
        cfg = self.config
        if cfg.noise_std > 0.0:
            return (normal_cdf((mean - cfg.click_threshold) / cfg.noise_std),
                    normal_cdf((mean - cfg.purchase_threshold) / cfg.noise_std))
        return ((mean >= cfg.click_threshold).astype(np.float64),
                (mean >= cfg.purchase_threshold).astype(np.float64))

    def _reward_from(self, p_click: np.ndarray, p_purchase: np.ndarray) -> np.ndarray:
        cfg = self.config
        reward = p_click * (cfg.click_reward - cfg.skip_reward)
        reward += p_purchase * (cfg.purchase_reward - cfg.click_reward)
        reward += cfg.skip_reward
        return reward

    def expected_transition(
        self, state: dict[str, np.ndarray], users: np.ndarray, items: np.ndarray
    ) -> ExpectedStep:
        """The expected reward, next state and stay probability of recommending ``items`` ``(B, k)``.

        Draws nothing and leaves ``state`` alone. Boredom moves exactly as in
        :meth:`respond` (exposure does not depend on the noise). The slate's best
        behaviour is SKIP, CLICK or PURCHASE with probabilities ``q_b`` (items'
        noises are independent: ``P(best < CLICK) = prod_j (1 - P_j(e >= c))``);
        the next patience is the expectation ``sum_b q_b clip(patience + delta_b)``
        and the stay probability ``sum_b q_b (1 - leave(clip(patience + delta_b)))``,
        both exact for one step.
        """
        self._check_fitted()
        cfg = self.config
        users = np.asarray(users)
        items = np.asarray(items)
        boredom, patience = self._state_arrays(state, users.shape[0])
        mean = self._mean_effective(state, users, items)  # (B, k)
        p_click, p_purchase = self._at_least(mean)
        reward = self._reward_from(p_click, p_purchase)

        exposure = self.topics[items[:, 0]] if items.shape[1] == 1 else self.topics[items].mean(axis=1)
        next_state = copy_state(state)
        next_state["boredom"] *= cfg.boredom_decay
        next_state["boredom"] += (1.0 - cfg.boredom_decay) * exposure
        if cfg.satiates:
            self._satiate(next_state, exposure)

        some_click = 1.0 - np.prod(1.0 - p_click, axis=1)  # P(best >= CLICK)
        some_purchase = 1.0 - np.prod(1.0 - p_purchase, axis=1)  # P(best == PURCHASE)
        q = np.stack([1.0 - some_click, some_click - some_purchase, some_purchase], axis=1)  # (B, 3)
        after = np.clip(patience[:, None] + self._deltas[None, 1:], 0.0, 1.0)  # patience after each outcome
        next_state["patience"] = (q * after).sum(axis=1)
        stay = (q * (1.0 - self._leave_probability(after))).sum(axis=1)
        return ExpectedStep(reward, next_state, stay)

    def _leave_probability(self, patience: np.ndarray) -> np.ndarray:
        cfg = self.config
        return 1.0 / (1.0 + np.exp(-cfg.leave_slope * ((1.0 - patience) - cfg.leave_midpoint)))

    # -- persistence -------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "pmf_params": dict(self.pmf_params)}

    def state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        arrays = {f"pmf__{k}": v for k, v in self.rating_model.state_arrays().items()}
        arrays["topics"] = self.topics
        return arrays

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if "topics" not in arrays:
            raise ValueError("not a BehaviorSimulator file: missing array 'topics'; refit and save")
        model = PMFSimulator(**self.pmf_params)
        model.scale = self.scale
        model.load_arrays({k[len("pmf__"):]: v for k, v in arrays.items() if k.startswith("pmf__")})
        self._adopt(model, arrays["topics"])


#: The ``-v1`` behaviour user (``recgym/<Dataset>-Behavior-v1``): long-term dynamics where
#: looking ahead pays. Sources and the reasoning behind each value are in ``docs/simulators.md``.
BEHAVIOR_V1 = BehaviorConfig(
    boredom_weight=0.3,  # the smooth boredom the one-step oracle sees stays, weaker (v0: 0.8)
    satiation_weight=1.0,  # SARDINE's temporary loss of interest: a satiated topic's items lose 2 stars
    satiation_global_weight=1.0,  # SARDINE's churn-and-return boredom: every item loses 2 stars meanwhile
    satiation_decay=0.8,  # with threshold 3: the 5th exposure in 5 steps satiates (SARDINE: 5 clicks in 5 steps)
    satiation_threshold=3.0,
    satiation_duration=5,  # SARDINE: boredom lasts boredom_moving_window = 5 steps
    n_topic_clusters=10,  # logs without genres: SARDINE's 10 topics
)


class BehaviorV1Simulator(BehaviorSimulator):
    """:class:`BehaviorSimulator` with the :data:`BEHAVIOR_V1` dynamics by default (simulator name ``"behavior-v1"``).

    A ``config`` mapping overrides single fields of :data:`BEHAVIOR_V1`; a
    :class:`BehaviorConfig` replaces it whole. Other arguments as for
    :class:`BehaviorSimulator`.
    """

    def __init__(
        self,
        config: BehaviorConfig | Mapping[str, Any] | None = None,
        rating_model: PMFSimulator | None = None,
        pmf_params: dict[str, Any] | None = None,
    ) -> None:
        config = as_behavior_config(config, BEHAVIOR_V1)
        super().__init__(config, rating_model, pmf_params)
