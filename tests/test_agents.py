"""Specifications of ``agents``: the factory, masking, PER, DEERS, the baselines, learning, save/load.

Everything runs on one small synthetic scenario (150 users x 120 items, PMF of
dimension 16, 80/20 user split) with fixed seeds, one torch thread.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import agents
from agents.baselines import DisjointLinUCB
from agents.categories import item_categories, kmeans
from agents.env_access import action_mode_of, scenario_of
from agents.masking import consumed_mask_numpy
from agents.sampling import random_available, random_unconsumed
from agents.deers import CompetitorSampler, feedback_table
from agents.arguments import validate_agent_kwargs
from agents.nstep import NStepDictReplayBuffer
from agents.per import PrioritizedDictReplayBuffer, SumTree, annealed_beta
from agents.update_counter import GradientUpdateCounter
from recgym.data import make_synthetic_log
from recgym.envs.config import EpisodeConfig
from recgym.envs.recommendation import RecommendationEnv
from recgym.envs.sb3 import SB3VecEnvAdapter
from recgym.envs.vector import RecommendationVectorEnv
from recgym.scenario import Scenario
from tests.helpers import scenario_from_parts
from recgym.evaluation.online import run_episodes
from simulators.pmf import PMFSimulator

N_USERS, N_ITEMS = 150, 120


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    log = make_synthetic_log(n_users=N_USERS, n_items=N_ITEMS, density=0.15, seed=0)
    sim = PMFSimulator(dim=16).fit(log)
    perm = np.random.default_rng(0).permutation(N_USERS)
    cut = int(0.8 * N_USERS)
    return scenario_from_parts(log, sim, perm[:cut], perm[cut:])


def vec_env(scenario: Scenario, mode: str = "discrete", n: int = 8, users: str = "train") -> RecommendationVectorEnv:
    return RecommendationVectorEnv(n, scenario=scenario, users=users, action_mode=mode)


def batch_obs(scenario: Scenario, mode: str = "discrete", n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    obs, _ = vec_env(scenario, mode, n).reset(seed=seed)
    return obs


# -- factory ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", agents.available())
def test_every_agent_builds_and_recommends_unconsumed_items(scenario, name):
    mode = agents.spec(name).action_mode
    env = vec_env(scenario, mode)
    model = agents.make(name, env, seed=0)
    obs, _ = env.reset(seed=1)
    available = env.action_masks()  # [8, n_items]: not consumed, in the user's candidates
    consumed = consumed_mask_numpy(obs["consumed"], N_ITEMS)
    actions, _ = model.predict(obs, deterministic=True)
    if mode == "discrete":
        assert actions.shape == (8,)
        assert available[np.arange(8), actions].all() and not consumed[np.arange(8), actions].any()
    else:
        assert actions.shape == (8, env.item_embeddings.shape[1])
        assert np.isfinite(actions).all() and np.abs(actions).max() <= 1.0
        # the actor reads each user's state: different users get different actions
        assert len(np.unique(actions, axis=0)) > 1
    # what the environment recommends for these actions: each user's item is unconsumed, and for
    # an embedding action it is the available item the action scores highest
    _, _, _, _, info = env.step(actions)
    items = info["item"]
    assert not info["unavailable"].any() and not consumed[np.arange(8), items].any()
    if mode == "discrete":
        np.testing.assert_array_equal(items, actions)
    else:
        scores = np.where(available, actions @ env.item_embeddings.T, -np.inf)
        np.testing.assert_array_equal(items, scores.argmax(axis=1))
    if not getattr(agents.spec(name).agent_class, "needs_live_env", False):  # these act on their live environment's own observation only
        single, _ = model.predict({k: v[0] for k, v in obs.items()}, deterministic=True)
        assert np.shape(single) == np.shape(actions[0])
        if name in ("random", "linucb"):  # they break ties at random, so the draw differs; it is still available
            assert available[0, int(single)]
        else:  # one user alone gets what it got in the batch
            np.testing.assert_allclose(single, actions[0], atol=1e-5)  # float32 batching noise


@pytest.mark.parametrize("name, setting, match", [
    ("dqn", {"gamma": float("nan")}, r"gamma=nan: must be a number in \[0, 1\]"),
    ("dqn", {"gamma": 1.5}, r"gamma=1.5: must be a number in \[0, 1\]"),
    ("dqn", {"gamma": -0.1}, r"gamma=-0.1: must be"),
    ("dqn", {"gamma": True}, r"gamma=True: must be"),
    ("dqn", {"learning_rate": float("inf")}, r"learning_rate=inf: must be a finite number > 0"),
    ("dqn", {"batch_size": 0}, r"batch_size=0: must be a positive integer"),
    ("dqn", {"buffer_size": -5}, r"buffer_size=-5: must be a positive integer"),
    ("drr", {"tau": 2}, r"tau=2: must be a number in \(0, 1\]"),
    ("ddpg", {"gamma": float("nan")}, r"gamma=nan"),
    ("deers", {"batch_size": 0}, r"batch_size=0"),
    ("linucb", {"alpha": float("nan")}, r"alpha=nan"),
])
def test_make_applies_the_command_lines_range_checks(scenario, name, setting, match):
    # the README's Python API used to build these (gamma=nan trained to NaN Q-values)
    env = vec_env(scenario, agents.spec(name).action_mode)
    with pytest.raises(ValueError, match=rf"invalid settings for agent '{name}': {match}"):
        agents.make(name, env, seed=0, **setting)


def test_gamma_zero_is_a_valid_discount(scenario):
    assert agents.make("dqn", vec_env(scenario), seed=0, gamma=0.0).gamma == 0.0  # myopic: a stateless simulator


@pytest.mark.parametrize("cls, mode, setting, match", [
    (agents.MaskedDQN, "discrete", {"gamma": float("nan")}, r"MaskedDQN: gamma=nan: must be a number in \[0, 1\]"),
    (agents.MaskedDQN, "discrete", {"batch_size": 0}, r"MaskedDQN: batch_size=0: must be a positive integer"),
    (agents.MaskedDQN, "discrete", {"per_beta0": 2.0}, r"MaskedDQN: per_beta0=2.0"),
    (agents.DEERS, "discrete", {"gamma": 1.5}, r"DEERS: gamma=1.5"),
    (agents.DEERS, "discrete", {"pairwise_alpha": float("nan")}, r"DEERS: pairwise_alpha=nan"),
    (agents.DRR, "embedding", {"tau": 2}, r"DRR: tau=2: must be a number in \(0, 1\]"),
    (agents.DRR, "embedding", {"actor_learning_rate": float("inf")}, r"DRR: actor_learning_rate=inf"),
    (agents.LinUCBAgent, "discrete", {"alpha": float("nan")}, r"LinUCBAgent: alpha=nan"),
])
def test_agent_classes_built_directly_apply_the_same_checks(scenario, cls, mode, setting, match):
    env = SB3VecEnvAdapter(vec_env(scenario, mode))
    with pytest.raises(ValueError, match=rf"invalid settings for {match}"):
        cls(env=env, seed=0, **setting)


@pytest.mark.parametrize("cls, name, mode", [(agents.MaskedDQN, "dqn", "discrete"), (agents.DRR, "drr", "embedding")])
def test_agent_classes_built_directly_have_makes_defaults(scenario, cls, name, mode):
    made = agents.make(name, vec_env(scenario, mode), seed=0)
    direct = cls(env=SB3VecEnvAdapter(vec_env(scenario, mode)), seed=0)
    for key in ("learning_rate", "buffer_size", "batch_size", "gamma", "learning_starts", "gradient_steps"):
        assert getattr(direct, key) == getattr(made, key), key
    assert direct.train_freq == made.train_freq
    if name == "dqn":
        assert direct.target_update_interval == made.target_update_interval
        assert direct.exploration_final_eps == made.exploration_final_eps == 0.05
    else:
        assert direct.tau == made.tau == 0.01


def test_unknown_agent_lists_the_valid_names(scenario):
    with pytest.raises(ValueError, match="unknown agent 'dqm'.*ddpg.*dqn.*drr.*linucb"):
        agents.make("dqm", vec_env(scenario))
    with pytest.raises(ValueError, match="available agents"):
        agents.spec("nope")


def test_unknown_encoder_lists_the_valid_ones(scenario):
    with pytest.raises(ValueError, match="unknown state encoder 'drr-avg'.*drr-ave"):
        agents.make("dqn", vec_env(scenario), encoder="drr-avg")


def test_baselines_take_no_encoder(scenario):
    with pytest.raises(ValueError, match="takes no encoder"):
        agents.make("popularity", vec_env(scenario), encoder="mean")


@pytest.mark.parametrize("name, wrong", [("dqn", "embedding"), ("drr", "discrete"), ("popularity", "embedding")])
def test_wrong_action_mode_says_how_to_build_the_env(scenario, name, wrong):
    with pytest.raises(ValueError, match=rf"needs an environment with action_mode=.*spec\('{name}'\)"):
        agents.make(name, vec_env(scenario, wrong))


def test_specs_declare_action_modes_and_default_encoders():
    assert agents.spec("dqn").action_mode == "discrete" and agents.spec("dqn").default_encoder == "drr-ave"
    assert agents.spec("drr").action_mode == "embedding" and agents.spec("drr").default_encoder == "drr-ave"
    assert agents.spec("ddpg").default_encoder == "mean"
    assert agents.spec("deers").default_encoder == "deers"
    assert set(agents.AGENTS) == set(agents.available())
    assert all(agents.spec(n).action_mode == "discrete" and agents.spec(n).default_encoder is None
               for n in ("random", "popularity", "greedy-pmf", "greedy-pmf-topics", "oracle-greedy",
                         "oracle-greedy-topics", "planner", "linucb"))


def test_every_environment_form_exposes_the_same_scenario_without_unwrapping(scenario):
    single = RecommendationEnv(scenario=scenario)
    vector = vec_env(scenario)
    forms = [
        single,
        gym.wrappers.RecordEpisodeStatistics(RecommendationEnv(scenario=scenario)),
        vector,
        SB3VecEnvAdapter(vector),
        VecMonitor(SB3VecEnvAdapter(vector)),
        DummyVecEnv([lambda: RecommendationEnv(scenario=scenario)]),
    ]
    for env in forms:
        assert scenario_of(env) is scenario
        assert action_mode_of(env) == ("discrete", 1)
    with pytest.raises(ValueError, match="not a recgym environment"):
        scenario_of(gym.make("CartPole-v1"))


def test_agents_and_protocols_never_unwrap_environments():
    """The scenario is passed down: no unwrapping helpers, no hasattr probes of environments."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for folder in ("agents", "recgym/evaluation"):
        for path in (root / folder).glob("*.py"):
            text = path.read_text()
            for banned in ("unwrap_env", "env_context", "hasattr(env", ".unwrapped"):
                assert banned not in text, f"{path.name} uses {banned}"


