"""DRR's offline evaluation: re-ranking each test user's rated items.

Liu et al. (2018, section 5.2): for each test user the candidate set is the
items that user rated; the trained agent, its parameters frozen, picks items
one by one from the candidates, never repeating, and its state is updated with
the user's logged rating of each pick. The ranked list is scored with
Precision@k, NDCG@k and MAP against the user's liked items (rating >= 4 on 1..5
scales, > 0 on Jester: :meth:`recgym.data.RatingScale.is_liked`).

The environment of this protocol is a :class:`~recgym.envs.RecommendationVectorEnv`
over a :class:`~simulators.LoggedReplaySimulator` of the test users: its
candidates are the user's rated items minus the start items of the state.
"""

from __future__ import annotations

import numpy as np

from recgym.evaluation.metrics import average_precision, ndcg_at_k, precision_at_k
from recgym.evaluation.online import Policy, bind_policy

DEFAULT_KS = (5, 10, 20)


def rerank_lists(
    policy: Policy, env, users: np.ndarray | None = None, length: int = 20
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Let ``policy`` rank each user's candidates; return the logged ratings in ranked order.

    :param policy: anything with SB3's ``predict`` on batched observations.
    :param env: a batched env over a logged-replay simulator.
    :param users: users to evaluate (default: the env's user set).
    :param length: positions to fill (at most the candidates, and at most the env's ``max_steps``).
    :returns: per user the ratings of the ranked items (shorter when fewer candidates),
        and per user the ratings of all its candidates (the ideal ranking's pool).
    """
    users = np.asarray(env.users if users is None else users, dtype=np.int64)
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    length = min(length, env.max_steps)
    bind_policy(policy, env)
    b = env.num_envs
    ratings_out: list[np.ndarray] = []
    pools: list[np.ndarray] = []
    scale = env.simulator.scale
    for start in range(0, len(users), b):
        chunk = users[start : start + b]
        rows = np.resize(chunk, b)
        obs, _ = env.reset(seed=start, options={"users": rows})
        available = env.starts.available[chunk]
        all_items = np.broadcast_to(np.arange(env.n_items), (len(chunk), env.n_items))
        cand_ratings = scale.from_reward(env.simulator.expected_reward({}, chunk, all_items))
        pools.extend(cand_ratings[i][available[i]] for i in range(len(chunk)))
        ranked = np.full((b, length), np.nan)
        active = np.ones(b, dtype=bool)
        for pos in range(length):
            actions, _ = policy.predict(obs, deterministic=True)
            obs, _, term, trunc, info = env.step(actions)
            ranked[active, pos] = info["rating"][active]
            active &= ~(term | trunc)
            if not active[: len(chunk)].any():
                break
        for i in range(len(chunk)):
            row = ranked[i]
            ratings_out.append(row[~np.isnan(row)])
    return ratings_out, pools


#: graded NDCG maps every rating scale onto 0..4, the grades of 1..5 stars
MAX_GRADE = 4.0


def _grade(ratings: np.ndarray, scale) -> np.ndarray:
    """Ratings as grades in ``[0, 4]``: ``r - 1`` on 1..5 stars, ``(r + 10) / 5`` on Jester.

    Rounded to 6 decimals so that the same rating read through two float paths
    (the ranked list and the candidate pool) is the same grade.
    """
    grade = (np.asarray(ratings, dtype=np.float64) - scale.low) / (scale.high - scale.low) * MAX_GRADE
    return np.round(grade, 6)


def evaluate_offline(
    policy: Policy,
    env,
    users: np.ndarray | None = None,
    ks: tuple[int, ...] = DEFAULT_KS,
) -> dict[str, float]:
    """Precision@k, NDCG@k and MAP@k of DRR's re-ranking protocol.

    ``ndcg@k`` uses binary gains (liked or not) like precision and MAP;
    ``ndcg_graded@k`` uses the rating itself, mapped onto grades 0..4
    (``r - 1`` for stars), with the exponential gain ``2^g - 1``, against the ideal order of
    all the user's candidates: a ranking that puts a 3-star item before a
    1-star one is rewarded although neither is liked. The DRR paper does not
    say which it reports; its NDCG@20 of 0.87 for Popularity suggests graded
    gains (see docs/evaluation.md). Users without any liked candidate are left
    out (binary NDCG and AP are undefined for them), so every figure averages
    over the same users; ``users`` in the result counts them.

    :param policy: the frozen agent.
    :param env: batched env over a :class:`~simulators.LoggedReplaySimulator` of the test users.
    :param users: users to evaluate (default: the env's user set).
    :param ks: cut-offs; the list is filled up to ``max(ks)``.
    """
    lists, pools = rerank_lists(policy, env, users, length=max(ks))
    scale = env.simulator.scale
    n_liked = np.array([int(np.sum(scale.is_liked(p))) for p in pools])
    keep = n_liked > 0
    relevance = [np.asarray(scale.is_liked(r), dtype=np.float64) for r, k in zip(lists, keep) if k]
    grades = [_grade(r, scale) for r, k in zip(lists, keep) if k]
    ideal = [_grade(p, scale) for p, k in zip(pools, keep) if k]
    n_rel = n_liked[keep]
    if not relevance:
        raise ValueError("no evaluated user has a liked item among the candidates: offline metrics are undefined")
    out: dict[str, float] = {"users": int(keep.sum())}
    for k in ks:
        out[f"precision@{k}"] = float(precision_at_k(relevance, k, reduce="mean"))
        out[f"ndcg@{k}"] = float(ndcg_at_k(relevance, k, n_relevant=n_rel, reduce="mean"))
        out[f"ndcg_graded@{k}"] = float(ndcg_at_k(grades, k, gains="graded", ideal_relevance=ideal, reduce="mean"))
        out[f"map@{k}"] = float(average_precision(relevance, k, n_relevant=n_rel, reduce="mean"))
    return out
