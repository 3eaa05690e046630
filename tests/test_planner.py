"""Specifications of the planner baseline, the simulators' expected transitions and the v1 behaviour users."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import pandas as pd

import agents
import recgym  # noqa: F401  (registers the ids)
from recgym.data import STAR_SCALE, build_rating_log, make_synthetic_log
from recgym.envs.config import EpisodeConfig
from recgym.envs.recommendation import RecommendationEnv
from recgym.envs.vector import RecommendationVectorEnv
from recgym.evaluation.online import evaluate_online, run_episodes
from simulators import BEHAVIOR_V1, BehaviorConfig, BehaviorSimulator, BehaviorV1Simulator, PMFSimulator
from simulators.base import copy_state
from tests.helpers import scenario_from_parts

SMALL_PMF = dict(dim=8, reg=2.0, bias_reg=2.0, n_iters=8, seed=0)
# Gymnasium notes that a Behavior-v1 exists whenever a Behavior-v0 id is made; v0 is not deprecated
pytestmark = pytest.mark.filterwarnings("ignore:.*is out of date:DeprecationWarning")


@pytest.fixture(scope="module")
def log():
    return make_synthetic_log(n_users=120, n_items=150, density=0.15, seed=0)


@pytest.fixture(scope="module")
def pmf(log):
    return PMFSimulator(**SMALL_PMF).fit(log)


def behaviour_world(log, pmf, **config):
    sim = BehaviorSimulator(BehaviorConfig(**config), rating_model=pmf).fit(log)
    users = np.arange(log.n_users)
    return scenario_from_parts(log, sim, users[:90], users[90:])


# -- expected transitions -------------------------------------------------------------------------


def test_expected_transition_leaves_the_state_alone_and_draws_nothing(log, pmf):
    sim = BehaviorSimulator(rating_model=pmf).fit(log)
    users = np.arange(6)
    rng = np.random.default_rng(0)
    state = sim.initial_state(users, rng)
    sim.respond(state, users, np.arange(6)[:, None], rng)  # some boredom, some patience lost
    before = copy_state(state)
    step = sim.expected_transition(state, users, np.arange(10, 16)[:, None])
    for key in state:
        np.testing.assert_array_equal(state[key], before[key])
        assert not np.shares_memory(step.state[key], state[key])
    np.testing.assert_array_equal(step.reward, sim.expected_reward(state, users, np.arange(10, 16)[:, None]))
    assert step.stay.shape == (6,) and np.all((0 < step.stay) & (step.stay <= 1))


@pytest.mark.parametrize("version", ["v0", "v1"])
def test_expected_transition_is_what_respond_does_without_noise(log, pmf, version):
    config = {"noise_std": 0.0, **({"satiation_decay": 0.9, "satiation_threshold": 2.0} if version == "v1" else {})}
    cls = BehaviorV1Simulator if version == "v1" else BehaviorSimulator
    sim = cls(config, rating_model=pmf).fit(log)
    users = np.arange(40)
    rng = np.random.default_rng(1)
    state = sim.initial_state(users, rng)
    for t in range(12):
        items = ((users * 7 + t * 13 * (t % 2)) % log.n_items)[:, None]  # repeats a topic every other step
        step = sim.expected_transition(state, users, items)
        fb = sim.respond(state, users, items, rng)
        np.testing.assert_allclose(step.reward, fb.reward)
        for key in state:
            np.testing.assert_allclose(step.state[key], state[key])
        np.testing.assert_allclose(step.stay, 1.0 - sim.leave_probability(state))


def test_expected_transition_matches_the_sampled_mean_of_respond(log, pmf):
    sim = BehaviorSimulator(rating_model=pmf).fit(log)
    users = np.repeat(np.arange(5), 20_000)
    rng = np.random.default_rng(2)
    state = sim.initial_state(users, rng)
    state["boredom"][:] = sim.topics[3] * 0.6  # the same tired, impatient start for every copy of a user
    state["patience"][:] = 0.55
    items = (users * 11 % log.n_items)[:, None]
    step = sim.expected_transition(state, users, items)
    fb = sim.respond(state, users, items, rng)
    for u in range(5):
        rows = users == u
        assert fb.reward[rows].mean() == pytest.approx(step.reward[rows][0, 0], abs=0.06)
        assert state["patience"][rows].mean() == pytest.approx(step.state["patience"][rows][0], abs=0.003)
        assert 1.0 - fb.left[rows].mean() == pytest.approx(step.stay[rows][0], abs=0.01)
        np.testing.assert_allclose(state["boredom"][rows][0], step.state["boredom"][rows][0])


def test_stateless_simulators_transition_to_a_copy_and_never_leave(log, pmf):
    users = np.arange(4)
    step = pmf.expected_transition({}, users, np.arange(8).reshape(4, 2))
    np.testing.assert_array_equal(step.reward, pmf.expected_reward({}, users, np.arange(8).reshape(4, 2)))
    assert step.state == {} and np.all(step.stay == 1.0)


def test_simulator_state_is_a_copy_of_the_live_episodes(log, pmf):
    world = behaviour_world(log, pmf)
    env = RecommendationVectorEnv(4, scenario=world, users="test")
    env.reset(seed=0)
    env.step(np.flatnonzero(env.action_masks()[0])[:4])
    snap = env.simulator_state()
    np.testing.assert_array_equal(snap.users, env.batch.users)
    np.testing.assert_array_equal(snap.action_masks, env.action_masks())
    np.testing.assert_array_equal(snap.steps_left, env.config.max_steps - 1)
    live = copy_state(env.batch.sim_state)
    snap.state["boredom"][:] = 1.0
    snap.state["patience"][:] = 0.0
    np.testing.assert_array_equal(env.batch.sim_state["boredom"], live["boredom"])
    single = RecommendationEnv(scenario=world, users="test")
    single.reset(seed=0)
    one = single.simulator_state()
    assert one.users.shape == (1,) and one.action_masks.shape == (1, log.n_items)
    assert one.state["boredom"].shape == (1, world.simulator.n_topics)


# -- the planner ----------------------------------------------------------------------------------


def test_planner_with_horizon_one_plays_oracle_greedy(log, pmf):
    world = behaviour_world(log, pmf)
    env = RecommendationVectorEnv(16, scenario=world, users="test", max_steps=30)
    oracle = agents.make("oracle-greedy", env)
    planner = agents.make("planner", env, horizon=1)
    obs, _ = env.reset(seed=4)
    for _ in range(30):
        a, _ = oracle.predict(obs, action_masks=env.action_masks())
        b, _ = planner.predict(obs, action_masks=env.action_masks())
        np.testing.assert_array_equal(a, b)
        obs, *_ = env.step(a)


def tiny_log(n_users: int = 6, n_a: int = 12, n_b: int = 12, n_start: int = 5):
    """Every user rates everything: 5 start items (genre C, 4 stars, logged first),
    then ``n_a`` genre-A items at 5 stars and ``n_b`` genre-B items at 4 stars."""
    genre = ["C"] * n_start + ["A"] * n_a + ["B"] * n_b
    stars = {"C": 4.0, "A": 5.0, "B": 4.0}
    raw = pd.DataFrame([(u, j, stars[g], j) for u in range(n_users) for j, g in enumerate(genre)],
                       columns=["user", "item", "rating", "timestamp"])
    features = pd.DataFrame({f"genre:{g}": [int(x == g) for x in genre] for g in "ABC"}, index=range(len(genre)))
    return build_rating_log("tiny", raw, STAR_SCALE, item_features=features)


def test_planner_diversifies_where_the_greedy_item_bores_the_user():
    # A 5-star A item is a purchase when A is fresh, but two A items in a row bore the user
    # below the purchase threshold; 4-star B items are clicks. Greedy takes A while A is
    # worth more this step (AAAB...); looking ahead alternates and keeps A items fresh.
    log = tiny_log()
    pmf = PMFSimulator(dim=2, reg=1.0, bias_reg=1.0, n_iters=4).fit(log)
    config = BehaviorConfig(noise_std=0.1, boredom_weight=0.8, boredom_decay=0.7, leave_midpoint=1.0)
    world = scenario_from_parts(log, BehaviorSimulator(config, rating_model=pmf).fit(log), np.arange(3),
                                np.arange(3, 6), dim=2)
    env = RecommendationVectorEnv(3, scenario=world, users="test", max_steps=20)
    greedy = run_episodes(agents.make("oracle-greedy", env), env, seed=0).avg_reward_per_episode
    planned = run_episodes(agents.make("planner", env, horizon=4), env, seed=0).avg_reward_per_episode
    assert planned > 1.3 * greedy, (greedy, planned)


# -- the v1 behaviour user ------------------------------------------------------------------------


def test_satiation_follows_sardine_five_exposures_then_five_steps(log, pmf):
    sim = BehaviorV1Simulator({"noise_std": 0.0}, rating_model=pmf).fit(log)
    topic = int(np.argmax(sim.topics.sum(axis=0)))
    same = np.flatnonzero(sim.topics[:, topic] == 1)[:12]
    users = np.zeros(1, dtype=np.int64)
    state = sim.initial_state(users, None)
    rng = np.random.default_rng(0)
    for t, item in enumerate(same[:5]):
        assert state["satiated_for"][0, topic] == 0, t
        sim.respond(state, users, np.array([[item]]), rng)
    assert state["satiated_for"][0, topic] == BEHAVIOR_V1.satiation_duration  # the 5th exposure in a row
    satiated = sim.mean_effective_rating(state, users, same[None, 5:6])
    state_off = copy_state(state)
    state_off["satiated_for"][:] = 0
    fresh = sim.mean_effective_rating(state_off, users, same[None, 5:6])
    share = sim.topics[same[5], topic] / sim.topics[same[5]].sum()
    penalty = BEHAVIOR_V1.satiation_weight * share + BEHAVIOR_V1.satiation_global_weight
    assert fresh - satiated == pytest.approx(penalty)
    other = np.flatnonzero(sim.topics[:, topic] == 0)
    for _ in range(BEHAVIOR_V1.satiation_duration):
        assert state["satiated_for"][0, topic] > 0
        sim.respond(state, users, other[None, :1], rng)
        other = other[1:]
    assert state["satiated_for"][0, topic] == 0  # recovered after 5 steps away


def test_v1_respond_one_agrees_exactly_with_respond(log, pmf):
    sim = BehaviorV1Simulator(rating_model=pmf).fit(log)
    a, b = sim.initial_state(np.zeros(1), None), sim.initial_state(np.zeros(1), None)
    ra, rb = np.random.default_rng(7), np.random.default_rng(7)
    topic_items = np.flatnonzero(sim.topics[:, 0] == 1)
    for t in range(40):
        item = int(topic_items[t % len(topic_items)] if t % 3 else t)
        one = sim.respond_one(a, 3, item, ra)
        fb = sim.respond(b, np.array([3]), np.array([[item]]), rb)
        assert one == (fb.rating[0, 0], fb.reward[0, 0], fb.behavior[0, 0], fb.left[0])
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert b["satiated_for"].max() > 0


def test_v0_ids_keep_their_numbers():
    # recorded before the v1 dynamics existed: a fixed seed and fixed actions on Synthetic-Behavior-v0
    kw = dict(dataset_kwargs={"n_users": 60, "n_items": 80}, max_steps=30, users="all")
    venv = gym.make_vec("recgym/Synthetic-Behavior-v0", num_envs=8, vectorization_mode="vector_entry_point", **kw)
    venv.reset(seed=3)
    order = np.random.default_rng(0).permutation(80)
    totals, expected = np.zeros(4), 0.0
    for _ in range(40):
        masks = venv.action_masks()
        expected += float(np.where(masks, venv.expected_rewards(), 0).sum())
        actions = np.array([order[np.flatnonzero(masks[r][order])[0]] for r in range(8)])
        _, reward, term, trunc, info = venv.step(actions)
        totals += [reward.sum(), info["rating"].sum(), info["behavior"].sum(), (term | trunc).sum()]
    np.testing.assert_allclose(totals, [40.0, 856.9355606124515, 357.0, 44.0], rtol=1e-12)
    # the expectation is exact since normal_cdf became scipy's ndtr (3750.5250936 with the old 1e-7 approximation)
    assert expected == pytest.approx(3750.5251094507885, rel=1e-12)
    env = gym.make("recgym/Synthetic-Behavior-v0", **kw)
    env.reset(seed=5)
    sums = np.zeros(3)
    for t in range(60):
        mask = env.unwrapped.action_masks()
        _, reward, term, trunc, info = env.step(int(order[np.flatnonzero(mask[order])[(t * 7) % mask.sum()]]))
        sums += [reward, info["rating"], info["behavior"]]
        if term or trunc:
            env.reset(seed=5 + t)
    np.testing.assert_allclose(sums, [25.0, 179.41169171230726, 79.0], rtol=1e-12)
    assert "satiation" not in env.unwrapped.simulator_state().state


def test_v1_ids_are_registered_and_pass_the_env_checker():
    ids = recgym.envs.env_ids()
    assert {f"recgym/{d}-Behavior-v1" for d in ("ML100K", "Jester4", "Synthetic")} <= set(ids)
    env = gym.make("recgym/Synthetic-Behavior-v1", dataset_kwargs={"n_users": 60, "n_items": 80}, max_steps=8)
    assert env.unwrapped.simulator.config == BEHAVIOR_V1
    gym_check_env(env.unwrapped, skip_render_check=True)
    tuned = gym.make("recgym/Synthetic-Behavior-v1", dataset_kwargs={"n_users": 60, "n_items": 80},
                     simulator_kwargs={"config": {"satiation_duration": 3}})
    assert tuned.unwrapped.simulator.config.satiation_duration == 3
    assert tuned.unwrapped.simulator.config.satiation_global_weight == BEHAVIOR_V1.satiation_global_weight


def test_planning_pays_on_synthetic_v1_and_hardly_on_v0():
    # users with many good items (density 0.3): long enough sessions for satiation to matter
    headroom = {}
    for version in ("v0", "v1"):
        env = gym.make(f"recgym/Synthetic-Behavior-{version}", dataset_kwargs={"density": 0.3})
        scenario, config = env.unwrapped.scenario, EpisodeConfig(max_steps=100)
        greedy = evaluate_online(agents.make("oracle-greedy", env), scenario, config, seed=0).avg_reward_per_episode
        planned = evaluate_online(agents.make("planner", env), scenario, config, seed=0).avg_reward_per_episode
        headroom[version] = planned / greedy
    assert headroom["v1"] >= 1.15 and headroom["v1"] > headroom["v0"] + 0.1, headroom
