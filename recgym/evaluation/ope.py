"""Off-policy evaluation: a target policy's value estimated from a logged policy's transitions.

The value estimated is the target's expected (discounted by ``gamma``, undiscounted by default) **episode
return** on the logged users, the figure the online protocol reports as ``avg_reward_per_episode``
(:func:`~recgym.evaluation.online.evaluate_online` on the same users is the truth). Notation, for
logged episode ``i`` and step ``t``: logging policy ``μ``, target ``π``, per-decision ratio
``ρ_t = π(a_t | s_t) / μ(a_t | s_t)`` and the **per-decision weight** ``w_t = ρ_0 ρ_1 ... ρ_t``, the
product over the prefix (``w_{-1} = 1``); ``q̂(s, a)`` a reward model and
``v̂(s) = Σ_a π(a | s) q̂(s, a)``.

* ``pdis``, per-decision importance sampling (Precup, Sutton & Singh 2000):
  ``V = 1/n Σ_i Σ_t γ^t w_{i,t} r_{i,t}``. Unbiased for any horizon given exact propensities
  and support (``μ(a|s) > 0`` wherever ``π(a|s) > 0``).
* ``wpdis``, self-normalised (weighted) per-decision IS (Precup et al. 2000; Thomas 2015, eq. 3.22):
  ``V = Σ_t γ^t (Σ_i w_{i,t} r_{i,t}) / (Σ_i w_{i,t})``. Biased but consistent; bounded by the rewards.
  An episode that ended is continued in an absorbing state with reward 0 where both policies have one
  action, so its weight carries forward and it stays in later steps' denominators (episodes of
  different lengths: a user who leaves early scores 0 afterwards, as in the online protocol).
* ``dm``, the direct method with a one-step reward model: ``V = 1/n Σ_i Σ_t γ^t v̂(s_{i,t})`` over the
  logged states. No propensities; biased twice over: by the model's error, and because the states
  (and episode lengths) are the logging policy's, not the target's. It is the myopic DM: ``q̂`` is the
  immediate reward, not a fitted Q-function.
* ``fqe``, the direct method with **fitted Q evaluation** (Le, Voloshin & Yue 2019, "Batch policy learning
  under constraints", §4 and Algorithm 3; here its finite-horizon, time-indexed form by backward induction):
  ``V = 1/n Σ_i V̂_0(s_{i,0})``. ``Q̂_t(s, a) = Σ_k c_{t,k} x(s, a)^k`` with ``x`` the reward model's score
  (greedy-pmf's predicted rating) clipped to the range of logged scores the reward model was fitted on (a
  polynomial extrapolated past the data, compounded over the backward steps, runs away), and
  ``k = 0..degree`` (the reward model's degree), and
  ``V̂_t(s) = Σ_a π(a|s) Q̂_t(s, a) = Σ_k c_{t,k} m_k(s)`` with the target-weighted moments
  ``m_k(s) = Σ_a π(a|s) x(s, a)^k`` (over the available items: ``π`` is 0 elsewhere). From the last step
  ``H - 1`` back to 0, ``c_t`` is least squares of ``y = r_t + γ V̂_{t+1}(s_{t+1})`` on the logged
  ``(s_t, a_t)`` at step ``t``; ``V̂_{t+1} = 0`` where the logged episode ended at ``t`` (the user left, or
  the step budget ran out: the return ends with the episode, as in the online protocol and the absorbing
  state of ``wpdis``), so at the log's ``max_steps`` horizon ``H`` the target is the reward alone. A step
  with fewer than ``min_samples`` logged decisions (episodes that left early thin the late steps) is pooled
  with the earlier steps ``t' < t`` nearest to it until the pool has ``min_samples``: every pooled
  decision gets the same target ``r_{t'} + γ V̂_{t+1}(s_{t'+1})``, the ``H - t``-step return-to-go, which
  assumes the dynamics do not depend on the step index (recgym's state carries the history; only the
  budget counts steps). Biased by the features (a polynomial of one score cannot express boredom or
  leaving) and by the logging policy's state distribution, but it models the **return-to-go**, not the
  next reward.
* ``dr``, per-decision doubly robust (Jiang & Li 2016, eq. 9-10; Thomas & Brunskill 2016, eq. 2) with the
  FQE model: ``V = 1/n Σ_i Σ_t γ^t [w_{i,t} (r_{i,t} - Q̂_t(s_{i,t}, a_{i,t})) + w_{i,t-1} V̂_t(s_{i,t})]``,
  the unrolled form of Jiang & Li's recursion ``V_DR(t) = V̂_t(s_t) + ρ_t (r_t + γ V_DR(t+1) - Q̂_t(s_t, a_t))``
  (the ``γ V̂_{t+1}`` inside ``Q̂_t``'s target is what the next step's ``w_t V̂_{t+1}`` term adds back). The
  control variate ``w_{t-1} V̂_t(s_t) - w_t Q̂_t(s_t, a_t)`` has zero mean given exact propensities, so DR is
  unbiased like PDIS whatever the model; with an exact ``Q̂`` its variance comes from the rewards' and
  transitions' noise only, and where every weight is 0 after step 0 it is ``fqe``. An episode whose weight
  dies at step ``t`` keeps ``V̂_t``'s **return-to-go** estimate, not one step of reward.
* ``dr-myopic``, the same recursion with the one-step reward model as ``Q̂`` (``q̂`` and ``v̂`` for every
  ``t``): also unbiased, but an episode whose weight is 0 from step 0 keeps only ``v̂(s_0)``, the model's
  value of the **first** step, which is why it falls far below the truth when no logged episode follows a
  deterministic target (docs/results/ope.md).

**Long horizons.** The per-decision weight is a product over the prefix: when ``π`` and ``μ`` differ
its variance grows exponentially with ``t`` and a few episodes carry all the weight (the estimates'
``effective_sample_size`` reports it, the smallest over steps of ``(Σ_i w_{i,t})^2 / Σ_i w_{i,t}^2``).
``max_weight`` clips each ``w_t`` at a constant (Ionides 2008's truncation applied per decision):
less variance, a bias towards the logged behaviour; ``None`` (default) does not clip.
The self-normalised form bounds each step's term by the rewards instead.

**Intervals**: 95% percentile bootstrap over **episodes** (episodes are independent users; steps within
one are not), the whole estimator recomputed on each resample (``samples`` resamples, seeded). FQE is
**refitted on each resample** (the episode counts weight its least squares; a few small solves per step), so
the ``fqe`` and ``dr`` intervals include the Q-model's fitting variance; the one-step reward model of ``dm``
and ``dr-myopic`` is fitted once on the whole log and the bootstrap resamples episodes given it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recgym.evaluation.transitions import ActionProbabilities, Observation, TransitionLog

#: the estimators, in the order reports list them
ESTIMATORS = ("pdis", "wpdis", "dm", "fqe", "dr", "dr-myopic")
#: estimators that need a reward model (its scorer supplies the features of ``fqe`` and ``dr``)
MODEL_ESTIMATORS = ("dm", "fqe", "dr", "dr-myopic")
#: bootstrap resamples of the episodes
BOOTSTRAP_SAMPLES = 1000
#: FQE pools a step having fewer logged decisions than this with the earlier steps (module docstring)
FQE_MIN_SAMPLES = 30
#: decisions scored at once when target probabilities and the reward model are evaluated on a log
CHUNK = 1024


@dataclass(frozen=True)
class OPEEstimate:
    """One estimator's estimate of a target policy's value.

    :param estimator: one of :data:`ESTIMATORS`.
    :param value: the estimated expected episode return.
    :param low: lower end of the 95% bootstrap interval (over episodes).
    :param high: upper end.
    :param episodes: logged episodes used.
    :param effective_sample_size: the smallest, over steps, of the per-decision weights'
        ``(Σ w)^2 / Σ w^2`` (equal to ``episodes`` when the target is the logging policy; NaN for ``dm`` and ``fqe``).
    :param max_weight: the largest per-decision weight (after clipping; NaN for ``dm`` and ``fqe``).
    """

    estimator: str
    value: float
    low: float
    high: float
    episodes: int
    effective_sample_size: float
    max_weight: float

    def summary(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DecisionArrays:
    """Per-decision quantities of a log under one target: what every estimator reads (flat, ``(N,)``).

    :param episode: episode index of each decision (episodes whole and in order, steps 0, 1, ...).
    :param step: step within the episode.
    :param rewards: logged rewards.
    :param logging_propensities: ``μ(a_t | s_t)``.
    :param target_propensities: ``π(a_t | s_t)``.
    :param model_rewards: ``q̂(s_t, a_t)`` (the model estimators only).
    :param model_values: ``v̂(s_t) = Σ_a π(a | s_t) q̂(s_t, a)`` (the model estimators only).
    :param logged_scores: ``x(s_t, a_t)``, the reward model's score of the logged action (FQE's feature).
    :param target_moments: ``(N, degree + 1)``: ``m_k(s_t) = Σ_a π(a | s_t) x(s_t, a)^k``, ``k = 0..degree``
        (``m_0 = 1``), so that ``V̂_t(s_t) = target_moments @ c_t`` for FQE's coefficients ``c_t``.
    """

    episode: np.ndarray
    step: np.ndarray
    rewards: np.ndarray
    logging_propensities: np.ndarray
    target_propensities: np.ndarray
    model_rewards: np.ndarray | None = None
    model_values: np.ndarray | None = None
    logged_scores: np.ndarray | None = None
    target_moments: np.ndarray | None = None


class RatingRewardModel:
    """``q̂(s, a) = c_0 + c_1 x + c_2 x^2`` with ``x`` the scorer's score of item ``a`` for ``s``.

    With the ``greedy-pmf`` baseline as scorer, ``x`` is the rating the scenario's embedding model predicts
    for the user (folded in from the episode's history for users it was not fitted on), and the quadratic
    maps it to the environment's reward (a rating in [-1, 1] for PMF users; skip 0 / click 1 / purchase 5
    for behaviour users, convex in the rating). The coefficients are least squares on the log's
    ``(x, reward)`` pairs. It knows nothing of boredom, topics or leaving: its errors are the DM's bias.

    :param scorer: an object with ``scores(observations) -> (B, n_items)``.
    :param degree: polynomial degree (2 by default).
    """

    def __init__(self, scorer: Any, degree: int = 2) -> None:
        if not callable(getattr(scorer, "scores", None)):
            raise ValueError(f"a reward model needs a scorer with scores(observations), got {type(scorer).__name__}")
        self.scorer = scorer
        self.degree = int(degree)
        self.coefficients: np.ndarray | None = None
        #: the smallest and largest logged score the model was fitted on (FQE clips its features to them)
        self.score_range: tuple[float, float] | None = None

    def scores(self, observations: Observation) -> np.ndarray:
        """``(B, n_items)`` the scorer's score ``x`` of every item (the model's feature)."""
        if self.coefficients is None:
            raise RuntimeError("fit the reward model on a log first (RatingRewardModel(...).fit(log))")
        return self._scores(observations)

    def _scores(self, observations: Observation) -> np.ndarray:
        if hasattr(self.scorer, "is_fitted") and not self.scorer.is_fitted:
            self.scorer.fit()
        return np.asarray(self.scorer.scores(observations), dtype=np.float64)

    def fit(self, log: TransitionLog) -> "RatingRewardModel":
        """Least squares of the logged rewards on the polynomial of the logged actions' scores."""
        x = np.concatenate([self._scores(_rows(log.observations, sl))[np.arange(sl.stop - sl.start),
                                                                      log.actions[sl]]
                            for sl in _chunks(len(log))])
        design = np.vander(x, self.degree + 1, increasing=True)
        self.coefficients = np.linalg.lstsq(design, log.rewards, rcond=None)[0]
        self.score_range = (float(x.min()), float(x.max()))
        return self

    def predict(self, observations: Observation) -> np.ndarray:
        """``(B, n_items)`` predicted rewards of every item."""
        if self.coefficients is None:
            raise RuntimeError("fit the reward model on a log first (RatingRewardModel(...).fit(log))")
        x = self._scores(observations)
        return np.polynomial.polynomial.polyval(x, self.coefficients)


