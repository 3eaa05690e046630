"""The offline (DRR re-ranking), online and long-term protocols on small worlds."""

from __future__ import annotations

import numpy as np
import pytest

from recgym.envs import RecommendationVectorEnv, build_world
from recgym.evaluation.offline import evaluate_offline, rerank_lists
from recgym.evaluation.online import evaluate_online
from recgym.experiments.environments import RunEnvironments
from recgym.experiments.evaluate import LONG_TERM_MODES, evaluate_policy, replay_world

SYN = dict(n_users=60, n_items=80, density=0.25, seed=4)


class ScoreOrderPolicy:
    """Recommends, for every user, the unconsumed item with the highest fixed score."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores  # [n_users, n_items]

    def predict(self, obs, deterministic=True):
        users = obs["user"][:, 0]
        s = self.scores[users].copy()
        consumed = obs["consumed"]
        rows = np.repeat(np.arange(len(users)), consumed.shape[1])
        valid = consumed.reshape(-1) < s.shape[1]
        s[rows[valid], consumed.reshape(-1)[valid]] = -np.inf
        return s.argmax(axis=1), None


@pytest.fixture(scope="module")
def pmf_world():
    return build_world("synthetic", "pmf", dataset_kwargs=SYN)


@pytest.fixture(scope="module")
def replay(pmf_world):
    world = replay_world(pmf_world)
    env = RecommendationVectorEnv(32, world=world, users="test", max_steps=20)
    ratings = world.log.user_item_matrix()  # NaN where unrated
    return world, env, ratings


def test_replay_world_shares_the_training_embedding_space(pmf_world, replay):
    world, env, _ = replay
    np.testing.assert_array_equal(world.simulator.item_embeddings, pmf_world.simulator.item_embeddings)


def test_perfect_ranking_scores_one(replay):
    _, env, ratings = replay
    oracle = ScoreOrderPolicy(np.nan_to_num(ratings, nan=-10.0))
    res = evaluate_offline(oracle, env, ks=(5, 20))
    assert res["ndcg@20"] == pytest.approx(1.0) and res["map@20"] == pytest.approx(1.0)
    assert res["ndcg_graded@20"] == pytest.approx(1.0)


def test_offline_metrics_match_a_hand_computation(replay):
    _, env, ratings = replay
    worst_first = ScoreOrderPolicy(np.nan_to_num(-ratings, nan=-10.0))
    lists, pools = rerank_lists(worst_first, env, length=5)
    res = evaluate_offline(worst_first, env, ks=(5,))
    # by hand: per user, liked = rating >= 4 among the 5 lowest-rated candidates; precision divides by 5
    precisions, aps = [], []
    for ranked, pool in zip(lists, pools):
        n_liked = int((pool >= 4).sum())
        if n_liked == 0:
            continue
        rel = (ranked >= 4).astype(float)
        precisions.append(rel[:5].sum() / 5)
        hits = np.cumsum(rel[:5]) / np.arange(1, len(rel[:5]) + 1)
        aps.append((hits * rel[:5]).sum() / min(5, n_liked))
        # the list ranks the user's candidates from the worst rating up
        assert (np.diff(ranked) >= 0).all()
    assert res["users"] == len(precisions)
    assert res["precision@5"] == pytest.approx(np.mean(precisions))
    assert res["map@5"] == pytest.approx(np.mean(aps))


def test_online_evaluation_plays_one_episode_per_user(pmf_world):
    env = RecommendationVectorEnv(16, world=pmf_world, users="test", max_steps=7)
    rng = np.random.default_rng(0)
    policy = ScoreOrderPolicy(rng.random((pmf_world.log.n_users, pmf_world.log.n_items)))
    res = evaluate_online(policy, env, seed=3)
    assert res.episodes == len(env.users) and res.avg_episode_length == 7
    assert res.avg_reward_per_step == pytest.approx(sum(res.episode_rewards) / (7 * res.episodes))
    again = evaluate_online(policy, env, seed=3)
    assert again.episode_rewards == res.episode_rewards
    # the best fixed-score policy for this simulator beats a random ordering
    oracle = ScoreOrderPolicy(pmf_world.simulator.rating_matrix.astype(float))
    assert evaluate_online(oracle, env, seed=3).avg_reward_per_step > res.avg_reward_per_step


def test_long_term_protocol_reports_every_mode(pmf_world):
    envs = RunEnvironments(pmf_world, {"history_length": 5, "max_steps": 20, "action_mode": "discrete"})
    policy = ScoreOrderPolicy(np.zeros((pmf_world.log.n_users, pmf_world.log.n_items)))
    out = evaluate_policy(policy, envs, "long-term")
    for name, _, steps in LONG_TERM_MODES:
        assert 1 <= out[f"{name}: length"] <= steps
        assert 0.0 <= out[f"{name}: left"] <= 1.0


def test_unknown_protocol_is_rejected(pmf_world):
    envs = RunEnvironments(pmf_world, {"action_mode": "discrete"})
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate_policy(None, envs, "sideways")


def test_graded_ndcg_on_a_continuous_jester_scale_is_one_for_a_perfect_ranking():
    import pandas as pd

    from recgym.data import JESTER_SCALE, from_dataframe

    rng = np.random.default_rng(0)
    rows = [(u, i, round(float(rng.uniform(-10, 10)), 2)) for u in range(50) for i in rng.choice(40, 25, replace=False)]
    log = from_dataframe(pd.DataFrame(rows, columns=["user", "item", "rating"]), scale=JESTER_SCALE)
    world = replay_world(build_world(log, "pmf", simulator_kwargs={"dim": 8, "reg": 2.0}))
    env = RecommendationVectorEnv(16, world=world, users="test", max_steps=20)
    oracle = ScoreOrderPolicy(np.nan_to_num(log.user_item_matrix(), nan=-99.0))
    res = evaluate_offline(oracle, env, ks=(20,))
    assert res["ndcg_graded@20"] == pytest.approx(1.0) and res["ndcg@20"] == pytest.approx(1.0)
