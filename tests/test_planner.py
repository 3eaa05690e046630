"""Specifications of the planner baseline, the simulators' expected transitions and the v1 behaviour users."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import agents
import recgym  # noqa: F401  (registers the ids)
from recgym.data import make_synthetic_log
from recgym.envs.config import EpisodeConfig
from recgym.envs.recommendation import RecommendationEnv
from recgym.envs.vector import RecommendationVectorEnv
from recgym.evaluation.online import evaluate_online
from simulators import BehaviorConfig, BehaviorSimulator, PMFSimulator
from simulators.base import copy_state
from tests.helpers import scenario_from_parts

SMALL_PMF = dict(dim=8, reg=2.0, bias_reg=2.0, n_iters=8, seed=0)


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


def test_expected_transition_is_what_respond_does_without_noise(log, pmf):
    sim = BehaviorSimulator(BehaviorConfig(noise_std=0.0), rating_model=pmf).fit(log)
    users = np.arange(40)
    rng = np.random.default_rng(1)
    state = sim.initial_state(users, rng)
    for t in range(6):
        items = ((users * 7 + t * 13) % log.n_items)[:, None]
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
