"""Specifications of ``agents.q_heads``: DQN's Q-heads as plug-in classes.

The string names (``q_head="history"``) resolve to the classes in one place and give the
same network, bit for bit, as the classes; a custom head plugs in through ``policy_kwargs``;
runs saved before the heads were classes (their entries on the Q-network itself) still load
and train on as they would have.

Bit-identity with the code before the refactor (3fb2803) was checked outside this suite, by
running the same script under both checkouts: a DQN per head (a 150 x 120 synthetic world,
seed 3, 300 steps, 72 updates; also with max_grad_norm=0.05 so that every update clips, and on
ML-100K with PMF users, seed 21, 2,000 steps, 8-step returns, 484 updates) gave equal Q-values,
state dicts and losses under both; the old code's saved model.zip files loaded into this code
with equal Q-values and trained on (120 more steps) to the same Q-values as under the old code.
Below, the old layout is written from a new run by the test itself (the old code is not
importable here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from stable_baselines3.common.save_util import load_from_zip_file, save_to_zip_file
from torch import nn

import agents
from agents.categories import item_categories
from agents.baselines import TopicAwareGreedyAgent
from agents.q_heads import (
    Q_HEADS,
    CrossQHead,
    DotQHead,
    FeaturesQHead,
    HistoryQHead,
    LinearQHead,
    PriorQHead,
    QHead,
    QHeadInputs,
    TargetQHead,
    resolve_q_head,
)
from agents.update_counter import GradientUpdateCounter
from recgym.data import make_synthetic_log
from recgym.envs.vector import RecommendationVectorEnv
from recgym.scenario import Scenario
from simulators.pmf import PMFSimulator
from tests.helpers import scenario_from_parts

N_USERS, N_ITEMS = 80, 60

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    log = make_synthetic_log(n_users=N_USERS, n_items=N_ITEMS, density=0.2, seed=0)
    sim = PMFSimulator(dim=8).fit(log)
    perm = np.random.default_rng(0).permutation(N_USERS)
    return scenario_from_parts(log, sim, perm[:64], perm[64:])


def vec_env(scenario: Scenario) -> RecommendationVectorEnv:
    return RecommendationVectorEnv(4, scenario=scenario, users="train", action_mode="discrete")


def encoder_of(name: str) -> str:
    return "din" if name == "target" else "drr-ave"  # the target head needs a target-aware encoder


def tensor_obs(model: Any, scenario: Scenario) -> dict[str, torch.Tensor]:
    obs, _ = vec_env(scenario).reset(seed=5)
    return model.policy.obs_to_tensor(obs)[0]


def trained(scenario: Scenario, policy_kwargs: dict[str, Any], encoder: str = "drr-ave",
            steps: int = 96) -> tuple[Any, int]:
    """A DQN with these policy arguments after ``steps`` steps, and the gradient updates it took."""
    model = agents.make("dqn", vec_env(scenario), encoder=encoder, seed=2, learning_starts=16,
                        policy_kwargs=policy_kwargs)
    updates = GradientUpdateCounter()
    model.learn(steps, callback=updates)
    return model, updates.count


@pytest.mark.parametrize("name", sorted(Q_HEADS))
def test_a_heads_name_builds_and_trains_the_same_network_as_its_class(scenario, name):
    by_name, by_name_updates = trained(scenario, {"q_head": name}, encoder_of(name))
    by_class, by_class_updates = trained(scenario, {"q_head_class": Q_HEADS[name]}, encoder_of(name))
    assert type(by_name.q_net.head) is type(by_class.q_net.head) is Q_HEADS[name]
    assert by_name_updates == by_class_updates > 0
    for (key, a), (other, b) in zip(by_name.policy.state_dict().items(), by_class.policy.state_dict().items()):
        assert key == other and torch.equal(a, b), key
    obs = tensor_obs(by_name, scenario)
    with torch.no_grad():
        assert torch.equal(by_name.q_net.q_values(obs), by_class.q_net.q_values(obs))


def test_the_names_resolve_in_one_place_with_clear_errors():
    assert resolve_q_head() is LinearQHead
    assert resolve_q_head("prior") is PriorQHead and resolve_q_head(q_head_class=DotQHead) is DotQHead
    assert resolve_q_head(HistoryQHead, HistoryQHead) is HistoryQHead
    assert {Q_HEADS[n] for n in ("linear", "dot", "features", "history", "prior", "target")} == {
        LinearQHead, DotQHead, FeaturesQHead, HistoryQHead, PriorQHead, TargetQHead}
    with pytest.raises(ValueError, match="unknown q_head 'histroy'.*'history'"):
        resolve_q_head("histroy")
    with pytest.raises(ValueError, match="subclass of agents.q_heads.QHead"):
        resolve_q_head(q_head_class=nn.Linear)
    with pytest.raises(ValueError, match="disagree"):
        resolve_q_head("linear", HistoryQHead)


def test_a_bad_head_argument_names_the_head_and_the_arguments(scenario):
    with pytest.raises(TypeError, match=r"LinearQHead\(inputs, \*\*q_head_kwargs\).*\['width'\]"):
        agents.make("dqn", vec_env(scenario), policy_kwargs={"q_head_kwargs": {"width": 3}})


def test_the_prior_head_is_labelled_a_hybrid():
    assert "labelled hybrid" in PriorQHead.__doc__ and "greedy-pmf's predicted rating is an *input*" in PriorQHead.__doc__
    assert PriorQHead.scenario_inputs["prior_model"] == "embedding_model"
    # the cross head reads the embedding model's item side and fold-in, never its rating (test below)
    assert all("embedding_model" not in h.scenario_inputs.values() for h in Q_HEADS.values()
               if h not in (PriorQHead, CrossQHead))


class BiasPlusTopicsQHead(QHead):
    """A custom head for the tests: ``Q(s, a) = MLP(s)^T t_a + c_a`` over the item categories ``t_a``."""

    scenario_inputs: ClassVar[dict[str, str]] = {"item_features": "item_categories"}

    def __init__(self, inputs: QHeadInputs, item_features: np.ndarray | None = None, scale: float = 1.0) -> None:
        super().__init__(inputs)
        self.register_buffer("topics", scale * torch.as_tensor(item_features, dtype=torch.float32))
        self.mlp = inputs.mlp(self.topics.shape[1])
        self.item_bias = nn.Parameter(torch.zeros(inputs.n_items))

    def forward(self, features: torch.Tensor | None, observation: Any) -> torch.Tensor:
        return self.mlp(features) @ self.topics.T + self.item_bias


def test_a_custom_head_plugs_in_gets_its_scenario_inputs_and_saves(scenario, tmp_path):
    model, updates = trained(scenario, {"q_head_class": BiasPlusTopicsQHead, "q_head_kwargs": {"scale": 2.0}},
                             steps=64)
    head = model.q_net.head
    flags, _ = item_categories(scenario.log, scenario.embedding_model.item_embeddings)
    torch.testing.assert_close(head.topics, 2.0 * torch.as_tensor(flags, dtype=torch.float32))  # from agents.make
    assert model.q_net_target.head is not head and updates > 0
    obs = tensor_obs(model, scenario)
    with torch.no_grad():
        every = model.q_net.q_values(obs)
        torch.testing.assert_close(model.q_net.q_values(obs, torch.tensor([[3, 7]] * 4)), every[:, [3, 7]])
    model.save(tmp_path / "m.zip")
    loaded = agents.load(tmp_path / "m.zip", vec_env(scenario))
    assert type(loaded.q_net.head) is BiasPlusTopicsQHead
    with torch.no_grad():
        assert torch.equal(loaded.q_net.q_values(obs), every)


# -- the cross head -------------------------------------------------------------------------------


def history_obs(scenario: Scenario, users: str, steps: int = 4) -> dict[str, np.ndarray]:
    """Observations of 4 episodes after ``steps`` random recommendations (a history to overlap with)."""
    env = RecommendationVectorEnv(4, scenario=scenario, users=users, action_mode="discrete")
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(steps):
        obs, *_ = env.step(rng.integers(0, N_ITEMS, size=4))
    return obs


def test_the_cross_head_scores_every_item_and_starts_without_the_rating(scenario):
    model = agents.make("dqn", vec_env(scenario), seed=2, policy_kwargs={"q_head": "cross"})
    head = model.q_net.head
    assert isinstance(head, CrossQHead) and head.embedding_model is scenario.embedding_model
    obs = model.policy.obs_to_tensor(history_obs(scenario, "train"))[0]
    with torch.no_grad():
        every = model.q_net.q_values(obs)
        assert every.shape == (4, N_ITEMS)
        items = torch.tensor([[3, 7, 0]] * 4)
        torch.testing.assert_close(model.q_net.q_values(obs, items), every[:, [3, 7, 0]])
        assert head.cross_features(obs, None).shape == (4, N_ITEMS, head.history_length)
    # zero maps: every item has the same value at the start, greedy-pmf's ranking is not handed to it
    torch.testing.assert_close(every, every[:, :1].expand_as(every))


@pytest.mark.parametrize("state_terms", [True, False])
def test_the_cross_head_can_represent_greedy_pmf_topics_exactly(scenario, state_terms):
    """Expressiveness: with the rule's weights set by hand it ranks items as greedy-pmf-topics (not a default)."""
    env = RecommendationVectorEnv(4, scenario=scenario, users="test", action_mode="discrete")
    rule = TopicAwareGreedyAgent(env, scenario=scenario)  # test users: folded in from the history, as the head
    model = agents.make("dqn", vec_env(scenario), seed=2,
                        policy_kwargs={"q_head": "cross", "q_head_kwargs": {"state_terms": state_terms}})
    head = model.q_net.head
    assert head.cross_weights.weight.shape[1] == (head.state_inputs if state_terms else 0)
    half, dim = scenario.log.scale.half_range, scenario.embedding_model.dim
    with torch.no_grad():
        head.user_map.weight.zero_()
        head.user_map.weight[:dim, :dim] = torch.eye(dim) / half  # U / h against V_a
        head.user_map.weight[dim, dim + 1] = 1.0 / half  # 1 / h against c_a
        head.cross_weights.bias.zero_()
        head.cross_weights.bias[-rule.window:] = -rule.penalty  # -lambda on the rule's last `window` items
    obs = history_obs(scenario, "test")
    assert obs["history_mask"][:, -rule.window:].all()
    scores = rule.scores(obs)  # mu + b + c_a + U.V_a - lambda h penalty_a
    with torch.no_grad():
        q = model.q_net.q_values(model.policy.obs_to_tensor(obs)[0]).double().numpy() * half
    # the same up to a constant per state (mu + b and the head's value v(s)): the same ranking
    np.testing.assert_allclose(q - q[:, :1], scores - scores[:, :1], atol=1e-3)
    assert (rule.recent.penalty(obs) > 0).any()  # the topic term did take part
    np.testing.assert_array_equal(np.argsort(-q, axis=1, kind="stable")[:, :10],
                                  np.argsort(-scores, axis=1, kind="stable")[:, :10])