def test_learning_agents_train_on_a_single_env(scenario):
    model = agents.make("dqn", RecommendationEnv(scenario=scenario), seed=0, learning_starts=50)
    model.learn(128)  # one gradient step per 4 env steps with a single env
    assert model.num_timesteps == 128 and model.train_freq.frequency == 4 and model.gradient_steps == 1


@pytest.mark.parametrize("name", ["dqn", "drr"])
def test_replay_ratio_sets_the_update_schedule(scenario, name):
    config = EpisodeConfig(action_mode=agents.spec(name).action_mode)
    quarter = agents.make(name, RecommendationVectorEnv(8, scenario, config), seed=0, replay_ratio=0.25)
    assert quarter.train_freq.frequency == 1 and quarter.gradient_steps == 2  # 2 updates per 8 transitions
    single = agents.make(name, RecommendationEnv(scenario=scenario, config=config), seed=0, replay_ratio=0.25)
    assert single.train_freq.frequency == 4 and single.gradient_steps == 1
    explicit = agents.make(name, RecommendationVectorEnv(8, scenario, config), seed=0, replay_ratio=0.25,
                           gradient_steps=5)
    assert explicit.gradient_steps == 5  # an explicit schedule wins
    with pytest.raises(ValueError, match="replay_ratio"):
        validate_agent_kwargs(name, {"replay_ratio": 0}, agents.spec(name).default_encoder, {})


