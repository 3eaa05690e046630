"""Specifications of the simulated users: PMF (DRR), logged replay and the behaviour user."""

from __future__ import annotations

import math
import time
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from recgym.data import STAR_SCALE, RatingLog, build_rating_log, make_synthetic_log
from simulators import (
    SIMULATORS,
    Behavior,
    BehaviorConfig,
    BehaviorSimulator,
    LoggedReplaySimulator,
    NotFittedError,
    PMFSimulator,
    make_simulator,
)
from simulators.behavior import embedding_topics, normal_cdf
from simulators.pmf import rmse, roc_auc
from simulators.replay import NON_CANDIDATE_REWARD

# A small, well-fitting PMF for the synthetic logs (the ML-100K defaults
# regularise too hard for a few thousand ratings).
SMALL_PMF = dict(dim=8, reg=2.0, bias_reg=2.0, n_iters=8, seed=0)


def random_split(log: RatingLog, test_fraction: float = 0.2, seed: int = 0) -> tuple[RatingLog, RatingLog]:
    n = len(log)
    test = np.zeros(n, dtype=bool)
    test[np.random.default_rng(seed).permutation(n)[: int(round(test_fraction * n))]] = True
    df = log.interactions
    return log.with_interactions(df[~test]), log.with_interactions(df[test])


@pytest.fixture(scope="module")
def pmf(synthetic_log: RatingLog) -> PMFSimulator:
    return PMFSimulator(**SMALL_PMF).fit(synthetic_log)


@pytest.fixture(scope="module")
def behavior(synthetic_log: RatingLog, pmf: PMFSimulator) -> BehaviorSimulator:
    return BehaviorSimulator(rating_model=pmf).fit(synthetic_log)