def test_the_cross_head_saves_and_loads(scenario, tmp_path):
    model, updates = trained(scenario, {"q_head": "cross"}, steps=64)
    assert updates > 0
    obs = tensor_obs(model, scenario)
    model.save(tmp_path / "cross.zip")
    loaded = agents.load(tmp_path / "cross.zip", vec_env(scenario))
    assert type(loaded.q_net.head) is CrossQHead
    with torch.no_grad():
        assert torch.equal(loaded.q_net.q_values(obs), model.q_net.q_values(obs))


def test_the_cross_head_needs_its_inputs(scenario):
    with pytest.raises(ValueError, match="q_head='cross' needs embedding_model"):
        agents.make("dqn", vec_env(scenario), policy_kwargs={"q_head": "cross",
                                                             "q_head_kwargs": {"embedding_model": "pmf"}})


# -- runs saved before the heads were classes -------------------------------------------------------

#: The Q-network's own entries in runs saved by 3fb2803 (agents/dqn.py of that commit: SB3's MLP
#: ``q_net`` and the heads' tables on the network itself), and the order its parameters() listed
#: them: own parameters first (``item_table``, ``item_bias``), then the encoder's, the MLP's, the
#: history weights'.
OLD_OWN_ENTRIES = ("item_table", "item_bias", "item_phi", "prior_design", "history_descriptors")