# -- DQN masking -----------------------------------------------------------------------------


def test_dqn_never_recommends_a_consumed_item_even_with_the_highest_q(scenario):
    model = agents.make("dqn", vec_env(scenario), seed=0)
    obs = batch_obs(scenario)
    with torch.no_grad():
        q = model.q_net(model.policy.obs_to_tensor(obs)[0]).numpy()  # [B, n_items]
    # fill each row's consumed window with its highest-valued items
    c = obs["consumed"].shape[1]
    top = np.argsort(-q, axis=1)[:, :c]
    obs = {**obs, "consumed": top}
    actions, _ = model.predict(obs, deterministic=True)
    assert not (top == actions[:, None]).any()
    np.testing.assert_array_equal(actions, np.argsort(-q, axis=1)[:, c])  # the best remaining item
    model.exploration_rate = 1.0  # exploration draws unconsumed items too
    for _ in range(20):
        explored, _ = model.predict(obs, deterministic=False)
        assert not (top == explored[:, None]).any()


@pytest.mark.parametrize("q_head", ["linear", "dot", "features", "history", "prior"])
def test_dqn_heads_score_chosen_items_like_the_whole_catalogue(scenario, q_head):
    model = agents.make("dqn", vec_env(scenario), seed=0, policy_kwargs={"q_head": q_head})
    obs = model.policy.obs_to_tensor(batch_obs(scenario))[0]
    with torch.no_grad():
        every = model.q_net.q_values(obs)
        some = model.q_net.q_values(obs, torch.tensor([[5, 9]] * 8))
    assert every.shape == (8, N_ITEMS)
    torch.testing.assert_close(every[:, [5, 9]], some)


def test_dqn_features_head_is_linear_in_the_items_descriptors(scenario, tmp_path):
    from state_encoders.features import item_content_features

    model = agents.make("dqn", vec_env(scenario), seed=0, policy_kwargs={"q_head": "features"})
    content = item_content_features(scenario.log)
    phi = model.q_net.head.item_phi
    torch.testing.assert_close(phi[:, -content.shape[1]:], torch.as_tensor(content))  # the scenario's content
    # two items with the same descriptor and bias get the same value in every state
    with torch.no_grad():
        model.q_net.head.item_phi[7] = model.q_net.head.item_phi[3]
        model.q_net.head.item_bias[7] = model.q_net.head.item_bias[3]
        q = model.q_net.q_values(model.policy.obs_to_tensor(batch_obs(scenario))[0])
    torch.testing.assert_close(q[:, 7], q[:, 3])
    model.learn(64)
    model.save(tmp_path / "m.zip")
    loaded = agents.load(tmp_path / "m.zip", vec_env(scenario))
    torch.testing.assert_close(loaded.q_net.head.item_phi, model.q_net.head.item_phi)
    with pytest.raises(ValueError, match="finite"):
        agents.make("dqn", vec_env(scenario), policy_kwargs={"q_head": "features", "item_features": np.ones((3, 2))})


def test_dqn_history_head_adds_weighted_similarity_to_the_shown_items(scenario, tmp_path):
    model = agents.make("dqn", vec_env(scenario), seed=0, policy_kwargs={"q_head": "history"})
    net = model.q_net
    env = vec_env(scenario)
    obs, _ = env.reset(seed=0)
    for _ in range(3):  # a few shown items in every row's history
        obs, *_ = env.step(np.arange(8) * 3 + 1)
    tensor_obs = model.policy.obs_to_tensor(obs)[0]
    n = obs["history_items"].shape[1]
    channels = net.head.history_descriptors.shape[0]
    with torch.no_grad():
        linear = net.head.mlp(net.extract_features(tensor_obs, net.features_extractor))
        torch.testing.assert_close(net.q_values(tensor_obs), linear)  # zero weights at the start: the linear head
        net.head.history_weights.bias[n - 1] = 2.0  # channel 0 (item embeddings), the latest item
        q = net.q_values(tensor_obs)
    table = net.features_extractor.item_embedding_table().detach().numpy()
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    latest = obs["history_items"][:, -1]
    expected = 2.0 * unit @ unit[latest].T  # [n_items, B]
    np.testing.assert_allclose((q - linear).numpy(), expected.T, atol=1e-5)
    # a padded history slot counts for nothing, whatever id it holds
    padded = {k: v.clone() for k, v in tensor_obs.items()}
    padded["history_mask"][:, -1] = 0
    with torch.no_grad():
        without = net.q_values(padded)
        padded["history_items"][:, -1] = 0
        torch.testing.assert_close(net.q_values(padded), without)
        # only the latest slot had a weight: with it padded, the linear head's values (of the padded state) remain
        torch.testing.assert_close(without, net.head.mlp(net.extract_features(padded, net.features_extractor)))
    model.learn(64)
    model.save(tmp_path / "m.zip")
    loaded = agents.load(tmp_path / "m.zip", vec_env(scenario))
    torch.testing.assert_close(loaded.q_net.head.history_descriptors, net.head.history_descriptors)
    with torch.no_grad():
        torch.testing.assert_close(loaded.q_net.q_values(tensor_obs), model.q_net.q_values(tensor_obs))
    assert channels == 2  # item embeddings, and the item categories (genres, else k-means clusters)


