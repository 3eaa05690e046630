"""Transition logs: a policy's decisions, with their propensities, recorded on simulated users.

A :class:`TransitionLog` is what off-policy evaluation (:mod:`recgym.evaluation.ope`)
and offline RL read: per decision the observation, the action, the reward, the
next observation, ``terminated`` / ``truncated``, the **propensity** of the action
under the logging policy and the **action mask** the policy chose under. It is
recorded by :func:`record_transitions` (one episode per user, as the online
protocol plays them) and written in Minari's format by
:mod:`recgym.experiments.transition_log` (``recgym log``).

Off-policy evaluation needs each policy's probability of every item, not only
its choice: :class:`ActionProbabilities` is that protocol
(``action_probabilities(observations, masks) -> (B, n_items)``), with adapters:

* :class:`GreedyProbabilities`: a deterministic policy (any SB3-style ``predict``:
  a baseline, a trained agent) as one-hot probabilities;
* :class:`UniformProbabilities`: uniform over the available items (the ``random`` baseline);
* :class:`SoftmaxProbabilities`: ``exp(score / T)`` over a baseline's ``scores``;
* :class:`EpsilonMixture`: ``(1 - eps) * policy + eps * uniform``;
* :class:`SampledPolicy`: any of them as an SB3-style ``predict`` that draws from
  the probabilities, for :func:`~recgym.evaluation.online.evaluate_online` (the
  on-policy truth an off-policy estimate is checked against).

"Available" is the environment's action mask less the items already consumed
in the episode (what :meth:`agents.baselines.BaselineAgent.predict` excludes).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from recgym.envs.config import EpisodeConfig
from recgym.evaluation.online import evaluation_env
from recgym.scenario import Scenario

Observation = dict[str, np.ndarray]


class ActionProbabilities(Protocol):
    """A policy's probability of every item: what off-policy estimators need of a target or logging policy."""

    def action_probabilities(self, observations: Observation, masks: np.ndarray) -> np.ndarray:
        """``(B, n_items)`` probabilities (rows sum to 1, 0 off ``available_items``) for a batch of observations.

        :param observations: a batched dict observation.
        :param masks: ``(B, n_items)`` bool, the environment's action masks.
        """
        ...


def available_items(observations: Observation, masks: np.ndarray) -> np.ndarray:
    """``(B, n_items)`` bool: ``masks`` less the items each row has consumed (padding ids ignored)."""
    masks = np.asarray(masks, dtype=bool)
    n_items = masks.shape[1]
    consumed = np.clip(np.asarray(observations["consumed"], dtype=np.int64), 0, n_items)
    taken = np.zeros((masks.shape[0], n_items + 1), dtype=bool)  # column n_items catches the padding id
    np.put_along_axis(taken, consumed, True, axis=1)
    available = masks & ~taken[:, :n_items]
    empty = ~available.any(axis=1)
    # an episode whose every item is consumed but still masked available (repeats allowed): use the mask
    available[empty] = masks[empty]
    return available


