"""The offline (DRR re-ranking), online and long-term protocols on small scenarios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recgym.envs import RecommendationEnv, RecommendationVectorEnv
from recgym.envs.config import EpisodeConfig
from recgym.evaluation.long_term import behavior_scenario
from recgym.evaluation.offline import bootstrap_interval, evaluate_offline, replay_scenario, rerank_lists
from recgym.evaluation.online import evaluate_online, run_episodes
from recgym.experiments.setup import RunSetup
from recgym.experiments.evaluate import evaluate_policy
from recgym.scenario import fit_simulator, make_scenario
from simulators import BehaviorSimulator
from simulators.pmf import PMFSimulator

SYN = dict(n_users=60, n_items=80, density=0.25, seed=4)
CONFIG = EpisodeConfig(max_steps=20)


class ScoreOrderPolicy:
    """Recommends, for every user, the unconsumed item with the highest fixed score (ignores action masks)."""

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


class MaskedScoreOrderPolicy(ScoreOrderPolicy):
    """The same policy, but it takes the environment's available items as recgym's discrete agents do."""

    def predict(self, obs, deterministic=True, action_masks=None):
        users = obs["user"][:, 0]
        s = self.scores[users].astype(float).copy()
        if action_masks is not None:
            s[~action_masks] = -np.inf
        consumed = obs["consumed"]
        rows = np.repeat(np.arange(len(users)), consumed.shape[1])
        valid = consumed.reshape(-1) < s.shape[1]
        s[rows[valid], consumed.reshape(-1)[valid]] = -np.inf
        return s.argmax(axis=1), None


@pytest.fixture(scope="module")
def scenario():
    return make_scenario("synthetic", "pmf", dataset_kwargs=SYN)


@pytest.fixture(scope="module")
def ratings(scenario):
    return scenario.log.user_item_matrix()  # NaN where unrated


def test_the_default_embedding_model_never_sees_a_test_rating(scenario):
    df = scenario.log.interactions
    train_log = scenario.log.with_interactions(df[df["user"].isin(scenario.train_users)])
    alone = PMFSimulator(**{k: v for k, v in scenario.rating_model.get_params().items()
                            if k in ("dim", "reg", "bias_reg", "n_iters", "seed")}).fit(train_log)
    for name in ("user_embeddings", "item_embeddings", "user_bias", "item_bias"):
        np.testing.assert_array_equal(getattr(scenario.embedding_model, name), getattr(alone, name))
    assert not np.abs(scenario.embedding_model.user_embeddings[scenario.test_users]).any()
    assert scenario.embedding_fit == "train" and "leak-free" in scenario.label
    # the paper's setting is explicit and labelled
    everything = make_scenario("synthetic", "pmf", dataset_kwargs=SYN, embedding_fit="all")
    assert everything.embedding_model is everything.rating_model and "all-data" in everything.label


def test_a_policy_preferring_non_candidates_is_scored_on_candidates_only(scenario, ratings):
    # the policy's favourite items are ones the test users never rated (not candidates)
    scores = np.where(np.isnan(ratings), 100.0, np.nan_to_num(ratings))
    policy = MaskedScoreOrderPolicy(scores)
    items, _, pools, _ = rerank_lists(policy, scenario, CONFIG, length=10)
    for ranked, pool in zip(items, pools):
        assert set(ranked.tolist()) <= set(pool.tolist()) and len(set(ranked.tolist())) == len(ranked)
    # the same policy restricted by hand to each user's rated items ranks them by rating
    by_hand = MaskedScoreOrderPolicy(np.nan_to_num(ratings, nan=-np.inf))
    assert evaluate_offline(policy, scenario, CONFIG, ks=(5, 10)) == evaluate_offline(by_hand, scenario, CONFIG, ks=(5, 10))


def test_a_policy_that_ignores_availability_is_refused_not_substituted(scenario, ratings):
    scores = np.where(np.isnan(ratings), 100.0, np.nan_to_num(ratings))
    with pytest.raises(ValueError, match="unavailable item"):
        evaluate_offline(ScoreOrderPolicy(scores), scenario, CONFIG)


def test_the_offline_protocol_refuses_repeats(scenario):
    with pytest.raises(ValueError, match="repeats are impossible"):
        evaluate_offline(ScoreOrderPolicy(np.zeros((60, 80))), scenario, CONFIG.replace(allow_repeats=True))


def test_replay_users_act_in_the_embedding_space_of_the_scenario(scenario):
    replay = replay_scenario(scenario)
    assert replay.embedding_model is scenario.embedding_model
    np.testing.assert_array_equal(replay.action_item_vectors, scenario.action_item_vectors)


def test_perfect_ranking_scores_one(scenario, ratings):
    oracle = MaskedScoreOrderPolicy(np.nan_to_num(ratings, nan=-10.0))
    res = evaluate_offline(oracle, scenario, CONFIG, ks=(5, 20))
    assert res["ndcg@20"] == pytest.approx(1.0) and res["map@20"] == pytest.approx(1.0)
    assert res["ndcg_list@20"] == pytest.approx(1.0)
    low, high = res["ndcg@20_ci95"]
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)


def test_offline_metrics_match_a_hand_computation(scenario, ratings):
    worst_first = MaskedScoreOrderPolicy(np.nan_to_num(-ratings, nan=-10.0))
    items, ranked_ratings, pools, pool_ratings = rerank_lists(worst_first, scenario, CONFIG, length=5)
    res = evaluate_offline(worst_first, scenario, CONFIG, ks=(5,))
    # by hand: per user, liked = rating >= 4 among the 5 lowest-rated candidates; precision divides by 5
    precisions, aps, list_ndcgs = [], [], []
    for ranked, pool in zip(ranked_ratings, pool_ratings):
        n_liked = int((pool >= 4).sum())
        if n_liked == 0:
            continue
        rel = (ranked >= 4).astype(float)[:5]
        precisions.append(rel.sum() / 5)
        hits = np.cumsum(rel) / np.arange(1, len(rel) + 1)
        aps.append((hits * rel).sum() / min(5, n_liked))
        discount = 1 / np.log2(np.arange(2, len(rel) + 2))
        ideal = (np.sort(rel)[::-1] * discount).sum()
        list_ndcgs.append((rel * discount).sum() / ideal if ideal > 0 else 0.0)
        # the list ranks the user's candidates from the worst rating up
        assert (np.diff(ranked) >= 0).all()
    assert res["users"] == len(precisions)
    assert res["precision@5"] == pytest.approx(np.mean(precisions))
    assert res["map@5"] == pytest.approx(np.mean(aps))
    assert res["ndcg_list@5"] == pytest.approx(np.mean(list_ndcgs))


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_more_users():
    rng = np.random.default_rng(0)
    small, large = rng.random(30), rng.random(3000)
    lo_s, hi_s = bootstrap_interval(small)
    lo_l, hi_l = bootstrap_interval(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 4


def test_online_evaluation_plays_one_episode_per_user(scenario):
    env = RecommendationVectorEnv(16, scenario, users="test", max_steps=7)
    rng = np.random.default_rng(0)
    policy = ScoreOrderPolicy(rng.random((scenario.n_users, scenario.n_items)))
    res = run_episodes(policy, env, seed=3)
    assert res.episodes == len(env.users) and res.avg_episode_length == 7
    assert res.avg_reward_per_step == pytest.approx(sum(res.episode_rewards) / (7 * res.episodes))
    again = run_episodes(policy, env, seed=3)
    assert again.episode_rewards == res.episode_rewards
    # the protocol builds the same environment from the scenario
    built = evaluate_online(policy, scenario, EpisodeConfig(max_steps=7), seed=3)
    assert built.episode_rewards == res.episode_rewards
    # the best fixed-score policy for this simulator beats a random ordering
    oracle = ScoreOrderPolicy(scenario.simulator.rating_matrix.astype(float))
    assert run_episodes(oracle, env, seed=3).avg_reward_per_step > res.avg_reward_per_step


class FavouriteItemPolicy:
    """Recommends every user's single favourite item at every step, consumed or not."""

    def __init__(self, scores: np.ndarray) -> None:
        self.favourite = scores.argmax(axis=1)  # [n_users]

    def predict(self, obs, deterministic=True):
        return self.favourite[obs["user"][:, 0]], None