def test_dqn_prior_head_starts_as_greedy_pmf_on_test_users(scenario, tmp_path):
    env = vec_env(scenario, users="test")
    model = agents.make("dqn", vec_env(scenario), seed=0, policy_kwargs={"q_head": "prior"})
    greedy = agents.make("greedy-pmf", env, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(greedy.predict(obs)[0])
    tensor_obs = model.policy.obs_to_tensor(obs)[0]
    scale = scenario.log.scale
    expected = (greedy.predicted_ratings(obs) - scale.midpoint) / scale.half_range  # the fold-in of greedy-pmf
    with torch.no_grad():
        prior = model.q_net.head.prior(tensor_obs, None)
        q = model.q_net.q_values(tensor_obs)
    np.testing.assert_allclose(prior.numpy(), expected, atol=1e-5)
    torch.testing.assert_close(q, prior)  # alpha = 1, beta = 0, no bias, no history term at the start
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], greedy.predict(obs)[0])
    model.learn(64)
    model.save(tmp_path / "m.zip")
    loaded = agents.load(tmp_path / "m.zip", vec_env(scenario))
    with torch.no_grad():
        torch.testing.assert_close(loaded.q_net.q_values(tensor_obs), model.q_net.q_values(tensor_obs))
    with pytest.raises(ValueError, match="prior_model"):
        agents.make("dqn", vec_env(scenario), policy_kwargs={"q_head": "prior", "prior_model": {"reg": 1.0}})


def test_dqn_prior_head_folds_the_next_observations_in_once_for_both_networks(scenario, monkeypatch):
    import agents.q_heads as q_heads_module

    model = agents.make("dqn", vec_env(scenario), seed=0, policy_kwargs={"q_head": "prior"}, learning_starts=16)
    model.learn(64)
    assert model.q_net.head.fold_in_memo is model.q_net_target.head.fold_in_memo
    calls = []
    real = q_heads_module.fold_in
    monkeypatch.setattr(q_heads_module, "fold_in", lambda *a, **k: calls.append(1) or real(*a, **k))
    data = model.replay_buffer.sample(8)
    with torch.no_grad():
        online, target = model.q_net.q_values(data.next_observations), model.q_net_target.q_values(data.next_observations)
        assert len(calls) == 1  # the target network reused the online network's fold-in
        fresh = model.q_net.head.fold_in_ratings(data.next_observations, None)
        torch.testing.assert_close(model.q_net.head.prior(data.next_observations, None), fresh)
        other = model.replay_buffer.sample(8)  # new tensors: folded in again, not served from the memo
        model.q_net.q_values(other.next_observations)
    assert len(calls) == 3
    assert online.shape == target.shape == (8, N_ITEMS)


def test_dqn_target_maximises_over_unconsumed_items_only(scenario):
    model = agents.make("dqn", vec_env(scenario), seed=0, double_q=False)
    obs = batch_obs(scenario)
    tensor_obs = model.policy.obs_to_tensor(obs)[0]
    with torch.no_grad():
        q = model.q_net_target(tensor_obs).numpy()
    masked = np.where(consumed_mask_numpy(obs["consumed"], N_ITEMS), -np.inf, q)
    rewards, dones = torch.ones(8, 1), torch.zeros(8, 1)
    target = model.td_target(tensor_obs, rewards, dones, 0.9).numpy()[:, 0]
    np.testing.assert_allclose(target, 1.0 + 0.9 * masked.max(axis=1), rtol=1e-5)


def test_default_dqn_target_is_double_dqn(scenario):
    model = agents.make("dqn", vec_env(scenario), seed=0)
    assert model.double_q  # the default
    # the target network lags the online one; move it away so that the two disagree
    with torch.no_grad():
        for p in model.q_net_target.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    obs = batch_obs(scenario)
    tensor_obs = model.policy.obs_to_tensor(obs)[0]
    with torch.no_grad():
        online, target_q = model.q_net(tensor_obs).numpy(), model.q_net_target(tensor_obs).numpy()
    consumed = consumed_mask_numpy(obs["consumed"], N_ITEMS)
    best = np.where(consumed, -np.inf, online).argmax(axis=1)  # the online network chooses a'...
    double = target_q[np.arange(8), best]  # ...and the target network evaluates it
    plain = np.where(consumed, -np.inf, target_q).max(axis=1)
    assert (np.abs(double - plain) > 1e-3).sum() >= 4  # a plain max target would fail below
    rewards = torch.linspace(-1, 1, 8).reshape(8, 1)
    dones = torch.tensor([0.0] * 7 + [1.0]).reshape(8, 1)
    discounts = torch.full((8, 1), 0.9)
    y = model.td_target(tensor_obs, rewards, dones, discounts).numpy()[:, 0]
    expected = rewards.numpy()[:, 0] + 0.9 * double * (1 - dones.numpy()[:, 0])
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_random_unconsumed_items_avoid_the_consumed_ones():
    rng = np.random.default_rng(0)
    consumed = np.array([[0, 1, 2, 3], [4, 4, 4, 5]])
    for _ in range(50):
        items = random_unconsumed(consumed, 6, rng)
        assert items[0] in (4, 5) and items[1] in (0, 1, 2, 3)


# -- prioritized replay ------------------------------------------------------------------------


def test_sum_tree_samples_in_proportion_to_priorities():
    tree = SumTree(5)
    priorities = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    tree.update(np.arange(5), priorities)
    assert tree.total == pytest.approx(10.0)
    values = np.random.default_rng(0).random(40_000) * tree.total
    counts = np.bincount(tree.find(values), minlength=5) / 40_000
    np.testing.assert_allclose(counts, priorities / 10.0, atol=0.01)
    tree.update(np.array([0, 0]), np.array([5.0, 6.0]))  # the last value wins; sums are recomputed
    assert tree.total == pytest.approx(15.0)