def old_name(name: str) -> str:
    """A network entry's name in a 3fb2803 run (``head.mlp.0.weight`` was ``q_net.0.weight``)."""
    if name.startswith("head.mlp."):
        return "q_net." + name[len("head.mlp."):]
    return name[len("head."):] if name.startswith("head.") else name


def old_position(name: str) -> tuple[int, int]:
    old = old_name(name)
    group = 0 if old in OLD_OWN_ENTRIES else 1 if old.startswith("features_extractor.") else \
        2 if old.startswith("q_net.") else 3
    return group, OLD_OWN_ENTRIES.index(old) if group == 0 else 0


def write_as_old_run(model: Any, name: str, source: Path, target: Path) -> None:
    """``source`` (saved by this code) rewritten as 3fb2803 wrote it: names, optimizer order, kwargs."""
    data, params, pytorch_variables = load_from_zip_file(source)
    params["policy"] = {
        prefix + old_name(key[len(prefix):]): value
        for key, value in params["policy"].items()
        for prefix in ("q_net_target.", "q_net.") if key.startswith(prefix)
    }
    names = [n for n, _ in model.q_net.named_parameters()]
    old_order = sorted(range(len(names)), key=lambda i: old_position(names[i]))  # old index -> new index
    state = params["policy.optimizer"]["state"]
    params["policy.optimizer"]["state"] = {old: state[new] for old, new in enumerate(old_order) if new in state}
    kwargs = dict(data["policy_kwargs"])
    head_kwargs = kwargs.pop("q_head_kwargs")
    kwargs.pop("q_head_class")
    data["policy_kwargs"] = {**kwargs, "q_head": name, **head_kwargs}  # item_features, prior_model at the top
    save_to_zip_file(target, data=data, params=params, pytorch_variables=pytorch_variables)