def _chunks(n: int) -> list[slice]:
    return [slice(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]


def _rows(observations: Observation, rows: slice) -> Observation:
    return {k: v[rows] for k, v in observations.items()}


def decision_arrays(log: TransitionLog, target: ActionProbabilities,
                    reward_model: RatingRewardModel | None = None) -> DecisionArrays:
    """The per-decision quantities of ``log`` under ``target`` (and ``reward_model``, for the model estimators).

    :param log: the logged transitions (propensities of the logging policy included).
    :param target: the target policy's probabilities, evaluated at each logged observation and mask.
    :param reward_model: a fitted reward model (``None``: PDIS and WPDIS only); its scores are also FQE's
        features.
    """
    log.check()
    n = len(log)
    target_p = np.empty(n)
    fitted = reward_model is not None
    model_r = np.empty(n) if fitted else None
    model_v = np.empty(n) if fitted else None
    logged_x = np.empty(n) if fitted else None
    moments = np.empty((n, reward_model.degree + 1)) if fitted else None
    for sl in _chunks(n):
        obs = _rows(log.observations, sl)
        masks = np.asarray(log.action_masks[sl], dtype=bool)
        probabilities = np.asarray(target.action_probabilities(obs, masks), dtype=np.float64)
        if np.any(probabilities[~masks] > 1e-12):
            raise ValueError("the target policy gives probability to items its action mask rules out; its "
                             "action_probabilities must be 0 off the mask (see ActionProbabilities)")
        rows = np.arange(sl.stop - sl.start)
        target_p[sl] = probabilities[rows, log.actions[sl]]
        if fitted:
            x = reward_model.scores(obs)
            predicted = np.polynomial.polynomial.polyval(x, reward_model.coefficients)
            model_r[sl] = predicted[rows, log.actions[sl]]
            # items the target never plays may score ±inf or NaN (a masked scorer): they weigh 0, not 0 * inf
            played = probabilities > 0
            model_v[sl] = np.where(played, probabilities * predicted, 0.0).sum(axis=1)
            # FQE's feature is the score clipped to the range it was fitted on: a polynomial extrapolated past
            # the logged scores, compounded over the steps of backward induction, runs away (a near-greedy log
            # holds few low scores, a uniform target plays mostly those)
            x = np.clip(x, *reward_model.score_range)
            logged_x[sl] = x[rows, log.actions[sl]]
            power = np.ones_like(x)
            for k in range(reward_model.degree + 1):
                moments[sl, k] = np.where(played, probabilities * power, 0.0).sum(axis=1)
                power = power * x
    return DecisionArrays(log.episode, log.step, log.rewards, log.propensities, target_p, model_r, model_v,
                          logged_x, moments)


def _padded(d: DecisionArrays, values: np.ndarray, fill: float) -> np.ndarray:
    """``(n_episodes, horizon)`` ``values`` by episode and step; ``fill`` after an episode ended."""
    n, horizon = int(d.episode.max()) + 1, int(d.step.max()) + 1
    out = np.full((n, horizon), fill, dtype=np.float64)
    out[d.episode, d.step] = values
    return out


def _check(d: DecisionArrays) -> None:
    for name in ("rewards", "logging_propensities", "target_propensities", "step"):
        if len(getattr(d, name)) != len(d.episode):
            raise ValueError(f"{name} has {len(getattr(d, name))} values for {len(d.episode)} decisions")
    if len(d.episode) == 0:
        raise ValueError("no logged decisions to estimate from")
    if not np.all((d.logging_propensities > 0) & (d.logging_propensities <= 1 + 1e-9)):
        raise ValueError("logging propensities must lie in (0, 1]: a logged action the logging policy could not "
                         "take cannot be reweighted")
    if not np.all((d.target_propensities >= 0) & (d.target_propensities <= 1 + 1e-9)):
        raise ValueError("target propensities must lie in [0, 1]")


def per_decision_weights(d: DecisionArrays, max_weight: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(w, w_prev)``, each ``(n_episodes, horizon)``: ``w_t = Π_{k<=t} ρ_k`` (clipped) and ``w_{t-1}``.

    After an episode ends its weight carries forward (the absorbing state's ratio is 1).

    :param max_weight: clip each ``w_t`` at this value (``None``: no clipping).
    """
    if max_weight is not None and not (np.isfinite(max_weight) and max_weight > 0):
        raise ValueError(f"max_weight must be a finite number > 0 or None, got {max_weight!r}")
    ratios = _padded(d, d.target_propensities / d.logging_propensities, 1.0)
    weights = np.cumprod(ratios, axis=1)
    if max_weight is not None:
        weights = np.minimum(weights, max_weight)
    previous = np.concatenate([np.ones((weights.shape[0], 1)), weights[:, :-1]], axis=1)
    return weights, previous


def fqe_features(d: DecisionArrays) -> tuple[np.ndarray, np.ndarray]:
    """FQE's features: ``x(s_t, a_t)^k`` of each logged decision (``Q̂_t = features @ c_t``) and the target's moments
    ``m_k(s_t)`` (``V̂_t = moments @ c_t``), ``k = 0..degree``, each ``(N, degree + 1)``."""
    return np.vander(d.logged_scores, d.target_moments.shape[1], increasing=True), d.target_moments


def fqe_coefficients(d: DecisionArrays, gamma: float = 1.0, counts: np.ndarray | None = None,
                     min_samples: int = FQE_MIN_SAMPLES) -> np.ndarray:
    """Fitted Q evaluation of the target by backward induction: ``(B, H, degree + 1)`` coefficients ``c_t``.

    ``Q̂_t(s, a) = Σ_k c_{t,k} x(s, a)^k`` and ``V̂_t(s) = Σ_k c_{t,k} m_k(s)`` (module docstring, ``fqe``).

    :param d: :func:`decision_arrays` of the log under the target, with a reward model (its scores and moments).
    :param gamma: discount of the return-to-go.
    :param counts: ``(B, n_episodes)`` weights of the episodes in ``B`` fits (bootstrap multiplicities);
        ``None``: one fit, every episode once.
    :param min_samples: a step with fewer logged decisions is pooled with the earlier steps nearest to it.
    """
    if d.logged_scores is None or d.target_moments is None:
        raise ValueError("fitted Q evaluation needs the reward model's scores: pass reward_model to "
                         "decision_arrays")
    if min_samples < 1:
        raise ValueError(f"min_samples must be at least 1, got {min_samples!r}")
    n_episodes, horizon = int(d.episode.max()) + 1, int(d.step.max()) + 1
    counts = np.ones((1, n_episodes)) if counts is None else np.asarray(counts, dtype=np.float64)
    features, value_features = fqe_features(d)
    # the decision after each one in its episode (episodes are whole and in order), -1 where the episode ended
    following = np.arange(1, len(d.episode) + 1)
    has_next = np.zeros(len(d.episode), dtype=bool)
    has_next[:-1] = d.episode[1:] == d.episode[:-1]
    following = np.where(has_next, following, -1)
    per_step = np.bincount(d.step, minlength=horizon)
    coefficients = np.zeros((counts.shape[0], horizon + 1, features.shape[1]))  # c_H = 0: nothing after the log
    for t in range(horizon - 1, -1, -1):
        low = t
        while low > 0 and per_step[low:t + 1].sum() < min_samples:
            low -= 1
        rows = np.flatnonzero((d.step >= low) & (d.step <= t))
        next_rows = following[rows]
        # the (H - t)-step return-to-go of each pooled decision, under the resample's own V̂_{t+1}
        next_values = np.einsum("rk,bk->br", value_features[np.maximum(next_rows, 0)],
                                coefficients[:, t + 1]) * (next_rows >= 0)
        targets = d.rewards[rows][None, :] + gamma * next_values
        weights = counts[:, d.episode[rows]]
        x = features[rows]
        k = x.shape[1]
        # weighted normal equations of every fit at once, as matrix products: (B, R) @ (R, K*K) and (B, R) @ (R, K)
        gram = (weights @ (x[:, :, None] * x[:, None, :]).reshape(len(rows), k * k)).reshape(-1, k, k)
        moment = (weights * targets) @ x
        coefficients[:, t] = np.einsum("bkl,bl->bk", np.linalg.pinv(gram, rcond=1e-12), moment)
    return coefficients[:, :horizon]


def _percentile_interval(replicates: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(replicates, [2.5, 97.5])
    return float(low), float(high)


def _resample_counts(n: int, samples: int, seed: int) -> np.ndarray:
    """``(samples, n)`` how often each episode is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=samples).astype(np.float64)


def estimate(d: DecisionArrays, estimator: str, gamma: float = 1.0, max_weight: float | None = None,
             samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
             min_samples: int = FQE_MIN_SAMPLES) -> OPEEstimate:
    """One estimator's estimate of the target's value from per-decision arrays, with a bootstrap interval.

    :param d: :func:`decision_arrays` of the log under the target.
    :param estimator: one of :data:`ESTIMATORS` (the module docstring gives each formula).
    :param gamma: discount of the return (1: the undiscounted episode return of the online protocol).
    :param max_weight: clip each per-decision weight at this value (``None``: no clipping).
    :param samples: bootstrap resamples of the episodes (0: no interval, NaN ends).
    :param seed: seed of the resamples.
    :param min_samples: FQE's pooling threshold (``fqe`` and ``dr``; :func:`fqe_coefficients`).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    if not (0.0 <= gamma <= 1.0):
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    _check(d)
    rewards = _padded(d, d.rewards, 0.0)
    n, horizon = rewards.shape
    discount = gamma ** np.arange(horizon)
    weights, previous = per_decision_weights(d, max_weight)
    counts = _resample_counts(n, samples, seed) if samples > 0 else np.zeros((0, n))
    if estimator in MODEL_ESTIMATORS and (d.model_rewards is None or d.model_values is None):
        raise ValueError(f"{estimator} needs a reward model: pass reward_model to decision_arrays")
    if estimator == "wpdis":
        numerators, denominators = weights * rewards, weights
        total = denominators.sum(axis=0)
        value = float((discount * np.divide(numerators.sum(axis=0), total, out=np.zeros(horizon),
                                            where=total > 0)).sum())
        boot_num, boot_den = counts @ numerators, counts @ denominators
        replicates = (discount * np.divide(boot_num, boot_den, out=np.zeros_like(boot_num),
                                           where=boot_den > 0)).sum(axis=1)
    elif estimator in ("fqe", "dr"):
        # the full log's fit gives the value; each resample refits FQE on its own episodes (cheap: K x K solves)
        fits = fqe_coefficients(d, gamma, np.concatenate([np.ones((1, n)), counts]), min_samples)
        features, value_features = fqe_features(d)
        # (1 + B, n_episodes), step by step: an episode has at most one decision per step, so memory stays
        # at one row per episode and fit whatever the log's length
        per_episode = np.zeros((fits.shape[0], n))
        for t in range(horizon if estimator == "dr" else 1):
            rows = np.flatnonzero(d.step == t)
            episodes = d.episode[rows]
            values = fits[:, t] @ value_features[rows].T  # V̂_t(s_t)
            if estimator == "fqe":
                per_episode[:, episodes] = values
            else:
                q = fits[:, t] @ features[rows].T  # Q̂_t(s_t, a_t)
                w, w_prev = weights[episodes, t], previous[episodes, t]
                per_episode[:, episodes] += discount[t] * (w * (d.rewards[rows] - q) + w_prev * values)
        value = float(per_episode[0].mean())
        replicates = np.einsum("be,be->b", counts, per_episode[1:]) / n
    else:
        if estimator == "pdis":
            terms = weights * rewards
        else:
            alive = _padded(d, np.ones(len(d.episode)), 0.0)
            values = _padded(d, d.model_values, 0.0)
            if estimator == "dm":
                terms = alive * values
            else:  # dr-myopic: the one-step model as Q̂_t for every t
                terms = alive * (weights * (rewards - _padded(d, d.model_rewards, 0.0)) + previous * values)
        per_episode = terms @ discount
        value = float(per_episode.mean())
        replicates = counts @ per_episode / n
    low, high = _percentile_interval(replicates) if samples > 0 else (float("nan"), float("nan"))
    if estimator in ("dm", "fqe"):
        ess, largest = float("nan"), float("nan")
    else:
        ess = float(np.min(weights.sum(axis=0) ** 2 / np.maximum((weights ** 2).sum(axis=0), 1e-300)))
        largest = float(weights.max())
    return OPEEstimate(estimator, value, low, high, n, ess, largest)


def estimate_all(log: TransitionLog, target: ActionProbabilities, reward_model: RatingRewardModel | None = None,
                 estimators: tuple[str, ...] = ESTIMATORS, gamma: float = 1.0, max_weight: float | None = None,
                 samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
                 min_samples: int = FQE_MIN_SAMPLES) -> dict[str, OPEEstimate]:
    """Each of ``estimators``' estimate of ``target``'s value from ``log``.

    :param log: the logged transitions.
    :param target: the target policy's :class:`~recgym.evaluation.transitions.ActionProbabilities`.
    :param reward_model: a fitted reward model (needed by ``dm``, ``fqe``, ``dr`` and ``dr-myopic``; fit it on
        ``log``: its scores are FQE's features).
    :param estimators: which estimators.
    :param gamma: discount (1: undiscounted episode return, as the online protocol's).
    :param max_weight: clip the per-decision weights (``None``: no clipping).
    :param samples: bootstrap resamples of the episodes.
    :param seed: seed of the resamples.
    :param min_samples: FQE's pooling threshold (:func:`fqe_coefficients`).
    """
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown:
        raise ValueError(f"unknown estimators {unknown}; choose among {', '.join(ESTIMATORS)}")
    needs_model = [e for e in estimators if e in MODEL_ESTIMATORS]
    if needs_model and reward_model is None:
        raise ValueError(f"{', '.join(needs_model)} need a reward model: pass "
                         "reward_model=RatingRewardModel(scorer).fit(log)")
    d = decision_arrays(log, target, reward_model if needs_model else None)
    return {e: estimate(d, e, gamma, max_weight, samples, seed, min_samples) for e in estimators}