def _filled_buffer(n: int = 4, alpha: float = 1.0, beta: float = 0.5) -> PrioritizedDictReplayBuffer:
    space = gym.spaces.Dict({"x": gym.spaces.Box(-10, 10, (1,), np.float32)})
    buffer = PrioritizedDictReplayBuffer(16, space, gym.spaces.Discrete(3), device="cpu", n_envs=2,
                                         alpha=alpha, beta=beta, eps=1e-6, seed=0)
    for step in range(n // 2):
        obs = {"x": np.array([[2.0 * step], [2.0 * step + 1]], dtype=np.float32)}
        buffer.add(obs, obs, np.zeros((2, 1)), np.zeros(2), np.zeros(2), [{}, {}])
    return buffer


def test_per_samples_in_proportion_to_priorities():
    buffer = _filled_buffer(4, alpha=0.5)
    td = np.array([1.0, 4.0, 9.0, 16.0])  # p^0.5 = 1, 2, 3, 4
    buffer.update_priorities(np.arange(4), td)
    counts = np.zeros(4)
    for _ in range(1000):
        sample = buffer.sample(32)
        counts += np.bincount(sample.indices, minlength=4)
        # each flat index points at its own transition: x = index (position * n_envs + env)
        np.testing.assert_array_equal(sample.observations["x"][:, 0].numpy(), sample.indices)
    np.testing.assert_allclose(counts / counts.sum(), np.array([1, 2, 3, 4]) / 10, atol=0.01)


def test_per_weights_match_hand_computed_values():
    buffer = _filled_buffer(4, alpha=1.0, beta=0.5)
    buffer.update_priorities(np.arange(4), np.array([1.0, 2.0, 4.0, 8.0]) - 1e-6)
    # P = p / 15, N = 4: w_i = (N P_i)^-0.5 / (N P_min)^-0.5 = (p_i / p_min)^-0.5
    expected = np.array([1.0, 2.0**-0.5, 0.5, 8.0**-0.5])
    np.testing.assert_allclose(buffer.importance_weights(np.arange(4)), expected, rtol=1e-6)
    np.testing.assert_allclose(buffer.probabilities(), np.array([1, 2, 4, 8]) / 15, rtol=1e-6)
    sample = buffer.sample(8)
    np.testing.assert_allclose(sample.weights.numpy()[:, 0], expected[sample.indices], rtol=1e-5)


def test_per_priority_updates_and_new_transitions_get_the_maximum():
    buffer = _filled_buffer(2, alpha=0.6)
    np.testing.assert_allclose(buffer.tree.leaves(2), [1.0, 1.0])  # max priority 1 at start
    buffer.update_priorities(np.array([1]), np.array([-3.0]))  # |δ| is used
    assert buffer.tree.get(np.array([1]))[0] == pytest.approx((3.0 + 1e-6) ** 0.6)
    assert buffer.max_priority == pytest.approx(3.0 + 1e-6)
    obs = {"x": np.zeros((2, 1), dtype=np.float32)}
    buffer.add(obs, obs, np.zeros((2, 1)), np.zeros(2), np.zeros(2), [{}, {}])
    np.testing.assert_allclose(buffer.tree.get(np.array([2, 3])), (3.0 + 1e-6) ** 0.6)
    assert annealed_beta(0.4, 1.0) == pytest.approx(0.4) and annealed_beta(0.4, 0.0) == pytest.approx(1.0)


def test_n_step_dict_buffer_returns_match_hand_computed_values():
    space = gym.spaces.Dict({"x": gym.spaces.Box(-100, 100, (1,), np.float32)})
    buffer = NStepDictReplayBuffer(16, space, gym.spaces.Discrete(3), device="cpu", n_envs=1, n_steps=3, gamma=0.5)
    # one env: an episode of 4 steps that terminates, then 2 steps of the next one (still running)
    rewards, dones = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0], [0, 0, 0, 1, 0, 0]
    for t, (r, d) in enumerate(zip(rewards, dones)):
        obs, nxt = {"x": np.array([[t]], np.float32)}, {"x": np.array([[t + 100]], np.float32)}
        buffer.add(obs, nxt, np.zeros((1, 1)), np.array([r]), np.array([d]), [{}])
    sample = buffer._get_samples(np.arange(6))
    # t=0: 1 + 0.5*2 + 0.25*4, bootstrapped with 0.5^3; t=1: 2 + 0.5*4 + 0.25*8, ends at the termination
    np.testing.assert_allclose(sample.rewards.numpy()[:, 0], [3.0, 6.0, 8.0, 8.0, 32.0, 32.0])
    np.testing.assert_allclose(sample.discounts.numpy()[:, 0], [0.125, 0.125, 0.25, 0.5, 0.25, 0.5])
    np.testing.assert_array_equal(sample.dones.numpy()[:, 0], [0, 1, 1, 1, 0, 0])  # never crosses episodes
    # the bootstrapped observation is the one after the last step used; the newest step cuts the sequence
    np.testing.assert_array_equal(sample.next_observations["x"].numpy()[:, 0], [102, 103, 103, 103, 105, 105])
    assert buffer.timeouts[5, 0] == 0  # the temporary cut at the newest position is undone


@pytest.mark.parametrize("name", ["dqn", "drr"])
def test_the_update_counter_counts_every_gradient_step_through_logger_dumps(scenario, name):
    model = agents.make(name, vec_env(scenario, agents.spec(name).action_mode), seed=0, learning_starts=32)
    taken = []
    train = model.train

    def counting_train(gradient_steps: int, batch_size: int) -> None:
        taken.append(gradient_steps)
        train(gradient_steps=gradient_steps, batch_size=batch_size)

    model.train = counting_train
    updates = GradientUpdateCounter(start=7)
    assert updates.count == 7  # kept until the model logs a count of its own
    # log_interval=1 dumps (and clears) the logger after every episode, mid-rollout
    model.learn(256, callback=updates, log_interval=1)
    assert updates.count == sum(taken) > 0
    with pytest.raises(ValueError, match="start must be a whole number >= 0"):
        GradientUpdateCounter(start=-1)


def test_dqn_n_steps_uses_the_n_step_buffer_and_refuses_per(scenario):
    model = agents.make("dqn", vec_env(scenario), seed=0, n_steps=3, learning_starts=32)
    assert isinstance(model.replay_buffer, NStepDictReplayBuffer)
    assert (model.replay_buffer.n_steps, model.replay_buffer.gamma) == (3, model.gamma)
    updates = GradientUpdateCounter()
    model.learn(128, callback=updates)
    assert updates.count > 0
    with pytest.raises(ValueError, match="n_steps"):
        agents.make("dqn", vec_env(scenario), seed=0, n_steps=3, prioritized_replay=True)
    with pytest.raises(ValueError, match="prioritized replay"):  # DRR replays with PER by default
        agents.make("drr", vec_env(scenario, "embedding"), seed=0, n_steps=3)
    drr = agents.make("drr", vec_env(scenario, "embedding"), seed=0, n_steps=3, prioritized_replay=False)
    assert isinstance(drr.replay_buffer, NStepDictReplayBuffer) and drr.replay_buffer.n_steps == 3