def test_long_term_protocol_reports_every_mode(scenario):
    run = RunSetup("recgym/Synthetic-PMF-v0", scenario, CONFIG)
    policy = FavouriteItemPolicy(scenario.simulator.rating_matrix.astype(float))
    out = evaluate_policy(policy, run, "long-term")
    # the modes of recgym.evaluation.long_term's table, written out: (repeats, max steps)
    modes = {"no-repeat, until leave": (False, 100), "repeat, until leave": (True, 100),
             "no-repeat, 10 turns": (False, 10)}
    assert set(out) == {f"{m}: {f}" for m in modes for f in ("reward/episode", "length", "left")}
    behavior = behavior_scenario(scenario)
    assert isinstance(behavior.simulator, BehaviorSimulator)
    window = CONFIG.window(scenario.n_items)
    for name, (repeats, steps) in modes.items():
        mode = CONFIG.replace(allow_repeats=repeats, max_steps=steps, consumed_length=window)
        expected = evaluate_online(policy, behavior, mode, seed=0)
        assert out[f"{name}: reward/episode"] == pytest.approx(expected.avg_reward_per_episode), name
        assert out[f"{name}: length"] == pytest.approx(expected.avg_episode_length), name
        assert out[f"{name}: left"] == pytest.approx(expected.left_fraction), name
    # behaviour users get bored and leave: no until-leave episode reaches its 100-step cap
    for name in ("no-repeat, until leave", "repeat, until leave"):
        assert out[f"{name}: left"] == 1.0 and out[f"{name}: length"] < 100, name
    # the 10-turn mode cuts the same episodes at 10 steps, so some users are still there at the end
    assert out["no-repeat, 10 turns: length"] <= 10 < out["no-repeat, until leave: length"]
    assert out["no-repeat, 10 turns: left"] < 1.0
    # without repeats the favourite pays once (later asks are unavailable: a skip, reward 0), so both
    # no-repeat modes earn the first step's reward; with repeats it is consumed again and earns more
    first_step = out["no-repeat, until leave: reward/episode"]
    assert out["no-repeat, 10 turns: reward/episode"] == pytest.approx(first_step)
    assert 0.0 < first_step <= behavior.simulator.config.purchase_reward
    assert out["repeat, until leave: reward/episode"] > first_step