def rated_pairs(log: RatingLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    df = log.interactions
    return df["user"].to_numpy(), df["item"].to_numpy(), df["rating"].to_numpy()


def unrated_pair(log: RatingLog) -> tuple[int, int]:
    dense = log.user_item_matrix()
    u, i = np.argwhere(np.isnan(dense))[0]
    return int(u), int(i)


# -- PMF ------------------------------------------------------------------------------
def test_pmf_recovers_synthetic_structure():
    log = make_synthetic_log(n_users=300, n_items=200, density=0.2, seed=1)
    train, test = random_split(log, seed=0)
    model = PMFSimulator(**SMALL_PMF).fit(train)
    scores = model.evaluate(test)
    global_mean = rmse(np.full(len(test), train.interactions["rating"].mean()), test.interactions["rating"])
    assert scores["rmse"] < 0.8
    assert scores["rmse"] < 0.75 * global_mean
    assert scores["auc"] > 0.8


def test_pmf_sizes_embeddings_and_prior_for_unrated_users(synthetic_log):
    # Drop every rating of user 0 and item 0: they keep their ids and get prior-mean factors.
    df = synthetic_log.interactions
    log = synthetic_log.with_interactions(df[(df["user"] != 0) & (df["item"] != 0)])
    model = PMFSimulator(**SMALL_PMF).fit(log)
    assert (model.n_users, model.n_items) == (synthetic_log.n_users, synthetic_log.n_items)
    assert model.user_embeddings.shape == (log.n_users, 8) and model.user_embeddings.dtype == np.float32
    assert model.item_embeddings.shape == (log.n_items, 8) and model.item_embeddings.dtype == np.float32
    assert np.all(model.user_embeddings[0] == 0) and model.user_bias[0] == 0
    assert np.all(model.item_embeddings[0] == 0) and model.item_bias[0] == 0
    # An unrated user is predicted as mu + item bias.
    expected = np.clip(model.global_mean + model.item_bias[1:5], 1, 5)
    np.testing.assert_allclose(model.predict(0, np.arange(1, 5)), expected, rtol=1e-6)


def test_pmf_logged_ratings_override_predictions(synthetic_log, pmf):
    users, items, ratings = rated_pairs(synthetic_log)
    rng = np.random.default_rng(0)
    fb = pmf.respond({}, users[:50], items[:50, None], rng)
    np.testing.assert_array_equal(fb.rating[:, 0], ratings[:50])
    np.testing.assert_array_equal(fb.reward, STAR_SCALE.to_reward(fb.rating))
    # The model prediction is not the logged rating, and without the override it is what is answered.
    assert not np.allclose(pmf.predict(users[:50], items[:50]), ratings[:50])
    plain = PMFSimulator(**SMALL_PMF, use_logged_ratings=False).fit(synthetic_log)
    fb = plain.respond({}, users[:50], items[:50, None], rng)
    np.testing.assert_allclose(fb.rating[:, 0], plain.predict(users[:50], items[:50]), rtol=1e-6)


def test_pmf_respond_shapes_behaviour_and_expected_reward(synthetic_log, pmf):
    rng = np.random.default_rng(0)
    users = np.array([0, 5, 7])
    items = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
    fb = pmf.respond({}, users, items, rng)
    assert fb.rating.shape == fb.reward.shape == fb.behavior.shape == (3, 4)
    assert fb.rating.dtype == fb.reward.dtype == np.float64 and fb.behavior.dtype == np.int8
    assert fb.left.shape == (3,) and fb.left.dtype == bool and not fb.left.any()
    liked = fb.reward > 0
    assert np.all(fb.behavior[liked] == Behavior.CLICK) and np.all(fb.behavior[~liked] == Behavior.SKIP)
    np.testing.assert_allclose(pmf.expected_reward({}, users, items), fb.reward, rtol=1e-6)
    # B = 1, the single env's step.
    one = pmf.respond({}, np.array([3]), np.array([[4]]), rng)
    assert one.rating.shape == (1, 1) and one.left.shape == (1,)


def test_pmf_predict_is_clipped_and_broadcasts(synthetic_log):
    model = PMFSimulator(**SMALL_PMF).fit(synthetic_log)
    model.user_embeddings = model.user_embeddings * 50.0  # wildly over-confident factors
    pred = model.predict(np.arange(20)[:, None], np.arange(30)[None, :])
    assert pred.shape == (20, 30)
    assert pred.min() == 1.0 and pred.max() == 5.0
    np.testing.assert_allclose(pred[3, 7], model.predict(3, 7))


def test_pmf_rating_noise_is_seeded_and_clipped(synthetic_log):
    model = PMFSimulator(**SMALL_PMF, rating_noise=1.0).fit(synthetic_log)
    users, items = np.arange(50), np.zeros((50, 3), dtype=np.int64)
    a = model.respond({}, users, items, np.random.default_rng(3))
    b = model.respond({}, users, items, np.random.default_rng(3))
    np.testing.assert_array_equal(a.rating, b.rating)
    assert a.rating.min() >= 1 and a.rating.max() <= 5
    assert not np.allclose(a.rating, model.response_ratings(users, items))


def test_pmf_rejects_out_of_range_ids(pmf):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="item ids out of range"):
        pmf.respond({}, np.array([0]), np.array([[pmf.n_items]]), rng)
    with pytest.raises(ValueError, match="item ids out of range"):
        pmf.respond({}, np.array([0]), np.array([[-1]]), rng)
    with pytest.raises(ValueError, match="user ids out of range"):
        pmf.respond({}, np.array([-1]), np.array([[0]]), rng)


def test_roc_auc_matches_hand_computed_values():
    # 3 of the 4 positive-negative pairs are ordered correctly.
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # Ties count one half: pairs (pos 1, neg 1) tie, (pos 1, neg 2) wrong, pos 3 beats both: 2.5 / 4.
    assert roc_auc([1, 1, 2, 3], [0, 1, 0, 1]) == pytest.approx(0.625)
    assert roc_auc([5, 5, 5], [1, 0, 1]) == pytest.approx(0.5)
    assert math.isnan(roc_auc([1, 2], [1, 1]))