def test_n_steps_is_bounded_by_what_the_buffer_holds_per_environment(scenario):
    # 10**9 used to build and then die in the first update with MemoryError (batch x n_steps arrays)
    with pytest.raises(ValueError, match=r"n_steps=1000000000 is more than the replay buffer holds.*buffer_size"):
        agents.make("dqn", vec_env(scenario), seed=0, n_steps=10**9)
    # 8 envs share buffer_size 80: 10 transitions each, so n = 10 fits and 11 does not
    assert agents.make("dqn", vec_env(scenario), seed=0, n_steps=10, buffer_size=80).replay_buffer.n_steps == 10
    with pytest.raises(ValueError, match=r"n_steps=11 .*\(10 transitions"):
        agents.make("dqn", vec_env(scenario), seed=0, n_steps=11, buffer_size=80)


def test_drr_trains_with_per_weights_and_updates_priorities(scenario):
    model = agents.make("drr", vec_env(scenario, "embedding"), seed=0, learning_starts=64)
    model.learn(256)
    assert isinstance(model.replay_buffer, PrioritizedDictReplayBuffer)
    leaves = model.replay_buffer.tree.leaves(model.replay_buffer.n_transitions())
    assert len(np.unique(leaves)) > 10  # TD errors replaced the initial maximal priorities
    assert 0.4 < model.replay_buffer.beta <= 1.0


def test_drr_actor_and_critic_learn_their_own_state_modules_at_drr_rates(scenario):
    model = agents.make("drr", vec_env(scenario, "embedding"), seed=0, learning_starts=32)
    actor_encoder, critic_encoder = model.actor.features_extractor, model.critic.features_extractor
    assert actor_encoder is not critic_encoder  # separate extractors: the critic's gets the TD gradient
    weights = {name: enc.position_weights.detach().clone() for name, enc in (("actor", actor_encoder), ("critic", critic_encoder))}
    table = critic_encoder.item_embedding.weight.detach().clone()
    model.learn(128)
    assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert model.critic.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert not torch.equal(weights["actor"], actor_encoder.position_weights)
    assert not torch.equal(weights["critic"], critic_encoder.position_weights)
    torch.testing.assert_close(critic_encoder.item_embedding.weight, table)  # PMF tables frozen by default


# -- DEERS ---------------------------------------------------------------------------------------


def test_competitors_share_a_category_and_have_the_opposite_feedback():
    categories = np.array([[1, 0], [1, 0], [1, 1], [0, 1], [0, 1]], dtype=bool)
    feedback = np.array([[1, -1, 1, -1, 0], [-1, -1, -1, 1, 1]], dtype=np.int8)
    sampler = CompetitorSampler(categories, feedback, seed=0)
    users = np.array([0, 0, 1, 1, 0])
    items = np.array([0, 3, 3, 0, 1])
    liked = np.array([True, False, True, True, True])
    drawn = set()
    for _ in range(50):
        comp, valid = sampler.sample(users, items, liked)
        # user 0 liked item 0 (category 0): the disliked category-0 items -> 1
        # user 0 disliked item 3 (category 1): the liked category-1 items -> 2
        # user 1 liked item 3 (category 1): the disliked category-1 items -> 2 (4 was liked)
        np.testing.assert_array_equal(comp[:3], [1, 2, 2])
        # user 1 liked item 0 (category 0): items 1 and 2, drawn uniformly
        assert comp[3] in (1, 2)
        drawn.add(int(comp[3]))
        # user 0 liked item 1 but liked every other category-0 item: no competitor
        np.testing.assert_array_equal(valid, [True, True, True, True, False])
        assert comp[4] == items[4]
    assert drawn == {1, 2}


def test_competitor_sampling_on_the_scenario_respects_categories_and_feedback(scenario):
    flags, source = item_categories(scenario.log, scenario.item_embeddings)
    assert source == "genres"
    table = feedback_table(scenario, "log")
    assert not table[scenario.test_users].any()  # test users' ratings never reach training
    sampler = CompetitorSampler(flags, table, seed=0)
    rng = np.random.default_rng(0)
    users = rng.choice(scenario.train_users, 500)
    items = rng.integers(N_ITEMS, size=500)
    liked = rng.random(500) < 0.5
    comp, valid = sampler.sample(users, items, liked)
    assert valid.mean() > 0.5
    shares = (flags[items] & flags[comp]).any(axis=1)
    assert shares[valid].all()
    assert (table[users, comp][valid] == np.where(liked, -1, 1)[valid]).all()
    assert (comp[valid] != items[valid]).all()


def test_categories_fall_back_to_kmeans_without_genres(scenario):
    no_genres = dataclasses.replace(scenario.log, item_features=None)
    flags, source = item_categories(no_genres, scenario.simulator.item_embeddings, n_clusters=6)
    assert source == "kmeans" and flags.shape == (N_ITEMS, 6) and (flags.sum(axis=1) == 1).all()
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.repeat(centres, 20, axis=0) + np.random.default_rng(0).normal(0, 0.5, (60, 2))
    labels, _ = kmeans(points, 3, seed=0)
    assert all(len(set(labels[i * 20 : (i + 1) * 20])) == 1 for i in range(3))
    assert len(set(labels)) == 3