def test_unknown_protocol_is_rejected(scenario):
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate_policy(None, RunSetup("recgym/Synthetic-PMF-v0", scenario, CONFIG), "sideways")


def test_ndcg_on_a_continuous_jester_scale_is_one_for_a_perfect_ranking():
    from recgym.data import JESTER_SCALE, from_dataframe

    rng = np.random.default_rng(0)
    rows = [(u, i, round(float(rng.uniform(-10, 10)), 2)) for u in range(50) for i in rng.choice(40, 25, replace=False)]
    log = from_dataframe(pd.DataFrame(rows, columns=["user", "item", "rating"]), scale=JESTER_SCALE)
    jester = make_scenario(log, "pmf", simulator_kwargs={"dim": 8, "reg": 2.0})
    oracle = MaskedScoreOrderPolicy(np.nan_to_num(log.user_item_matrix(), nan=-99.0))
    res = evaluate_offline(oracle, jester, CONFIG, ks=(20,))
    assert res["ndcg_list@20"] == pytest.approx(1.0) and res["ndcg@20"] == pytest.approx(1.0)


def test_an_action_equal_to_the_highest_bias_items_vector_selects_it(scenario):
    vectors = scenario.action_item_vectors
    assert vectors.shape == (scenario.n_items, scenario.embedding_model.dim + 1)
    assert np.abs(vectors).max() <= 1.0
    best = int(np.argmax(scenario.item_bias))
    env = RecommendationEnv(scenario, action_mode="embedding", users="all")
    env.reset(seed=0)
    masks = env.action_masks()
    if not masks[best]:  # a start item of that user: pick a user for whom it is available
        user = next(u for u in range(scenario.n_users) if env.starts.available[u, best])
        env.reset(seed=0, options={"user": user})
    _, _, _, _, info = env.step(vectors[best])
    assert info["item"] == best


def test_the_action_space_can_express_the_embedding_models_ranking(scenario):
    """An action [U_i s_V, s_c], rescaled into the box, ranks items exactly as the predicted rating."""
    model = scenario.embedding_model
    user = int(scenario.train_users[0])
    v, c = model.item_embeddings.astype(float), model.item_bias.astype(float)
    s_v, s_c = np.abs(v).max(), np.abs(c).max()
    action = np.r_[model.user_embeddings[user] * s_v, s_c]
    action /= np.abs(action).max()
    scores = scenario.action_item_vectors.astype(float) @ action
    predicted = v @ model.user_embeddings[user] + c
    assert np.argmax(scores) == np.argmax(predicted)
    np.testing.assert_allclose(np.argsort(-scores)[:10], np.argsort(-predicted)[:10])