@pytest.mark.parametrize("name", ["linear", "history", "prior", "features", "dot"])
def test_a_run_saved_before_heads_were_classes_loads_and_trains_on_alike(scenario, tmp_path, name):
    model, _ = trained(scenario, {"q_head": name}, steps=64)
    model.save(tmp_path / "new.zip")
    write_as_old_run(model, name, tmp_path / "new.zip", tmp_path / "old.zip")
    _, old_params, _ = load_from_zip_file(tmp_path / "old.zip")
    assert "q_net.q_net.0.weight" in old_params["policy"]  # the old layout indeed
    as_saved = agents.load(tmp_path / "new.zip", vec_env(scenario))
    as_old = agents.load(tmp_path / "old.zip", vec_env(scenario))
    assert type(as_old.q_net.head) is Q_HEADS[name]
    # the clipped gradient norm sums the parameters' norms in the old order, so a seed trains as before
    names = {id(p): n for n, p in model.q_net.named_parameters()}
    positions = [old_position(names[id(p)]) for p in model._trained_params]
    assert positions == sorted(positions)
    obs = tensor_obs(model, scenario)
    with torch.no_grad():
        assert torch.equal(as_old.q_net.q_values(obs), model.q_net.q_values(obs))
    # the optimizer's state follows its parameters: training on from either file is the same
    for m in (as_saved, as_old):
        m.set_random_seed(7)  # the replay samples draw from the global generators
        m.learn(48, reset_num_timesteps=False)
    with torch.no_grad():
        assert torch.equal(as_old.q_net.q_values(obs), as_saved.q_net.q_values(obs))