def masked_softmax(scores: np.ndarray, available: np.ndarray, temperature: float) -> np.ndarray:
    """``(B, n_items)`` ``softmax(scores / temperature)`` over the ``available`` items (0 elsewhere)."""
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    logits = np.where(available, np.asarray(scores, dtype=np.float64) / temperature, -np.inf)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def sample_actions(probabilities: np.ndarray, available: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(B,)`` items drawn from each row of ``probabilities`` (inverse-CDF: one uniform draw per row)."""
    draws = rng.random(probabilities.shape[0])[:, None]
    items = np.minimum((probabilities.cumsum(axis=1) < draws).sum(axis=1), probabilities.shape[1] - 1)
    # round-off in the cumulative sum can land past the last available item: take the likeliest one then
    return np.where(available[np.arange(items.size), items], items, probabilities.argmax(axis=1))


def _predict(policy: Any, observations: Observation, masks: np.ndarray) -> np.ndarray:
    """``policy.predict`` (deterministic), given the action masks when its ``predict`` takes them."""
    try:
        takes_masks = "action_masks" in inspect.signature(policy.predict).parameters
    except (TypeError, ValueError):
        takes_masks = False
    if takes_masks:
        return np.asarray(policy.predict(observations, deterministic=True, action_masks=masks)[0])
    return np.asarray(policy.predict(observations, deterministic=True)[0])


class GreedyProbabilities:
    """A deterministic policy's choice as one-hot probabilities.

    :param policy: anything with SB3's ``predict(obs, deterministic=True)`` on batched observations
        (a baseline, a trained discrete agent); it is given the action masks when it takes them.
    :param n_items: the number of items (the action space's size).
    """

    def __init__(self, policy: Any, n_items: int) -> None:
        self.policy = policy
        self.n_items = int(n_items)

    def action_probabilities(self, observations: Observation, masks: np.ndarray) -> np.ndarray:
        actions = _predict(self.policy, observations, masks).reshape(-1).astype(np.int64)
        out = np.zeros((actions.size, self.n_items))
        out[np.arange(actions.size), actions] = 1.0
        return out


class UniformProbabilities:
    """Uniform over the available items: the ``random`` baseline's probabilities."""

    def action_probabilities(self, observations: Observation, masks: np.ndarray) -> np.ndarray:
        available = available_items(observations, masks)
        return available / available.sum(axis=1, keepdims=True)


class SoftmaxProbabilities:
    """``π(j | s) ∝ exp(score_j(s) / T)`` over the available items, from a scorer's ``scores``.

    :param scorer: an object with ``scores(observations) -> (B, n_items)`` (a recgym baseline: greedy-pmf's
        scores are predicted ratings, so ``T`` is in rating units; popularity's are rating counts).
    :param temperature: ``T`` > 0; small ``T`` approaches the scorer's greedy choice, large ``T`` uniform.
    """

    def __init__(self, scorer: Any, temperature: float) -> None:
        if not (isinstance(temperature, (int, float)) and np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        if not callable(getattr(scorer, "scores", None)):
            raise ValueError(f"a softmax policy needs a scorer with scores(observations) (a recgym baseline), got "
                             f"{type(scorer).__name__}")
        self.scorer = scorer
        self.temperature = float(temperature)

    def action_probabilities(self, observations: Observation, masks: np.ndarray) -> np.ndarray:
        if hasattr(self.scorer, "is_fitted") and not self.scorer.is_fitted:
            self.scorer.fit()
        return masked_softmax(self.scorer.scores(observations), available_items(observations, masks),
                              self.temperature)


class EpsilonMixture:
    """``(1 - ε) π(· | s) + ε · uniform(available)``: a policy that explores with probability ``ε``.

    :param policy: the mixed policy's :class:`ActionProbabilities`.
    :param epsilon: ``ε`` in [0, 1].
    """

    def __init__(self, policy: ActionProbabilities, epsilon: float) -> None:
        if not (isinstance(epsilon, (int, float)) and 0.0 <= epsilon <= 1.0):
            raise ValueError(f"epsilon must be a number in [0, 1], got {epsilon!r}")
        self.policy = policy
        self.epsilon = float(epsilon)

    def action_probabilities(self, observations: Observation, masks: np.ndarray) -> np.ndarray:
        uniform = UniformProbabilities().action_probabilities(observations, masks)
        return (1.0 - self.epsilon) * self.policy.action_probabilities(observations, masks) + self.epsilon * uniform


class SampledPolicy:
    """An :class:`ActionProbabilities` policy as an SB3-style ``predict`` that draws its actions.

    It draws whatever ``deterministic`` says: the policy *is* the distribution (as the ``random``
    baseline is random), so :func:`~recgym.evaluation.online.evaluate_online` plays the same
    policy whose value an off-policy estimator estimates.

    :param policy: the probabilities.
    :param seed: seed of the draws.
    """

    def __init__(self, policy: ActionProbabilities, seed: int = 0) -> None:
        self.policy = policy
        self.rng = np.random.default_rng(seed)

    def predict(self, observation: Observation, state: Any = None, episode_start: Any = None,
                deterministic: bool = True, action_masks: np.ndarray | None = None) -> tuple[np.ndarray, None]:
        if action_masks is None:
            raise ValueError("SampledPolicy needs the environment's action_masks (a discrete recgym environment)")
        masks = np.asarray(action_masks, dtype=bool)
        probabilities = self.policy.action_probabilities(observation, masks)
        return sample_actions(probabilities, probabilities > 0, self.rng), None


@dataclass
class TransitionLog:
    """Decisions of a logging policy, one row per step, episodes in order.

    :param observations: dict of ``(N, ...)`` arrays: the observation each action was chosen at.
    :param next_observations: dict of ``(N, ...)`` arrays: the observation after it (the final one of an episode
        is the one that ended it, not the autoreset's).
    :param actions: ``(N,)`` item ids.
    :param rewards: ``(N,)``.
    :param terminated: ``(N,)`` bool (the user left).
    :param truncated: ``(N,)`` bool (the step budget ran out).
    :param propensities: ``(N,)`` the logging policy's probability of the action it took.
    :param action_masks: ``(N, n_items)`` bool, the environment's action masks at the decision.
    :param episode: ``(N,)`` episode index (0..n_episodes-1, one episode per logged user).
    :param step: ``(N,)`` step within the episode (0, 1, ...).
    :param card: how the log was recorded (scenario, users, logging policy, temperature / epsilon, seed).
    """

    observations: Observation
    next_observations: Observation
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    propensities: np.ndarray
    action_masks: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    card: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.actions.size)

    @property
    def n_episodes(self) -> int:
        return int(self.episode.max()) + 1 if self.episode.size else 0

    def episode_returns(self) -> np.ndarray:
        """``(n_episodes,)`` the undiscounted return of each logged episode."""
        return np.bincount(self.episode, weights=self.rewards, minlength=self.n_episodes)

    def check(self) -> None:
        """Raise ``ValueError`` if the arrays disagree in length or the episodes are not whole and in order."""
        n = self.actions.size
        arrays = {"rewards": self.rewards, "terminated": self.terminated, "truncated": self.truncated,
                  "propensities": self.propensities, "action_masks": self.action_masks, "episode": self.episode,
                  "step": self.step, **{f"observations[{k!r}]": v for k, v in self.observations.items()},
                  **{f"next_observations[{k!r}]": v for k, v in self.next_observations.items()}}
        wrong = [f"{name} ({len(value)})" for name, value in arrays.items() if len(value) != n]
        if wrong:
            raise ValueError(f"a transition log's arrays need one row per decision ({n}); these differ: "
                             f"{', '.join(wrong)}")
        if n == 0:
            raise ValueError("the transition log is empty: record at least one episode")
        starts = np.flatnonzero(self.step == 0)
        expected_step = np.arange(n) - starts[np.searchsorted(starts, np.arange(n), side="right") - 1] \
            if starts.size and starts[0] == 0 else None
        if expected_step is None or not np.array_equal(self.step, expected_step) or \
                not np.array_equal(self.episode, np.cumsum(self.step == 0) - 1):
            raise ValueError("a transition log's episodes must be whole and in order: steps 0, 1, ... per episode, "
                             "episodes numbered 0, 1, ... in order")
        if not (np.all(np.isfinite(self.propensities)) and np.all(self.propensities > 0)
                and np.all(self.propensities <= 1 + 1e-9)):
            raise ValueError("propensities must lie in (0, 1]: each is the logging policy's probability of the "
                             "action it took")


def record_transitions(policy: ActionProbabilities, scenario: Scenario, config: EpisodeConfig,
                       users: Any = "test", seed: int = 0, card: dict[str, Any] | None = None) -> TransitionLog:
    """Roll ``policy`` (drawing from its probabilities) over ``users``, one episode each, and log every decision.

    The users play as in :func:`~recgym.evaluation.online.evaluate_online` (the same batched environment,
    users in order, ``seed + chunk start`` seeding each chunk), so the on-policy value of a target on the
    same ``users`` and ``seed`` is the truth an off-policy estimate from this log is graded against.

    :param policy: the logging policy; every action's propensity is its probability there.
    :param scenario: the scenario (its simulator plays the users).
    :param config: the episode configuration (discrete actions).
    :param users: ``"test"`` (default), ``"train"``, ``"all"`` or user ids.
    :param seed: seed of the simulated responses and of the policy's draws.
    :param card: what to record about the log (the scenario's label is added).
    """
    if config.action_mode != "discrete" or config.candidates is not None:
        raise ValueError(f"a transition log needs item actions over every item (action_mode='discrete', no "
                         f"candidates), got action_mode={config.action_mode!r}, candidates={config.candidates!r}")
    env = evaluation_env(scenario, config, users)
    order = np.asarray(env.users, dtype=np.int64)
    rng = np.random.default_rng(seed)
    b = env.num_envs
    columns: dict[str, list[np.ndarray]] = {k: [] for k in
                                            ("actions", "rewards", "terminated", "truncated", "propensities",
                                             "action_masks", "episode", "step")}
    obs_parts: list[Observation] = []
    next_parts: list[Observation] = []
    for chunk_start in range(0, order.size, b):
        chunk = order[chunk_start: chunk_start + b]
        obs, _ = env.reset(seed=seed + chunk_start, options={"users": np.resize(chunk, b)})
        active = np.zeros(b, dtype=bool)
        active[: chunk.size] = True
        step = 0
        while active.any():
            masks = env.action_masks()
            probabilities = policy.action_probabilities(obs, masks)
            available = available_items(obs, masks)
            if np.any(probabilities[~available] > 0):
                raise ValueError(f"the logging policy {type(policy).__name__} gives probability to items that are "
                                 "not available (masked or consumed): its propensities would not be the policy run")
            actions = sample_actions(probabilities, available, rng)
            next_obs, reward, terminated, truncated, info = env.step(actions)
            rows = np.flatnonzero(active)
            final = info.get("_final_obs", np.zeros(b, dtype=bool))
            # a row that ended was autoreset: its next observation is the one that ended it
            ended = {k: np.where(final.reshape((-1,) + (1,) * (v.ndim - 1)), info["final_obs"][k], v)
                     for k, v in next_obs.items()} if final.any() else next_obs
            obs_parts.append({k: v[rows].copy() for k, v in obs.items()})
            next_parts.append({k: v[rows].copy() for k, v in ended.items()})
            columns["actions"].append(actions[rows])
            columns["rewards"].append(np.asarray(reward, dtype=np.float64)[rows])
            columns["terminated"].append(np.asarray(terminated, dtype=bool)[rows])
            columns["truncated"].append(np.asarray(truncated, dtype=bool)[rows])
            columns["propensities"].append(probabilities[rows, actions[rows]])
            columns["action_masks"].append(masks[rows])
            columns["episode"].append(chunk_start + rows)
            columns["step"].append(np.full(rows.size, step, dtype=np.int64))
            active &= ~(terminated | truncated)
            obs = next_obs
            step += 1
    env.close()
    flat = {k: np.concatenate(v) for k, v in columns.items()}
    # rows were appended step by step across a chunk's users: order them by episode, then step
    order_rows = np.lexsort((flat["step"], flat["episode"]))
    keys = obs_parts[0].keys()
    log = TransitionLog(
        observations={k: np.concatenate([p[k] for p in obs_parts])[order_rows] for k in keys},
        next_observations={k: np.concatenate([p[k] for p in next_parts])[order_rows] for k in keys},
        actions=flat["actions"][order_rows].astype(np.int64), rewards=flat["rewards"][order_rows],
        terminated=flat["terminated"][order_rows], truncated=flat["truncated"][order_rows],
        propensities=flat["propensities"][order_rows], action_masks=flat["action_masks"][order_rows],
        episode=flat["episode"][order_rows].astype(np.int64), step=flat["step"][order_rows],
        card={"scenario": scenario.label, **(card or {})},
    )
    log.check()
    return log