def test_roc_auc_equals_pairwise_definition_with_many_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 300).astype(float)
    labels = rng.random(300) < 0.4
    pos, neg = scores[labels], scores[~labels]
    diff = pos[:, None] - neg[None, :]
    brute = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert roc_auc(scores, labels) == pytest.approx(brute, abs=1e-12)


def test_pmf_evaluate_uses_the_model_not_the_logged_ratings(synthetic_log, pmf):
    scores = pmf.evaluate(synthetic_log)  # the training log itself
    assert set(scores) == {"rmse", "auc"}
    assert 0.0 < scores["rmse"] < 1.0  # logged answers would give exactly 0


def test_pmf_save_load_round_trip(tmp_path, synthetic_log, pmf):
    path = tmp_path / "pmf.npz"
    pmf.save(path)
    loaded = PMFSimulator.load(path, **pmf.get_params())
    np.testing.assert_array_equal(loaded.item_embeddings, pmf.item_embeddings)
    np.testing.assert_array_equal(loaded.rating_matrix, pmf.rating_matrix)
    assert loaded.scale == pmf.scale
    users, items = np.arange(10), np.arange(30).reshape(10, 3)
    np.testing.assert_array_equal(loaded.predict(users[:, None], items), pmf.predict(users[:, None], items))


def test_unfitted_simulators_raise_not_fitted(tmp_path):
    rng = np.random.default_rng(0)
    for sim in (PMFSimulator(), LoggedReplaySimulator(), BehaviorSimulator()):
        with pytest.raises(NotFittedError):
            sim.respond({}, np.array([0]), np.array([[0]]), rng)
        with pytest.raises(NotFittedError):
            sim.save(tmp_path / "x.npz")
    with pytest.raises(NotFittedError):
        PMFSimulator().predict(0, 0)


def test_pmf_rejects_bad_parameters():
    for kwargs in (dict(dim=0), dict(reg=0.0), dict(bias_reg=-1.0), dict(n_iters=0), dict(rating_noise=-0.1)):
        with pytest.raises(ValueError):
            PMFSimulator(**kwargs)


# -- logged replay -----------------------------------------------------------------------
def test_replay_candidates_are_the_users_rated_items(synthetic_log, pmf):
    replay = LoggedReplaySimulator(embedding_model=pmf).fit(synthetic_log)
    df = synthetic_log.interactions
    for user in (0, 17, 119):
        expected = np.sort(df.loc[df["user"] == user, "item"].unique())
        got = replay.candidate_items(user)
        np.testing.assert_array_equal(got, expected)
        assert np.all(np.diff(got) > 0)
    assert replay.item_embeddings is pmf.item_embeddings


def test_replay_answers_logged_ratings_and_rejects_unrated(synthetic_log, pmf):
    replay = LoggedReplaySimulator(embedding_model=pmf).fit(synthetic_log)
    users, items, ratings = rated_pairs(synthetic_log)
    fb = replay.respond({}, users[:40], items[:40, None], np.random.default_rng(0))
    np.testing.assert_array_equal(fb.rating[:, 0], ratings[:40])
    np.testing.assert_array_equal(fb.reward, STAR_SCALE.to_reward(fb.rating))
    assert np.all((fb.behavior == Behavior.CLICK) == (fb.reward > 0))
    u, i = unrated_pair(synthetic_log)
    with pytest.raises(ValueError, match=rf"user {u} never rated item {i}"):
        replay.respond({}, np.array([u]), np.array([[i]]), np.random.default_rng(0))
    er = replay.expected_reward({}, np.array([u, users[0]]), np.array([[i], [items[0]]]))
    assert er[0, 0] == pytest.approx(NON_CANDIDATE_REWARD) and er[0, 0] < -1.0
    assert er[1, 0] == pytest.approx(STAR_SCALE.to_reward(ratings[0]))


