"""RecommendationEnv, the batched vector env, registration and the SB3 adapter."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import recgym  # noqa: F401  (registers the ids)
from recgym.data import make_synthetic_log
from recgym.envs import (
    InvalidActionError,
    RecommendationEnv,
    RecommendationVectorEnv,
    SB3VecEnvAdapter,
    env_ids,
)
from recgym.scenario import make_scenario
from simulators.base import Behavior

SYN = dict(n_users=80, n_items=120, density=0.15, seed=3)


@pytest.fixture(scope="module")
def scenario():
    return make_scenario("synthetic", "pmf", dataset_kwargs=SYN)


@pytest.fixture(scope="module")
def replay_scenario():
    return make_scenario("synthetic", "replay", dataset_kwargs=SYN)


@pytest.fixture(scope="module")
def behavior_scenario():
    return make_scenario("synthetic", "behavior", dataset_kwargs=SYN)


def rollout(env, seed: int, n_steps: int = 60, action_seed: int = 0):
    """Random-action rollout; returns the list of (user, item, reward, terminated, truncated)."""
    rng = np.random.default_rng(action_seed)
    obs, info = env.reset(seed=seed)
    out = []
    for _ in range(n_steps):
        action = env.action_space.sample() if env.action_space.shape != () else int(rng.integers(env.action_space.n))
        obs, reward, term, trunc, info = env.step(action)
        out.append((info["user"], np.asarray(info["item"]).tolist(), round(reward, 6), term, trunc))
        if term or trunc:
            obs, info = env.reset()
    return out


# -- API conformance --------------------------------------------------------------------------
@pytest.mark.parametrize("action_mode,slate_size", [("discrete", 1), ("embedding", 1), ("discrete", 3), ("embedding", 3)])
def test_check_env_passes_for_every_action_mode(scenario, action_mode, slate_size):
    env = RecommendationEnv(scenario=scenario, action_mode=action_mode, slate_size=slate_size)
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=False)


def test_check_env_passes_for_replay_and_behavior(replay_scenario, behavior_scenario):
    for w in (replay_scenario, behavior_scenario):
        env = RecommendationEnv(scenario=w)
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)


def test_every_id_is_registered_with_a_vector_entry_point():
    ids = env_ids()
    assert "recgym/ML100K-PMF-v0" in ids and "recgym/Jester4-Behavior-v0" in ids and len(ids) == 18 + 6
    assert "recgym/ML100K-Behavior-v1" in ids and "recgym/Synthetic-Behavior-v1" in ids
    for env_id in ids:
        spec = gym.spec(env_id)
        assert spec.vector_entry_point == "recgym.envs.vector:RecommendationVectorEnv"


def test_make_and_make_vec_on_synthetic():
    env = gym.make("recgym/Synthetic-PMF-v0", dataset_kwargs=SYN, max_steps=7)
    gym_check_env(env.unwrapped, skip_render_check=True)
    venv = gym.make_vec("recgym/Synthetic-PMF-v0", num_envs=8, vectorization_mode="vector_entry_point", dataset_kwargs=SYN)
    assert isinstance(venv.unwrapped if hasattr(venv, "unwrapped") else venv, RecommendationVectorEnv)
    obs, _ = venv.reset(seed=0)
    assert obs["history_items"].shape == (8, 5)
    assert venv.observation_space.contains(obs)


# -- observation semantics --------------------------------------------------------------------
def test_episode_starts_from_first_logged_positive_items(scenario):
    env = RecommendationEnv(scenario=scenario, users="all")
    log = scenario.log
    df = log.sorted_interactions()
    user = int(df["user"].iloc[0])
    obs, _ = env.reset(seed=0, options={"user": user})
    liked = df[(df["user"] == user) & (df["rating"] >= 4)]["item"].to_numpy()[:5]
    assert obs["positive_items"][-len(liked):].tolist() == liked.tolist()
    assert obs["history_mask"].sum() == len(liked)
    assert (obs["history_time"][-len(liked):] == np.arange(-len(liked), 0)).all()
    assert set(liked) <= set(obs["consumed"].tolist())


def test_positive_queue_slides_only_on_positive_feedback(scenario):
    env = RecommendationEnv(scenario=scenario, users="all")
    obs, _ = env.reset(seed=1, options={"user": 0})
    pad = env.n_items
    for _ in range(15):
        before = obs
        obs, _, term, trunc, info = env.step(env.action_space.sample())
        liked = info["behavior"] != Behavior.SKIP
        changed_pos = not np.array_equal(before["positive_items"], obs["positive_items"])
        changed_neg = not np.array_equal(before["negative_items"], obs["negative_items"])
        assert changed_pos == liked and changed_neg == (not liked)
        queue = obs["positive_items"] if liked else obs["negative_items"]
        assert queue[-1] == info["item"]
        assert obs["history_items"][-1] == info["item"]
        assert obs["history_behavior"][-1] == info["behavior"]
        assert np.isclose(obs["history_feedback"][-1], (info["rating"] - 3) / 2)
        assert ((obs["negative_items"] != pad) == obs["negative_mask"].astype(bool)).all()
        if term or trunc:
            break


def test_embedding_action_recommends_best_unconsumed_item(scenario):
    env = RecommendationEnv(scenario=scenario, action_mode="embedding", users="all")
    obs, _ = env.reset(seed=0, options={"user": 3})
    action = np.clip(env.item_embeddings[7] * 3, -1, 1).astype(np.float32)
    scores = env.item_embeddings @ action
    blocked = set(obs["consumed"].tolist())
    expected = max((i for i in range(env.n_items) if i not in blocked), key=lambda i: scores[i])
    _, _, _, _, info = env.step(action)
    assert info["item"] == expected


def test_an_unavailable_item_is_penalised_never_substituted(scenario):
    env = RecommendationEnv(scenario=scenario, users="all")
    env.reset(seed=0, options={"user": 5})
    first = int(np.flatnonzero(env.action_masks())[0])
    _, _, _, _, info = env.step(first)
    assert not env.action_masks()[first] and not info["unavailable"]
    _, reward, _, _, info2 = env.step(first)  # already consumed
    assert info2["item"] == first and info2["unavailable"]
    assert reward == pytest.approx(-1.0) and info2["behavior"] == Behavior.SKIP
    strict = RecommendationEnv(scenario=scenario, users="all", unavailable="error")
    strict.reset(seed=0, options={"user": 5})
    strict.step(first)
    with pytest.raises(InvalidActionError, match="unavailable item"):
        strict.step(first)


def test_vector_env_reports_and_penalises_unavailable_items_per_row(scenario):
    venv = RecommendationVectorEnv(4, scenario=scenario, users="all")
    venv.reset(seed=0)
    masks = venv.action_masks()
    actions = masks.argmax(axis=1)
    venv.step(actions)
    _, rewards, _, _, info = venv.step(actions)  # every row repeats its item
    assert info["unavailable"].all() and (rewards == -1.0).all()
    assert (info["item"] == actions).all()


# -- episode rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize("slate_size", [1, 4])
def test_no_item_is_consumed_twice_in_an_episode(scenario, slate_size):
    env = RecommendationEnv(scenario=scenario, max_steps=25, slate_size=slate_size)
    obs, _ = env.reset(seed=2)
    start = set(obs["consumed"][obs["consumed"] != env.n_items].tolist())
    consumed: list[int] = []
    penalised = 0
    for _ in range(25):
        # a policy that keeps asking for the same items
        action = np.arange(slate_size, dtype=np.int64) if slate_size > 1 else 0
        obs, _, term, trunc, info = env.step(action)
        items, bad = np.atleast_1d(info["item"]), np.atleast_1d(info["unavailable"])
        consumed.extend(items[~bad].tolist())
        penalised += int(bad.sum())
        if term or trunc:
            break
    assert len(consumed) == len(set(consumed)) and penalised > 0
    assert not (set(consumed) & start)


def test_a_slate_repeating_an_item_is_penalised_at_the_repeat(scenario):
    env = RecommendationEnv(scenario=scenario, slate_size=3)
    env.reset(seed=0)
    item = int(np.flatnonzero(env.action_masks())[0])
    _, _, _, _, info = env.step(np.array([item, item, item]))
    assert info["unavailable"].tolist() == [False, True, True]


def test_truncation_after_max_steps(scenario):
    env = RecommendationEnv(scenario=scenario, max_steps=4)
    env.reset(seed=0)
    flags = [env.step(env.action_space.sample())[2:4] for _ in range(4)]
    assert flags[:3] == [(False, False)] * 3 and flags[3] == (False, True)


def test_replay_episode_terminates_when_candidates_run_out(replay_scenario):
    env = RecommendationEnv(scenario=replay_scenario, max_steps=500, users="all")
    user = int(np.argmin(np.bincount(replay_scenario.log.interactions["user"], minlength=replay_scenario.log.n_users)))
    obs, _ = env.reset(seed=0, options={"user": user})
    rated = set(replay_scenario.log.interactions.query("user == @user")["item"].tolist())
    n_left = len(rated - set(obs["consumed"].tolist()))
    items = []
    for t in range(n_left):
        obs, _, term, trunc, info = env.step(int(np.flatnonzero(env.action_masks())[0]))
        items.append(info["item"])
        assert term == (t == n_left - 1) and not trunc
    assert set(items) <= rated


def test_behavior_users_leave_and_terminate(behavior_scenario):
    env = RecommendationEnv(scenario=behavior_scenario, max_steps=200, users="all")
    left = 0
    for episode in range(20):
        env.reset(seed=episode)
        while True:
            _, _, term, trunc, info = env.step(0)  # hammering one region of the catalogue bores users
            if term or trunc:
                left += int(info["left"] and term)
                break
    assert left > 0


# -- seeding ------------------------------------------------------------------------------------
def test_same_seed_same_trajectory(behavior_scenario):
    a = rollout(RecommendationEnv(scenario=behavior_scenario), seed=11)
    b = rollout(RecommendationEnv(scenario=behavior_scenario), seed=11)
    c = rollout(RecommendationEnv(scenario=behavior_scenario), seed=12)
    assert a == b and a != c


def test_single_and_batched_env_follow_the_same_rules(behavior_scenario):
    single = RecommendationEnv(scenario=behavior_scenario, max_steps=10)
    vec = RecommendationVectorEnv(1, scenario=behavior_scenario, max_steps=10)
    obs_s, info_s = single.reset(seed=5)
    obs_v, info_v = vec.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(30):
        for key in obs_s:
            np.testing.assert_array_equal(obs_s[key], obs_v[key][0], err_msg=key)
        a = int(rng.integers(single.n_items))
        obs_s, r_s, t_s, tr_s, i_s = single.step(a)
        obs_v, r_v, t_v, tr_v, i_v = vec.step(np.array([a]))
        assert (i_s["item"], r_s, t_s, tr_s) == (int(i_v["item"][0]), float(r_v[0]), bool(t_v[0]), bool(tr_v[0]))
        if t_s or tr_s:
            obs_s, _ = single.reset()
            obs_v = {k: v for k, v in obs_v.items()}  # vec env already autoreset this row
            assert int(obs_v["user"][0, 0]) == int(obs_s["user"][0])


def test_vector_env_seeding_and_autoreset(scenario):
    def run(seed):
        venv = RecommendationVectorEnv(16, scenario=scenario, max_steps=3)
        obs, _ = venv.reset(seed=seed)
        rewards = []
        for t in range(7):
            obs, r, term, trunc, info = venv.step(np.arange(16) + t)
            rewards.append(r)
            if t % 3 == 2:
                assert (trunc | term).all() and info["_final_obs"].all()
                assert (info["final_obs"]["history_time"][:, -1] == 2).all()
                assert (obs["history_mask"].sum(1) == np.minimum(venv.starts.n_start[obs["user"][:, 0]], 5)).all()
        return np.array(rewards)

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


# -- bad input ---------------------------------------------------------------------------------
def test_invalid_actions_raise_clear_errors(scenario):
    env = RecommendationEnv(scenario=scenario)
    env.reset(seed=0)
    for bad in (-1, env.n_items, 2.5, np.nan, np.array([1, 2])):
        with pytest.raises(InvalidActionError, match="Discrete|item id|shape"):
            env.step(bad)
    emb = RecommendationEnv(scenario=scenario, action_mode="embedding")
    emb.reset(seed=0)
    d = emb.action_space.shape[0]
    for bad, msg in ((np.full(d, np.nan, np.float32), "NaN"), (np.full(d, 2.0, np.float32), "outside"), (np.zeros(d + 1, np.float32), "shape")):
        with pytest.raises(InvalidActionError, match=msg):
            emb.step(bad)


def test_stepping_a_finished_episode_raises(scenario):
    env = RecommendationEnv(scenario=scenario, max_steps=1)
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(1)


def test_unknown_user_and_bad_config_raise(scenario):
    env = RecommendationEnv(scenario=scenario)
    with pytest.raises(ValueError, match="unknown user"):
        env.reset(options={"user": 10_000})
    test_user = int(scenario.test_users[0])
    with pytest.raises(ValueError, match="not in this environment's user set"):
        env.reset(options={"user": test_user})
    with pytest.raises(ValueError, match="action_mode"):
        RecommendationEnv(scenario=scenario, action_mode="continuous")
    with pytest.raises(ValueError, match="history_length"):
        RecommendationEnv(scenario=scenario, history_length=0)
    with pytest.raises(ValueError, match="reward_mode"):
        RecommendationEnv(scenario=scenario, reward_mode="clicks")
    with pytest.raises(ValueError, match="users must be"):
        RecommendationEnv(scenario=scenario, users="validation")


def test_from_log_builds_an_environment_over_a_custom_log():
    log = make_synthetic_log(n_users=30, n_items=40, density=0.3, seed=9)
    env = RecommendationEnv.from_log(log, simulator="pmf", users="all", cache=False)
    gym_check_env(env, skip_render_check=True)
    assert env.n_items == 40


# -- stable-baselines3 ----------------------------------------------------------------------------
def test_sb3_adapter_reports_terminal_observations_and_trains_dqn(scenario):
    from stable_baselines3 import DQN

    venv = SB3VecEnvAdapter(RecommendationVectorEnv(4, scenario=scenario, max_steps=3))
    obs = venv.reset()
    assert obs["history_items"].shape == (4, 5)
    for _ in range(3):
        venv.step_async(np.zeros(4, dtype=np.int64))
        obs, rewards, dones, infos = venv.step_wait()
    assert dones.all() and all(i["TimeLimit.truncated"] for i in infos)
    assert infos[0]["terminal_observation"]["history_time"][-1] == 2
    model = DQN("MultiInputPolicy", venv, learning_starts=10, buffer_size=500, seed=0, verbose=0)
    model.learn(60)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (4,)


def test_pmf_based_simulators_share_the_pmf_of_their_log(scenario, replay_scenario, behavior_scenario):
    # one embedding space for X-PMF, X-Replay and X-Behavior: an actor trained on one means the same on the others
    np.testing.assert_array_equal(scenario.simulator.item_embeddings, replay_scenario.simulator.item_embeddings)
    np.testing.assert_array_equal(scenario.simulator.item_embeddings, behavior_scenario.simulator.item_embeddings)


def test_render_ansi_describes_the_step(scenario, behavior_scenario):
    env = RecommendationEnv(scenario=scenario, render_mode="ansi")
    obs, info = env.reset(seed=0)
    start = obs["history_items"][obs["history_mask"].astype(bool)].tolist()
    assert start and env.render() == f"user {info['user']}: start items {start}"
    _, reward, _, _, step = env.step(3)
    assert env.render() == (f"user {info['user']} step 1: items [3] rated [{round(step['rating'], 2)}] "
                            f"['{Behavior(step['behavior']).name.lower()}'] reward {reward:.3f}")
    # the text follows the episode: its step count, and the user leaving
    env = RecommendationEnv(scenario=behavior_scenario, render_mode="ansi", max_steps=200)
    _, info = env.reset(seed=0)
    steps, term = 0, False
    while not term:
        _, reward, term, _, step = env.step(int(np.flatnonzero(env.action_masks())[0]))
        steps += 1
        expected = (f"user {info['user']} step {steps}: items [{step['item']}] rated [{round(step['rating'], 2)}] "
                    f"['{Behavior(step['behavior']).name.lower()}'] reward {reward:.3f}")
        assert env.render() == expected + (" (left)" if step["left"] else "")
    assert step["left"]  # behaviour users leave before the 200-step cap
