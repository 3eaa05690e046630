"""Stock RL clients on recgym: the feature observation, the candidate actions, and the Gymnasium contract.

The learning tests train stable-baselines3's ``DQN`` / ``PPO`` with ``MlpPolicy``
and a CleanRL-style DQN written here for a few thousand steps on
``recgym/ML100K-PMF-Flat-v0``, with no masking code, and require them to end
above a uniformly random policy on the test users (fixed seeds).
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import recgym  # noqa: F401  (registers the ids)
from recgym.envs import EpisodeConfig, InvalidActionError, RecommendationEnv, RecommendationVectorEnv
from recgym.envs.registration import FLAT_CANDIDATES, env_ids, flat_env_ids
from recgym.evaluation.online import OnlineResult
from recgym.experiments.setup import make_run_setup
from recgym.scenario import make_scenario

SYN = dict(n_users=60, n_items=50, density=0.3, seed=0)
FLAT_ID = "recgym/ML100K-PMF-Flat-v0"


@pytest.fixture(scope="module")
def synthetic():
    return make_scenario("synthetic", "pmf", dataset_kwargs=SYN)


# -- the feature observation ------------------------------------------------------------------------
def test_every_id_has_a_flat_twin_with_features_and_candidates():
    flat = flat_env_ids()
    assert len(flat) == len(env_ids()) and FLAT_ID in flat and "recgym/ML100K-Behavior-Flat-v1" in flat
    for env_id in flat:
        kwargs = gym.spec(env_id).kwargs
        assert kwargs["observation"] == "features" and kwargs["candidates"] == FLAT_CANDIDATES
    assert not set(flat) & set(env_ids())


@pytest.mark.parametrize("env_id", ["recgym/Synthetic-PMF-Flat-v0", "recgym/Synthetic-Replay-Flat-v0",
                                    "recgym/Synthetic-Behavior-Flat-v0", "recgym/Synthetic-Behavior-Flat-v1"])
def test_flat_ids_pass_the_gymnasium_and_sb3_checkers(env_id):
    env = gym.make(env_id, dataset_kwargs=SYN)
    assert isinstance(env.observation_space, gym.spaces.Box) and env.observation_space.dtype == np.float32
    assert env.action_space == gym.spaces.Discrete(FLAT_CANDIDATES)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)


def test_the_ml100k_flat_id_passes_the_checkers(data_dir):
    env = gym.make(FLAT_ID, data_dir=data_dir)
    assert env.observation_space.shape == (203,)  # the length docs/clients.md and environments.md state
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    # the full catalogue as actions (candidates=None) is a feature observation too, for maskable clients
    full = gym.make(FLAT_ID, data_dir=data_dir, candidates=None)
    assert full.action_space == gym.spaces.Discrete(full.unwrapped.n_items)
    gym_check_env(full.unwrapped, skip_render_check=True)


def test_the_feature_length_does_not_depend_on_max_steps(synthetic):
    shapes = {RecommendationEnv(synthetic, observation="features", max_steps=t, candidates=4).observation_space.shape
              for t in (1, 20, 500)}
    assert len(shapes) == 1


def test_features_describe_the_candidates_the_action_picks(synthetic):
    env = RecommendationEnv(synthetic, observation="features", candidates=4, users="all")
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape and obs.dtype == np.float32 and env.observation_space.contains(obs)
    for _ in range(10):
        slate = env._slate[0].copy()
        assert len(set(slate.tolist())) == 4 and env.episode.action_masks()[0][slate].all()
        action = int(env.np_random.integers(4))
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["item"] == slate[action] and info["candidate"] == action and not info["unavailable"]
        if terminated or truncated:
            break
    # the predicted-rating feature of each candidate is the embedding model's score of that item
    names = env.features.names
    assert names[-6 * 4 :: 6] == [f"candidate[{k}].predicted" for k in range(4)]


def test_every_candidate_action_is_available_so_no_client_needs_masks(synthetic):
    env = RecommendationVectorEnv(8, synthetic, observation="features", candidates=3, max_steps=40)
    env.reset(seed=0)
    for _ in range(60):
        _, _, _, _, info = env.step(env.action_space.sample())
        assert not info["unavailable"].any()
    assert env.action_masks().shape == (8, 3) and env.action_masks().all()


def test_candidate_actions_are_validated(synthetic):
    env = RecommendationEnv(synthetic, observation="features", candidates=3)
    env.reset(seed=0)
    for bad in (3, -1, 1.5, "a", [0, 1]):
        with pytest.raises(InvalidActionError, match="Discrete\\(3\\)|candidate"):
            env.step(bad)
    env.step(np.int64(2))
    env.step(np.array(1))


@pytest.mark.parametrize("kwargs, message", [
    ({"candidates": 5}, "observation='features'"),
    ({"observation": "features", "candidates": 5, "action_mode": "embedding"}, "action_mode='discrete'"),
    ({"observation": "features", "candidates": 5, "slate_size": 2}, "slate_size=1"),
    ({"observation": "pixels"}, "unknown observation"),
    ({"observation": "features", "candidates": 0}, "candidates must be a positive integer"),
])
def test_bad_feature_settings_are_refused_with_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EpisodeConfig(**kwargs)


def test_a_test_users_held_out_ratings_never_reach_the_features(synthetic):
    """Drop every rating of test users except their start items: the start features must not change.

    The features come from the embedding model fitted on the training users only, so the
    held-out ratings cannot matter; with ``embedding_fit="all"`` (the DRR paper's setting)
    they do, which shows the test can tell.
    """
    log = synthetic.log
    probe = RecommendationEnv(synthetic, users="test")
    starts = probe.starts
    test_users = synthetic.test_users
    df = log.interactions
    keep = ~np.isin(df["user"].to_numpy(), test_users)
    for u in test_users:
        rows = df["user"].to_numpy() == u
        keep |= rows & np.isin(df["item"].to_numpy(), starts.items[u])
    reduced = log.with_interactions(df[keep])

    def start_features(dataset_log, embedding_fit):
        scenario = make_scenario(dataset_log, "pmf", embedding_fit=embedding_fit)
        assert np.array_equal(scenario.test_users, test_users)
        env = RecommendationEnv(scenario, users="test", observation="features", candidates=None)
        return np.stack([env.reset(seed=0, options={"user": int(u)})[0] for u in test_users[:5]])

    assert np.allclose(start_features(log, "train"), start_features(reduced, "train"), atol=1e-5)
    assert not np.allclose(start_features(log, "all"), start_features(reduced, "all"), atol=1e-3)


def test_recgyms_own_runner_refuses_the_flat_ids_with_the_dict_id_to_use(synthetic):
    with pytest.raises(ValueError, match="recgym/Synthetic-PMF-v0"):
        make_run_setup("recgym/Synthetic-PMF-Flat-v0", {"dataset_kwargs": SYN}, "discrete")


# -- the Gymnasium contract: masks before reset, the step limit, warnings, reprs --------------------------
def test_action_masks_before_reset_is_a_clear_error(synthetic):
    for env in (RecommendationEnv(synthetic), RecommendationVectorEnv(2, synthetic)):
        for method in ("action_masks", "expected_rewards", "simulator_state"):
            with pytest.raises(RuntimeError, match=f"{method}\\(\\) called before reset\\(\\)"):
                getattr(env, method)()


@pytest.mark.parametrize("env_id", ["recgym/Synthetic-PMF-v0", "recgym/Synthetic-PMF-Flat-v0"])
def test_spec_max_episode_steps_is_the_limit_the_episode_has(env_id):
    assert gym.make(env_id, dataset_kwargs=SYN).spec.max_episode_steps == 20
    env = gym.make(env_id, dataset_kwargs=SYN, max_steps=7, users="all")
    assert env.spec.max_episode_steps == 7
    lengths = []
    for seed in range(5):
        env.reset(seed=seed)
        steps, done = 0, False
        while not done:
            *_, terminated, truncated, _ = env.step(env.action_space.sample())
            steps, done = steps + 1, terminated or truncated
        lengths.append(steps)
    assert max(lengths) <= 7 and 7 in lengths
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", dataset_kwargs=SYN, max_steps=9)
    assert venv.spec.max_episode_steps == 9


def test_stock_clients_build_the_ids_without_warnings(data_dir):
    from stable_baselines3.common.env_util import make_vec_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=".*distutils|.*pkg_resources")  # third-party import noise
        import recgym.envs.registration as registration

        registration.register_envs()  # reinstalls recgym's filter after simplefilter reset them
        make_vec_env(FLAT_ID, n_envs=2, env_kwargs={"data_dir": data_dir}).close()
        gym.make("recgym/ML100K-Behavior-v0", data_dir=data_dir)
        gym.make_vec("recgym/ML100K-Behavior-v0", num_envs=2, vectorization_mode="vector_entry_point",
                     data_dir=data_dir)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "render_mode" in m or "out of date" in m], messages


def test_online_result_repr_is_short():
    result = OnlineResult(0.1, 2.0, 20.0, 189, 0.0, 5, [0.5] * 189)
    text = repr(result)
    assert len(text) < 300 and "189 values" in text and "0.5, 0.5" not in text


# -- stock clients learn on the feature observation without masks -------------------------------------
def mean_test_return(act, data_dir, n_episodes: int = 256, seed: int = 123) -> float:
    """Mean return of the first episode of ``n_episodes`` test users (one per row of a batched env)."""
    venv = gym.make_vec(FLAT_ID, num_envs=n_episodes, vectorization_mode="vector_entry_point", users="test",
                        data_dir=data_dir)
    obs, _ = venv.reset(seed=seed)
    returns, active = np.zeros(n_episodes), np.ones(n_episodes, dtype=bool)
    while active.any():
        obs, reward, terminated, truncated, _ = venv.step(act(obs))
        returns += reward * active
        active &= ~(terminated | truncated)
    return float(returns.mean())


@pytest.fixture(scope="module")
def random_return(data_dir):
    rng = np.random.default_rng(0)
    return mean_test_return(lambda obs: rng.integers(FLAT_CANDIDATES, size=len(obs)), data_dir)


@pytest.mark.parametrize("algo", ["DQN", "PPO"])
def test_sb3_mlp_policies_beat_random_on_the_flat_id_without_masks(algo, data_dir, random_return, one_torch_thread):
    import stable_baselines3
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(FLAT_ID, n_envs=4, seed=0, env_kwargs={"data_dir": data_dir})
    if algo == "DQN":
        model = stable_baselines3.DQN("MlpPolicy", venv, learning_starts=500, buffer_size=10_000,
                                      target_update_interval=500, exploration_fraction=0.3, learning_rate=1e-3, seed=0)
    else:
        model = stable_baselines3.PPO("MlpPolicy", venv, n_steps=64, batch_size=64, learning_rate=3e-3, seed=0)
    model.learn(3000)
    trained = mean_test_return(lambda obs: model.predict(obs, deterministic=True)[0], data_dir)
    assert trained > random_return + 1.0, (algo, trained, random_return)
    print(f"{algo}: {trained:.2f} vs random {random_return:.2f}")


def test_a_cleanrl_style_dqn_beats_random_on_the_flat_id(data_dir, random_return, one_torch_thread):
    """A single-file DQN as CleanRL writes it: an MLP on the Box, a replay buffer, a target network."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    env = gym.make(FLAT_ID, data_dir=data_dir)  # nothing recgym-specific beyond the id
    n_obs, n_actions = env.observation_space.shape[0], int(env.action_space.n)

    def mlp() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(n_obs, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84),
                                   torch.nn.ReLU(), torch.nn.Linear(84, n_actions))

    q, target = mlp(), mlp()
    target.load_state_dict(q.state_dict())
    optimiser = torch.optim.Adam(q.parameters(), lr=1e-3)
    total, buffer_size, batch, gamma, start = 3000, 3000, 64, 0.9, 300
    obs_buf = np.zeros((buffer_size, n_obs), np.float32)
    next_buf = np.zeros_like(obs_buf)
    act_buf = np.zeros(buffer_size, np.int64)
    rew_buf = np.zeros(buffer_size, np.float32)
    done_buf = np.zeros(buffer_size, np.float32)
    obs, _ = env.reset(seed=0)
    for step in range(total):
        epsilon = max(0.05, 1.0 - step / (0.5 * total))
        if rng.random() < epsilon:
            action = int(rng.integers(n_actions))
        else:
            with torch.no_grad():
                action = int(q(torch.as_tensor(obs)[None]).argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        i = step % buffer_size
        obs_buf[i], next_buf[i], act_buf[i], rew_buf[i], done_buf[i] = obs, next_obs, action, reward, terminated
        obs = env.reset()[0] if terminated or truncated else next_obs
        if step >= start and step % 4 == 0:  # CleanRL's train_frequency
            idx = rng.integers(min(step + 1, buffer_size), size=batch)
            with torch.no_grad():
                best = target(torch.as_tensor(next_buf[idx])).max(dim=1).values
                td_target = torch.as_tensor(rew_buf[idx]) + gamma * best * (1 - torch.as_tensor(done_buf[idx]))
            value = q(torch.as_tensor(obs_buf[idx])).gather(1, torch.as_tensor(act_buf[idx])[:, None])[:, 0]
            loss = torch.nn.functional.mse_loss(value, td_target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if step % 200 == 0:
                target.load_state_dict(q.state_dict())

    def greedy(batch_obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return q(torch.as_tensor(batch_obs)).argmax(dim=1).numpy()

    trained = mean_test_return(greedy, data_dir)
    assert trained > random_return + 1.0, (trained, random_return)
    print(f"CleanRL-style DQN: {trained:.2f} vs random {random_return:.2f}")