def test_replay_fits_its_own_embedding_model_and_round_trips(tmp_path, synthetic_log):
    replay = LoggedReplaySimulator(pmf_params=SMALL_PMF).fit(synthetic_log)
    assert replay.item_embeddings.shape == (synthetic_log.n_items, SMALL_PMF["dim"])
    path = tmp_path / "replay.npz"
    replay.save(path)
    loaded = LoggedReplaySimulator.load(path, **replay.get_params())
    for user in (0, 50):
        np.testing.assert_array_equal(loaded.candidate_items(user), replay.candidate_items(user))
    np.testing.assert_array_equal(loaded.item_embeddings, replay.item_embeddings)


def test_replay_rejects_embedding_model_of_another_id_space(synthetic_log):
    other = PMFSimulator(**SMALL_PMF).fit(make_synthetic_log(n_users=30, n_items=40, seed=2))
    with pytest.raises(ValueError, match="one id space"):
        LoggedReplaySimulator(embedding_model=other).fit(synthetic_log)


# -- behaviour user -----------------------------------------------------------------------
def test_behavior_codes_follow_the_thresholds(synthetic_log, pmf):
    cfg = BehaviorConfig(noise_std=0.0, boredom_weight=0.0)
    sim = BehaviorSimulator(cfg, rating_model=pmf).fit(synthetic_log)
    users = np.arange(synthetic_log.n_users)
    items = np.random.default_rng(0).integers(0, synthetic_log.n_items, (len(users), 3))
    state = sim.initial_state(users, np.random.default_rng(0))
    fb = sim.respond(state, users, items, np.random.default_rng(0))
    base = STAR_SCALE.to_reward(pmf.response_ratings(users, items).astype(np.float64))
    expected = np.where(base >= cfg.purchase_threshold, Behavior.PURCHASE,
                        np.where(base >= cfg.click_threshold, Behavior.CLICK, Behavior.SKIP))
    np.testing.assert_array_equal(fb.behavior, expected)
    assert {Behavior.SKIP, Behavior.CLICK, Behavior.PURCHASE} <= set(fb.behavior.ravel().tolist())
    rewards = {Behavior.SKIP: cfg.skip_reward, Behavior.CLICK: cfg.click_reward,
               Behavior.PURCHASE: cfg.purchase_reward}
    np.testing.assert_array_equal(fb.reward, np.vectorize(rewards.get)(fb.behavior))
    np.testing.assert_allclose(fb.rating, STAR_SCALE.from_reward(base), rtol=1e-12)


def test_boredom_rises_with_repetition_and_decays(behavior, synthetic_log):
    genres = synthetic_log.item_genres()
    single = np.flatnonzero(genres.sum(1) == 1)
    g = int(np.argmax(genres[single[0]]))
    same_genre = single[genres[single, g] == 1][:6]
    other = single[genres[single, g] == 0][:6]
    rng = np.random.default_rng(0)
    users = np.array([3])
    state = behavior.initial_state(users, rng)
    assert np.all(state["boredom"] == 0) and np.all(state["patience"] == 1.0)
    penalties = []
    for item in same_genre:
        penalties.append(behavior.boredom_penalty(state["boredom"], np.array([[item]]))[0, 0])
        behavior.respond(state, users, np.array([[item]]), rng)
    assert penalties[0] == 0.0 and np.all(np.diff(penalties) > 0)
    peak = state["boredom"][0, g]
    for item in other:
        behavior.respond(state, users, np.array([[item]]), rng)
    d = behavior.config.boredom_decay
    assert state["boredom"][0, g] == pytest.approx(peak * d ** len(other))


def test_boredom_lowers_the_expected_reward(behavior):
    users = np.array([0])
    item = np.array([[int(np.argmax(behavior.rating_model.rating_matrix[0]))]])
    state = behavior.initial_state(users, np.random.default_rng(0))
    fresh = behavior.expected_reward(state, users, item)[0, 0]
    state["boredom"][:] = 1.0
    bored = behavior.expected_reward(state, users, item)[0, 0]
    assert bored < fresh