def test_the_pairwise_term_changes_the_deers_loss(scenario):
    model = agents.make("deers", vec_env(scenario), seed=0, learning_starts=64)
    model.learn(200)
    data = model.replay_buffer.sample(64)
    state = model.competitors._rng.bit_generator.state
    plain, _, parts0 = model.compute_loss(data, pairwise_alpha=0.0)
    model.competitors._rng.bit_generator.state = state  # the same competitors for both losses
    paired, _, parts = model.compute_loss(data, pairwise_alpha=0.5)
    assert parts["pairwise"] > 0 and parts["valid"] > 0.3
    assert plain.item() == pytest.approx(parts0["td"], rel=1e-5)
    assert paired.item() == pytest.approx(parts["td"] - 0.5 * parts["pairwise"], rel=1e-5)
    assert paired.item() < plain.item()


def test_deers_takes_the_scenario_it_is_given_and_never_digs_it_out_of_the_env(scenario, monkeypatch):
    import agents.deers as deers_module
    import agents.registry as registry_module

    def refuse(env):
        raise AssertionError("the scenario was read back out of the env")

    monkeypatch.setattr(deers_module, "scenario_of", refuse)
    monkeypatch.setattr(registry_module, "scenario_of", refuse)
    model = agents.make("deers", vec_env(scenario), seed=0, learning_starts=64, scenario=scenario)
    assert model.scenario is scenario and model.competitors is not None


def test_deers_scores_every_item_like_it_scores_one(scenario):
    model = agents.make("deers", vec_env(scenario), seed=0)
    obs = model.policy.obs_to_tensor(batch_obs(scenario))[0]
    with torch.no_grad():
        all_items = model.q_net.q_values(obs)
        some = model.q_net.q_values(obs, torch.tensor([[3, 7]] * 8))
    torch.testing.assert_close(all_items[:, [3, 7]], some)


# -- baselines --------------------------------------------------------------------------------------


def test_popularity_picks_the_most_rated_unconsumed_item(scenario):
    model = agents.make("popularity", vec_env(scenario))
    df = scenario.log.interactions
    counts = np.bincount(df[df["user"].isin(scenario.train_users)]["item"], minlength=N_ITEMS)
    order = np.argsort(-counts, kind="stable")
    obs = batch_obs(scenario)
    obs["consumed"][:] = N_ITEMS
    obs["consumed"][:, 0] = order[0]
    actions, _ = model.predict(obs)
    assert (actions == order[1]).all()


def test_greedy_pmf_picks_the_argmax_predicted_rating(scenario):
    model = agents.make("greedy-pmf", vec_env(scenario), seed=0)
    model.learn(0)
    obs = batch_obs(scenario)
    ratings = model.predicted_ratings(obs)
    masked = np.where(consumed_mask_numpy(obs["consumed"], N_ITEMS), -np.inf, ratings)
    np.testing.assert_array_equal(model.predict(obs)[0], masked.argmax(axis=1))
    # training users: the scenario's embedding model (fitted on training ratings only), unclipped
    pmf, users = scenario.embedding_model, obs["user"][:, 0]
    expected = pmf.user_embeddings[users] @ pmf.item_embeddings.T + pmf.user_bias[users, None] + pmf.item_bias + pmf.global_mean
    np.testing.assert_allclose(ratings, expected, rtol=1e-4)
    assert not scenario.seen_users()[scenario.test_users].any()


def test_greedy_pmf_folds_in_test_users_by_ridge_regression(scenario):
    model = agents.make("greedy-pmf", vec_env(scenario), seed=0)
    model.learn(0)
    obs = batch_obs(scenario)
    u = scenario.test_users[0]
    obs["user"][:] = u
    factors, bias = model.user_factors(obs)
    pmf = scenario.embedding_model
    mask = obs["history_mask"][0].astype(bool)
    items = obs["history_items"][0][mask]
    ratings = obs["history_feedback"][0][mask] * 2.0 + 3.0
    design = np.c_[pmf.item_embeddings[items], np.ones(items.size)]
    gram = design.T @ design + np.diag(np.r_[np.full(pmf.dim, pmf.reg), pmf.bias_reg])
    solution = np.linalg.solve(gram, design.T @ (ratings - pmf.global_mean - pmf.item_bias[items]))
    np.testing.assert_allclose(factors[0], solution[:-1], rtol=1e-4, atol=1e-6)
    assert bias[0] == pytest.approx(solution[-1], rel=1e-4)


def test_oracle_greedy_achieves_the_maximum_expected_one_step_reward(scenario):
    env = vec_env(scenario)
    model = agents.make("oracle-greedy", env)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        best = np.where(env.action_masks(), env.expected_rewards(), -np.inf).max(axis=1)
        actions, _ = model.predict(obs)
        obs, rewards, *_ = env.step(actions)
        np.testing.assert_allclose(rewards, best, rtol=1e-6)  # PMF answers its expected reward exactly


def test_random_never_repeats_an_item_in_an_episode(scenario):
    env = RecommendationEnv(scenario=scenario, max_steps=40)
    model = agents.make("random", env, seed=0)
    for episode in range(5):
        obs, _ = env.reset(seed=episode)
        seen = set(obs["consumed"][obs["consumed"] < N_ITEMS].tolist())
        done = False
        while not done:
            action, _ = model.predict(obs)
            obs, _, terminated, truncated, info = env.step(action)
            assert info["item"] == int(action) and int(action) not in seen
            seen.add(int(action))
            done = terminated or truncated


def test_linucb_update_equations_match_a_hand_computed_two_item_example():
    bandit = DisjointLinUCB(n_arms=2, dim=2, alpha=0.5, ridge=1.0)
    bandit.update(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([0, 0]), np.array([1.0, 0.0]))
    # A_0 = I + [1,0][1,0]^T + [1,1][1,1]^T = [[3, 1], [1, 2]], b_0 = [1, 0]
    a_inv = np.array([[2.0, -1.0], [-1.0, 3.0]]) / 5.0
    np.testing.assert_allclose(bandit.A_inv[0], a_inv)
    np.testing.assert_allclose(bandit.b[0], [1.0, 0.0])
    np.testing.assert_allclose(bandit.theta[0], [0.4, -0.2])
    np.testing.assert_allclose(bandit.A_inv[1], np.eye(2))  # arm 1 untouched
    # p_0([1, 0]) = 0.4 + 0.5 sqrt(2/5); p_1([1, 0]) = 0 + 0.5 sqrt(1)
    np.testing.assert_allclose(bandit.ucb(np.array([[1.0, 0.0]])), [[0.4 + 0.5 * np.sqrt(0.4), 0.5]])


