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
* ``dr``, per-decision doubly robust (Jiang & Li 2016, eq. 9-10; Thomas & Brunskill 2016, eq. 2):
  ``V = 1/n Σ_i Σ_t γ^t [w_{i,t} (r_{i,t} - q̂(s_{i,t}, a_{i,t})) + w_{i,t-1} v̂(s_{i,t})]``, the unrolled
  form of Jiang & Li's recursion ``V_DR(t) = v̂(s_t) + ρ_t (r_t + γ V_DR(t+1) - q̂(s_t, a_t))``. With
  ``q̂`` the immediate-reward model (their ``Q̂`` taken myopic), the control variate
  ``w_{t-1} (v̂(s_t) - ρ_t q̂(s_t, a_t))`` has zero mean given exact propensities, so DR is unbiased like
  PDIS whatever ``q̂``, with less variance the better ``q̂`` predicts the immediate reward.

**Long horizons.** The per-decision weight is a product over the prefix: when ``π`` and ``μ`` differ
its variance grows exponentially with ``t`` and a few episodes carry all the weight (the estimates'
``effective_sample_size`` reports it, the smallest over steps of ``(Σ_i w_{i,t})^2 / Σ_i w_{i,t}^2``).
``max_weight`` clips each ``w_t`` at a constant (Ionides 2008's truncation applied per decision):
less variance, a bias towards the logged behaviour; ``None`` (default) does not clip.
The self-normalised form bounds each step's term by the rewards instead.

**Intervals**: 95% percentile bootstrap over **episodes** (episodes are independent users; steps within
one are not), the whole estimator recomputed on each resample (``samples`` resamples, seeded).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recgym.evaluation.transitions import ActionProbabilities, Observation, TransitionLog

#: the estimators, in the order reports list them
ESTIMATORS = ("pdis", "wpdis", "dm", "dr")
#: bootstrap resamples of the episodes
BOOTSTRAP_SAMPLES = 1000
#: decisions scored at once when target probabilities and the reward model are evaluated on a log
CHUNK = 1024


@dataclass(frozen=True)
class OPEEstimate:
    """One estimator's estimate of a target policy's value.

    :param estimator: ``pdis``, ``wpdis``, ``dm`` or ``dr``.
    :param value: the estimated expected episode return.
    :param low: lower end of the 95% bootstrap interval (over episodes).
    :param high: upper end.
    :param episodes: logged episodes used.
    :param effective_sample_size: the smallest, over steps, of the per-decision weights'
        ``(Σ w)^2 / Σ w^2`` (equal to ``episodes`` when the target is the logging policy; NaN for ``dm``).
    :param max_weight: the largest per-decision weight (after clipping; NaN for ``dm``).
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
    :param model_rewards: ``q̂(s_t, a_t)`` (DM and DR only).
    :param model_values: ``v̂(s_t) = Σ_a π(a | s_t) q̂(s_t, a)`` (DM and DR only).
    """

    episode: np.ndarray
    step: np.ndarray
    rewards: np.ndarray
    logging_propensities: np.ndarray
    target_propensities: np.ndarray
    model_rewards: np.ndarray | None = None
    model_values: np.ndarray | None = None


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
    """The per-decision quantities of ``log`` under ``target`` (and ``reward_model``, for DM and DR).

    :param log: the logged transitions (propensities of the logging policy included).
    :param target: the target policy's probabilities, evaluated at each logged observation and mask.
    :param reward_model: a fitted reward model (``None``: PDIS and WPDIS only).
    """
    log.check()
    target_p = np.empty(len(log))
    model_r = np.empty(len(log)) if reward_model is not None else None
    model_v = np.empty(len(log)) if reward_model is not None else None
    for sl in _chunks(len(log)):
        obs = _rows(log.observations, sl)
        probabilities = np.asarray(target.action_probabilities(obs, log.action_masks[sl]), dtype=np.float64)
        rows = np.arange(sl.stop - sl.start)
        target_p[sl] = probabilities[rows, log.actions[sl]]
        if reward_model is not None:
            predicted = reward_model.predict(obs)
            model_r[sl] = predicted[rows, log.actions[sl]]
            model_v[sl] = (probabilities * predicted).sum(axis=1)
    return DecisionArrays(log.episode, log.step, log.rewards, log.propensities, target_p, model_r, model_v)


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


def _percentile_interval(replicates: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(replicates, [2.5, 97.5])
    return float(low), float(high)


def _resample_counts(n: int, samples: int, seed: int) -> np.ndarray:
    """``(samples, n)`` how often each episode is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=samples).astype(np.float64)


def estimate(d: DecisionArrays, estimator: str, gamma: float = 1.0, max_weight: float | None = None,
             samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> OPEEstimate:
    """One estimator's estimate of the target's value from per-decision arrays, with a bootstrap interval.

    :param d: :func:`decision_arrays` of the log under the target.
    :param estimator: ``pdis``, ``wpdis``, ``dm`` or ``dr`` (the module docstring gives each formula).
    :param gamma: discount of the return (1: the undiscounted episode return of the online protocol).
    :param max_weight: clip each per-decision weight at this value (``None``: no clipping).
    :param samples: bootstrap resamples of the episodes (0: no interval, NaN ends).
    :param seed: seed of the resamples.
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
    if estimator == "wpdis":
        numerators, denominators = weights * rewards, weights
        total = denominators.sum(axis=0)
        value = float((discount * np.divide(numerators.sum(axis=0), total, out=np.zeros(horizon),
                                            where=total > 0)).sum())
        boot_num, boot_den = counts @ numerators, counts @ denominators
        replicates = (discount * np.divide(boot_num, boot_den, out=np.zeros_like(boot_num),
                                           where=boot_den > 0)).sum(axis=1)
    else:
        if estimator == "pdis":
            terms = weights * rewards
        else:
            if d.model_rewards is None or d.model_values is None:
                raise ValueError(f"{estimator} needs a reward model: pass reward_model to decision_arrays")
            alive = _padded(d, np.ones(len(d.episode)), 0.0)
            values = _padded(d, d.model_values, 0.0)
            if estimator == "dm":
                terms = alive * values
            else:
                terms = alive * (weights * (rewards - _padded(d, d.model_rewards, 0.0)) + previous * values)
        per_episode = terms @ discount
        value = float(per_episode.mean())
        replicates = counts @ per_episode / n
    low, high = _percentile_interval(replicates) if samples > 0 else (float("nan"), float("nan"))
    if estimator == "dm":
        ess, largest = float("nan"), float("nan")
    else:
        ess = float(np.min(weights.sum(axis=0) ** 2 / np.maximum((weights ** 2).sum(axis=0), 1e-300)))
        largest = float(weights.max())
    return OPEEstimate(estimator, value, low, high, n, ess, largest)


def estimate_all(log: TransitionLog, target: ActionProbabilities, reward_model: RatingRewardModel | None = None,
                 estimators: tuple[str, ...] = ESTIMATORS, gamma: float = 1.0, max_weight: float | None = None,
                 samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict[str, OPEEstimate]:
    """Each of ``estimators``' estimate of ``target``'s value from ``log``.

    :param log: the logged transitions.
    :param target: the target policy's :class:`~recgym.evaluation.transitions.ActionProbabilities`.
    :param reward_model: a fitted reward model (needed by ``dm`` and ``dr``; fit it on ``log``).
    :param estimators: which estimators.
    :param gamma: discount (1: undiscounted episode return, as the online protocol's).
    :param max_weight: clip the per-decision weights (``None``: no clipping).
    :param samples: bootstrap resamples of the episodes.
    :param seed: seed of the resamples.
    """
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown:
        raise ValueError(f"unknown estimators {unknown}; choose among {', '.join(ESTIMATORS)}")
    needs_model = [e for e in estimators if e in ("dm", "dr")]
    if needs_model and reward_model is None:
        raise ValueError(f"{', '.join(needs_model)} need a reward model: pass "
                         "reward_model=RatingRewardModel(scorer).fit(log)")
    d = decision_arrays(log, target, reward_model if needs_model else None)
    return {e: estimate(d, e, gamma, max_weight, samples, seed) for e in estimators}