def test_users_leave_when_dissatisfied(synthetic_log, pmf):
    rng = np.random.default_rng(0)
    users = np.arange(200) % synthetic_log.n_users
    items = np.zeros((200, 1), dtype=np.int64)
    # Unpleasable users (every item a skip): patience drains and they leave.
    grumpy = BehaviorSimulator(BehaviorConfig(click_threshold=1.0, purchase_threshold=1.0, noise_std=0.0),
                               rating_model=pmf).fit(synthetic_log)
    state = grumpy.initial_state(users, rng)
    gone = np.zeros(200, bool)
    leave_probs = []
    for _ in range(15):
        fb = grumpy.respond(state, users, items, rng)
        assert np.all(fb.behavior == Behavior.SKIP)
        leave_probs.append(grumpy.leave_probability(state)[0])
        gone |= fb.left
    assert np.all(np.diff(leave_probs) >= 0) and leave_probs[-1] > 0.9
    assert gone.mean() > 0.95
    # Delighted users (every item a purchase) stay.
    happy = BehaviorSimulator(BehaviorConfig(click_threshold=-1.0, purchase_threshold=-1.0, noise_std=0.0,
                                             boredom_weight=0.0), rating_model=pmf).fit(synthetic_log)
    state = happy.initial_state(users, rng)
    gone = np.zeros(200, bool)
    for _ in range(15):
        gone |= happy.respond(state, users, items, rng).left
    assert gone.mean() < 0.1  # only the small base rate sigmoid(-leave_slope * leave_midpoint)
    assert np.all(state["patience"] == 1.0)


def test_behavior_is_deterministic_given_the_rng_seed(behavior):
    users = np.arange(64)
    items = np.random.default_rng(1).integers(0, behavior.n_items, (64, 2))

    def run(seed: int):
        rng = np.random.default_rng(seed)
        state = behavior.initial_state(users, rng)
        out = [behavior.respond(state, users, items, rng) for _ in range(5)]
        return np.stack([f.reward for f in out]), np.stack([f.left for f in out]), state

    r1, l1, s1 = run(7)
    r2, l2, s2 = run(7)
    r3, _, _ = run(8)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(l1, l2)
    np.testing.assert_array_equal(s1["patience"], s2["patience"])
    assert not np.array_equal(r1, r3)


def test_expected_reward_matches_the_sampled_mean(behavior):
    users = np.full(40000, 2)
    item = int(np.argsort(behavior.rating_model.rating_matrix[2])[-3])
    items = np.full((40000, 1), item)
    rng = np.random.default_rng(0)
    state = behavior.initial_state(users, rng)
    state["boredom"][:] = 0.3  # some boredom, so the penalty is part of the check
    expected = behavior.expected_reward(state, users, items[:, :1])[0, 0]
    sampled = behavior.respond(state, users, items, rng).reward.mean()
    spread = behavior.config.purchase_reward / math.sqrt(len(users))
    assert sampled == pytest.approx(expected, abs=4 * spread)


def test_expected_reward_over_the_catalogue_is_consistent(behavior):
    users = np.arange(6)
    rng = np.random.default_rng(0)
    state = behavior.initial_state(users, rng)
    state["boredom"][:] = rng.random(state["boredom"].shape)
    all_items = np.broadcast_to(np.arange(behavior.n_items), (6, behavior.n_items))
    full = behavior.expected_reward(state, users, all_items)  # matmul path
    few = behavior.expected_reward(state, users, all_items[:, :5])  # gather path
    one = behavior.expected_reward(state, users, all_items[:, 7:8])  # single-item path
    assert full.shape == (6, behavior.n_items)
    np.testing.assert_allclose(full[:, :5], few, rtol=1e-12)
    np.testing.assert_allclose(full[:, 7:8], one, rtol=1e-12)