def test_linucb_learns_online_from_the_environment(scenario):
    untrained = _test_reward(scenario, agents.make("linucb", vec_env(scenario, n=16), seed=0), "discrete")
    random_reward = _test_reward(scenario, agents.make("random", vec_env(scenario), seed=0), "discrete")
    model = agents.make("linucb", vec_env(scenario, n=16), seed=0)
    model.learn(640)
    assert model.num_timesteps == 640
    learned = _test_reward(scenario, model, "discrete")
    # 640 online steps on the training users lift the held-out users' reward per step well above
    # a random recommender and the same bandit before learning (measured: 0.18 vs -0.02 and -0.02)
    assert learned > random_reward + 0.1, (learned, random_reward)
    assert learned > untrained + 0.1, (learned, untrained)


# -- learning -------------------------------------------------------------------------------------------


def _test_reward(scenario, model, mode: str) -> float:
    return run_episodes(model, vec_env(scenario, mode, n=16, users="test"), seed=0).avg_reward_per_step


def test_dqn_and_drr_beat_random_on_held_out_users(scenario):
    random_reward = _test_reward(scenario, agents.make("random", vec_env(scenario), seed=0), "discrete")
    popularity_reward = _test_reward(scenario, agents.make("popularity", vec_env(scenario)), "discrete")
    dqn = agents.make("dqn", vec_env(scenario, n=16), seed=0)
    dqn.learn(5000)
    dqn_reward = _test_reward(scenario, dqn, "discrete")
    drr = agents.make("drr", vec_env(scenario, "embedding", n=16), seed=0)
    drr.learn(5000)
    drr_reward = _test_reward(scenario, drr, "embedding")
    print(f"average reward per step on test users: random {random_reward:.3f}, popularity {popularity_reward:.3f}, "
          f"dqn {dqn_reward:.3f}, drr {drr_reward:.3f}")
    assert dqn_reward > random_reward + 0.05
    assert drr_reward > random_reward + 0.03
    assert dqn_reward > popularity_reward


def test_greedy_pmf_topics_subtracts_the_recent_topics_of_each_item(scenario):
    from agents.categories import item_categories

    base = agents.make("greedy-pmf", vec_env(scenario), seed=0)
    model = agents.make("greedy-pmf-topics", vec_env(scenario), seed=0, penalty=0.25, window=2)
    env = vec_env(scenario)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(np.arange(8) * 5)
    obs, *_ = env.step(np.arange(8) * 5 + 2)
    flags, _ = item_categories(scenario.log, scenario.embedding_model.item_embeddings)
    flags = flags.astype(float)
    shares = flags / np.maximum(flags.sum(axis=1, keepdims=True), 1)
    last = obs["history_items"][:, -2:]
    counts = np.stack([flags[row[obs["history_mask"][i, -2:].astype(bool)]].sum(axis=0) for i, row in enumerate(last)])
    expected = base.predicted_ratings(obs) - 0.25 * scenario.log.scale.half_range * counts @ shares.T
    np.testing.assert_allclose(model.scores(obs), expected, rtol=1e-6)
    # with no penalty it is greedy-pmf
    plain = agents.make("greedy-pmf-topics", vec_env(scenario), seed=0, penalty=0.0)
    np.testing.assert_array_equal(plain.predict(obs)[0], base.predict(obs)[0])
    for bad in ({"penalty": -1.0}, {"penalty": float("nan")}, {"window": 0}, {"window": 1.5}):
        with pytest.raises(ValueError, match="greedy-pmf-topics"):
            agents.make("greedy-pmf-topics", vec_env(scenario), **bad)


def test_oracle_greedy_topics_is_oracle_greedy_minus_the_topic_rule(scenario):
    env = vec_env(scenario)
    oracle = agents.make("oracle-greedy", env, seed=0)
    model = agents.make("oracle-greedy-topics", env, seed=0, penalty=3.0, window=2)
    rule = agents.make("greedy-pmf-topics", env, seed=0, window=2)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(np.arange(8) * 5)
    obs, *_ = env.step(np.arange(8) * 5 + 2)
    penalty = rule.recent_topics(obs) @ rule.recent.shares.T  # the same topics and window as greedy-pmf-topics
    assert penalty.max() > 0
    expected = oracle.scores(obs) - 3.0 * penalty
    np.testing.assert_allclose(model.scores(obs), expected, rtol=1e-9)
    plain = agents.make("oracle-greedy-topics", env, seed=0, penalty=0.0)
    np.testing.assert_array_equal(plain.predict(obs)[0], oracle.predict(obs)[0])
    for bad in ({"penalty": -1.0}, {"penalty": float("inf")}, {"window": 0}):
        with pytest.raises(ValueError, match="oracle-greedy-topics"):
            agents.make("oracle-greedy-topics", env, **bad)


# -- save / load ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dqn", "drr", "ddpg", "deers", "popularity", "greedy-pmf", "greedy-pmf-topics",
                                  "linucb", "oracle-greedy", "oracle-greedy-topics", "planner"])
def test_save_load_round_trip_gives_identical_predictions(scenario, tmp_path, name):
    mode = agents.spec(name).action_mode
    env = vec_env(scenario, mode)
    model = agents.make(name, env, seed=0, **({"learning_starts": 32} if agents.spec(name).uses_encoder else {}))
    model.learn(96)
    model.save(tmp_path / "model")
    loaded = agents.load(tmp_path / "model", env)
    assert type(loaded) is type(model)
    obs, _ = env.reset(seed=3)
    before, _ = model.predict(obs, deterministic=True)
    after, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(before, after)


def test_loading_something_else_is_a_clear_error(scenario, tmp_path):
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a saved recgym agent"):
        agents.load(tmp_path / "junk.zip", vec_env(scenario))
