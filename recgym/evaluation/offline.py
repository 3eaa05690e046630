"""DRR's offline evaluation: re-ranking each test user's rated items.

Liu et al. (2018, section 5.2): for each test user the candidate set is the
items that user rated; the trained agent, its parameters frozen, picks items
one by one from the candidates, never repeating, and its state is updated with
the user's logged rating of each pick. The ranked list is scored with
Precision@k, NDCG@k and MAP against the user's liked items (rating >= 4 on 1..5
scales, > 0 on Jester: :meth:`recgym.data.RatingScale.is_liked`).

The protocol builds its own environment from the scenario: a
:class:`~simulators.LoggedReplaySimulator` of the test users (their logged
ratings answer; their candidates are their rated items minus the start items
of the state), with ``unavailable="error"``. Discrete policies are given the
environment's available items (``action_masks``) and must choose among them;
embedding actions are ranked over them. Nothing stands between the policy and
the scored list: no substitution, and a repeated or non-candidate item is an
error, never a score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recgym.envs.config import EpisodeConfig
from recgym.evaluation.metrics import average_precision, ndcg_at_k, precision_at_k, relevance_from_items
from recgym.evaluation.online import Policy, act, bind_policy, evaluation_env
from recgym.scenario import Scenario
from simulators.replay import LoggedReplaySimulator

DEFAULT_KS = (5, 10, 20)
#: bootstrap resamples of the test users for the 95% intervals
BOOTSTRAP_SAMPLES = 1000


def replay_scenario(scenario: Scenario) -> Scenario:
    """The scenario with logged-replay users: answers are the logged ratings, candidates the rated items."""
    replay = LoggedReplaySimulator(embedding_model=scenario.embedding_model).fit(scenario.log)
    return scenario.with_simulator(replay)


def offline_config(config: EpisodeConfig, length: int, n_items: int) -> EpisodeConfig:
    """The episode rules of the protocol: ``length`` positions, no repeats, unavailable items refused.

    The ``consumed`` window of ``config`` is kept, so the policy sees the
    observation space it was trained with.
    """
    if config.allow_repeats:
        raise ValueError("the offline protocol ranks each candidate once: repeats are impossible (allow_repeats=False)")
    if config.slate_size != 1:
        raise ValueError("the offline protocol fills one position per step: use slate_size=1")
    return config.replace(max_steps=int(length), consumed_length=config.window(n_items), unavailable="error")


def rerank_lists(
    policy: Policy, scenario: Scenario, config: EpisodeConfig, users: Any = "test", length: int = 20
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Let ``policy`` rank each user's candidates.

    :param policy: anything with SB3's ``predict`` on batched observations.
    :param scenario: the scenario (its log provides the replayed ratings).
    :param config: the episode configuration the policy was trained with.
    :param users: users to evaluate (default: the test users).
    :param length: positions to fill (fewer when a user has fewer candidates).
    :returns: per user: the ranked items, their logged ratings, the candidate items and their ratings.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    replay = replay_scenario(scenario)
    env = evaluation_env(replay, offline_config(config, length, scenario.n_items), users)
    ratings_of = replay.simulator
    bind_policy(policy, env)
    b = env.num_envs
    users_arr = env.users
    ranked_items: list[np.ndarray] = []
    ranked_ratings: list[np.ndarray] = []
    candidates: list[np.ndarray] = []
    candidate_ratings: list[np.ndarray] = []
    for start in range(0, len(users_arr), b):
        chunk = users_arr[start : start + b]
        rows = np.resize(chunk, b)
        obs, _ = env.reset(seed=start, options={"users": rows})
        available = env.action_masks()[: len(chunk)]
        for i, user in enumerate(chunk):
            items = np.flatnonzero(available[i])
            candidates.append(items)
            candidate_ratings.append(ratings_of.logged_ratings(np.array([user]), items[None])[0].astype(np.float64))
        picked = np.full((b, length), -1, dtype=np.int64)
        rating = np.full((b, length), np.nan)
        active = np.ones(b, dtype=bool)
        for pos in range(length):
            actions = act(policy, obs, env, deterministic=True)
            obs, _, term, trunc, info = env.step(actions)
            picked[active, pos] = info["item"][active]
            rating[active, pos] = info["rating"][active]
            active &= ~(term | trunc)
            if not active[: len(chunk)].any():
                break
        for i in range(len(chunk)):
            keep = picked[i] >= 0
            ranked_items.append(picked[i][keep])
            ranked_ratings.append(rating[i][keep])
    return ranked_items, ranked_ratings, candidates, candidate_ratings


def bootstrap_interval(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of per-user ``values`` (NaN skipped)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(values.size, size=(samples, values.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def evaluate_offline(
    policy: Policy,
    scenario: Scenario,
    config: EpisodeConfig,
    users: Any = "test",
    ks: tuple[int, ...] = DEFAULT_KS,
    intervals: bool = True,
) -> dict[str, Any]:
    """Precision@k, NDCG@k and MAP@k of DRR's re-ranking protocol, with 95% bootstrap intervals over users.

    Relevance is binary (liked or not). Two NDCGs, labelled:

    * ``ndcg@k``: against the ideal order of **all** the user's candidates
      (how close the list is to the best possible list);
    * ``ndcg_list@k``: against the ideal order of the **returned** top-k
      itself (how well the list orders what it retrieved; a list with no liked
      item scores 0). This is the one in the DRR paper's band (0.87-0.90).

    Users without any liked candidate are left out (binary NDCG and AP are
    undefined for them), so every figure averages over the same users;
    ``users`` in the result counts them. ``<metric>_ci95`` holds the 95%
    percentile-bootstrap interval of the mean over those users.

    :param policy: the frozen agent.
    :param scenario: the scenario (test users' logged ratings are replayed).
    :param config: the episode configuration the policy acts in.
    :param users: users to evaluate (default: the test users).
    :param ks: cut-offs; the list is filled up to ``max(ks)``.
    :param intervals: add the bootstrap intervals.
    """
    items, ratings, pools, pool_ratings = rerank_lists(policy, scenario, config, users, length=max(ks))
    scale = scenario.log.scale
    liked_pool = [pool[np.asarray(scale.is_liked(r), dtype=bool)] for pool, r in zip(pools, pool_ratings)]
    keep = np.array([lp.size > 0 for lp in liked_pool])
    if not keep.any():
        raise ValueError("no evaluated user has a liked item among the candidates: offline metrics are undefined")
    relevance = relevance_from_items([i for i, k in zip(items, keep) if k], [lp for lp, k in zip(liked_pool, keep) if k])
    n_rel = np.array([lp.size for lp, k in zip(liked_pool, keep) if k])
    per_user: dict[str, np.ndarray] = {}
    for k in ks:
        per_user[f"precision@{k}"] = precision_at_k(relevance, k)
        per_user[f"ndcg@{k}"] = ndcg_at_k(relevance, k, n_relevant=n_rel)
        per_user[f"ndcg_list@{k}"] = ndcg_at_k(relevance, k, normalise="list")
        per_user[f"map@{k}"] = average_precision(relevance, k, n_relevant=n_rel)
    out: dict[str, Any] = {"users": int(keep.sum())}
    for name, values in per_user.items():
        out[name] = float(np.nanmean(values))
    if intervals:
        for name, values in per_user.items():
            out[f"{name}_ci95"] = list(bootstrap_interval(values))
    return out