def test_normal_cdf_is_accurate():
    x = np.linspace(-8, 8, 1601)
    exact = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(normal_cdf(x), exact, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize(
    "field, value",
    [
        ("click_threshold", 1.5),
        ("purchase_threshold", 0.1),  # below the click threshold
        ("noise_std", -0.1),
        ("purchase_reward", 0.5),  # below the click reward
        ("click_reward", -1.0),  # below the skip reward
        ("boredom_decay", 1.0),
        ("boredom_weight", -0.2),
        ("initial_patience", 0.0),
        ("skip_cost", 1.5),
        ("leave_midpoint", -0.1),
        ("leave_slope", 0.0),
        ("n_topic_clusters", 1),
        ("n_topic_clusters", 2.5),
        ("noise_std", float("nan")),
        ("boredom_weight", "0.5"),
        ("satiation_weight", -1.0),
        ("satiation_global_weight", -0.5),
        ("satiation_decay", 1.0),
        ("satiation_threshold", 0.0),
        ("satiation_duration", 0),
        ("satiation_duration", 2.5),
    ],
)
def test_bad_behavior_config_values_raise(field, value):
    with pytest.raises(ValueError, match=field):
        BehaviorConfig(**{field: value})


def test_behavior_config_from_mapping_and_unknown_fields():
    sim = BehaviorSimulator({"noise_std": 0.1})
    assert sim.config.noise_std == 0.1
    with pytest.raises(ValueError, match="no fields"):
        BehaviorSimulator({"noise": 0.1})
    assert {f.name for f in fields(BehaviorConfig)} == set(sim.get_params()["config"])


def test_logs_without_genres_get_embedding_topics(synthetic_log, pmf):
    no_genres = RatingLog(
        name="no-genres", interactions=synthetic_log.interactions, scale=synthetic_log.scale,
        user_ids=synthetic_log.user_ids, item_ids=synthetic_log.item_ids,
    )
    assert no_genres.item_genres() is None
    sim = BehaviorSimulator(BehaviorConfig(n_topic_clusters=6), rating_model=pmf).fit(no_genres)
    assert sim.topics.shape == (synthetic_log.n_items, 6)
    np.testing.assert_array_equal(sim.topics.sum(1), 1.0)
    np.testing.assert_array_equal(sim.topics, embedding_topics(pmf.item_embeddings, 6, seed=0))
    users = np.arange(4)
    state = sim.initial_state(users, np.random.default_rng(0))
    assert state["boredom"].shape == (4, 6)


def test_behavior_save_load_round_trip(tmp_path, behavior):
    path = tmp_path / "behavior.npz"
    behavior.save(path)
    loaded = BehaviorSimulator.load(path, **behavior.get_params())
    assert loaded.config == behavior.config
    users = np.arange(16)
    items = np.arange(32).reshape(16, 2)
    a = behavior.respond(behavior.initial_state(users, None), users, items, np.random.default_rng(4))
    b = loaded.respond(loaded.initial_state(users, None), users, items, np.random.default_rng(4))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def run_episodes(sim: BehaviorSimulator, policy: str, seed: int, horizon: int = 30, lookback: int = 3) -> float:
    """Mean cumulative reward of one episode per user, written against the simulator API.

    ``greedy``: the unconsumed item with the best predicted rating. ``diverse``:
    the same, but skipping items that share a genre with the last ``lookback``
    recommendations (falling back to greedy when nothing is left).
    """
    users = np.arange(sim.n_users)
    rng = np.random.default_rng(seed)
    state = sim.initial_state(users, rng)
    rows = np.arange(len(users))
    predicted = sim.rating_model.rating_matrix[users].astype(np.float64)
    consumed = np.zeros((len(users), sim.n_items), dtype=bool)
    alive = np.ones(len(users), dtype=bool)
    total = np.zeros(len(users))
    recent: list[np.ndarray] = []
    for _ in range(horizon):
        scores = np.where(consumed, -np.inf, predicted)
        if policy == "diverse" and recent:
            shown = np.maximum.reduce(recent[-lookback:])  # (B, G) genres shown lately
            fresh = np.where(shown @ sim.topics.T > 0, -np.inf, scores)
            scores = np.where(np.isfinite(fresh).any(1, keepdims=True), fresh, scores)
        item = scores.argmax(1)
        fb = sim.respond(state, users, item[:, None], rng)
        total += np.where(alive, fb.reward[:, 0], 0.0)
        alive &= ~fb.left
        consumed[rows, item] = True
        recent.append(sim.topics[item])
    return float(total.mean())


def test_avoiding_repetition_beats_myopic_greedy(behavior):
    for seed in (0, 1, 2):
        greedy = run_episodes(behavior, "greedy", seed)
        diverse = run_episodes(behavior, "diverse", seed)
        assert diverse > 1.05 * greedy, (seed, greedy, diverse)


# -- registry -------------------------------------------------------------------------
def test_make_simulator_knows_the_simulators():
    assert isinstance(make_simulator("pmf", dim=4), PMFSimulator)
    assert isinstance(make_simulator("Replay"), LoggedReplaySimulator)
    assert isinstance(make_simulator("behavior", config={"noise_std": 0.0}), BehaviorSimulator)
    v1 = make_simulator("behavior-v1", config={"noise_std": 0.0})
    assert v1.config.noise_std == 0.0 and v1.config.satiates
    assert sorted(SIMULATORS) == ["behavior", "behavior-v1", "pmf", "replay"]
    with pytest.raises(ValueError, match=r"known simulators: \['behavior', 'behavior-v1', 'pmf', 'replay'\]"):
        make_simulator("drr")


# -- real data -----------------------------------------------------------------------------
def load_ml100k(data_dir) -> RatingLog:
    try:
        from recgym.data import load
    except ImportError:  # the official loader is optional here
        raw = pd.read_csv(data_dir / "ml-100k" / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"])
        return build_rating_log("ml-100k", raw, STAR_SCALE)
    return load("ml-100k", data_dir=data_dir, download=False)


def test_pmf_fidelity_on_ml100k(data_dir):
    log = load_ml100k(data_dir)
    assert len(log) == 100_000
    train, test = random_split(log, 0.2, seed=0)
    start = time.perf_counter()
    model = PMFSimulator(seed=0).fit(train)
    fit_s = time.perf_counter() - start
    scores = model.evaluate(test)
    assert scores["rmse"] <= 0.93, scores
    assert scores["auc"] >= 0.77, scores
    assert fit_s < 20.0


# -- the scalar single-env path ----------------------------------------------------------------
def test_respond_one_agrees_exactly_with_respond(synthetic_log, pmf, behavior):
    noisy_pmf = PMFSimulator(**SMALL_PMF, rating_noise=0.7).fit(synthetic_log)
    replay = LoggedReplaySimulator(embedding_model=pmf).fit(synthetic_log)
    users, items, _ = rated_pairs(synthetic_log)
    for sim in (pmf, noisy_pmf, replay, behavior):
        rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
        state_a = sim.initial_state(np.array([0]), rng_a)
        state_b = sim.initial_state(np.array([0]), rng_b)
        for step in range(60):
            user, item = int(users[step % 7]), int(items[step % 7])  # repeats: boredom and leaving move
            fb = sim.respond(state_a, np.array([user]), np.array([[item]]), rng_a)
            one = sim.respond_one(state_b, user, item, rng_b)
            assert one == (fb.rating[0, 0], fb.reward[0, 0], fb.behavior[0, 0], fb.left[0]), (sim.name, step)
            assert isinstance(one[0], float) and isinstance(one[2], int) and isinstance(one[3], bool)
            for key in state_a:
                np.testing.assert_array_equal(state_a[key], state_b[key])
        assert rng_a.random() == rng_b.random()


def test_respond_one_rejects_bad_ids(synthetic_log, pmf, behavior):
    replay = LoggedReplaySimulator(embedding_model=pmf).fit(synthetic_log)
    rng = np.random.default_rng(0)
    for sim in (pmf, replay, behavior):
        state = sim.initial_state(np.array([0]), rng)
        with pytest.raises(ValueError, match="out of range"):
            sim.respond_one(state, 0, -1, rng)
        with pytest.raises(ValueError, match="out of range"):
            sim.respond_one(state, sim.n_users, 0, rng)
    u, i = unrated_pair(synthetic_log)
    with pytest.raises(ValueError, match=rf"user {u} never rated item {i}"):
        replay.respond_one({}, u, i, rng)
