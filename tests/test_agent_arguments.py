"""The agents' argument models (agents/arguments.py): the one source of their defaults and checks (issue 23).

The recorded values below come from the code before the models (commit e5d1c91): the defaults each
agent listed (``agent_arguments``) and the settings each built agent really had. The models must give
the same, so no run trains differently for their sake.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import agents
from agents.arguments import (AgentArguments, arguments_model, check_constructor_arguments, constructor_parameters,
                              validate_agent_kwargs)
from recgym.data import make_synthetic_log
from recgym.envs import RecommendationVectorEnv
from recgym.envs.sb3 import SB3VecEnvAdapter
from simulators.pmf import PMFSimulator
from tests.helpers import scenario_from_parts

# agents.arguments.agent_arguments(name) at e5d1c91, before the models
OLD_ARGUMENTS = {'ddpg': {'actor_learning_rate': 0.0001,
          'action_penalty': 0.1,
          'prioritized_replay': False,
          'per_alpha': 0.6,
          'per_beta0': 0.4,
          'per_eps': 1e-06,
          'learning_rate': 0.001,
          'buffer_size': 100000,
          'learning_starts': 500,
          'batch_size': 64,
          'tau': 0.01,
          'gamma': 0.9,
          'train_freq': 1,
          'gradient_steps': 1,
          'action_noise': None,
          'replay_buffer_class': None,
          'replay_buffer_kwargs': None,
          'optimize_memory_usage': False,
          'n_steps': 1,
          'tensorboard_log': None,
          'policy_kwargs': None,
          'verbose': 0,
          'encoder_kwargs': None,
          'freeze_embeddings': None,
          'normalize_embeddings': None,
          'replay_ratio': 0.125,
          'noise': 'ou',
          'noise_sigma': 0.2},
 'deers': {'pairwise_alpha': 0.1,
           'pairwise_clip': None,
           'competitor_feedback': 'log',
           'n_clusters': None,
           'double_q': False,
           'prioritized_replay': False,
           'per_alpha': 0.6,
           'per_beta0': 0.4,
           'per_eps': 1e-06,
           'learning_rate': 0.001,
           'buffer_size': 100000,
           'learning_starts': 500,
           'batch_size': 64,
           'tau': 1.0,
           'gamma': 0.9,
           'train_freq': 1,
           'gradient_steps': 1,
           'replay_buffer_class': None,
           'replay_buffer_kwargs': None,
           'optimize_memory_usage': False,
           'n_steps': 1,
           'target_update_interval': 5000,
           'exploration_fraction': 0.2,
           'exploration_initial_eps': 1.0,
           'exploration_final_eps': 0.05,
           'max_grad_norm': 10.0,
           'stats_window_size': 100,
           'tensorboard_log': None,
           'policy_kwargs': None,
           'verbose': 0,
           'encoder_kwargs': None,
           'freeze_embeddings': None,
           'normalize_embeddings': None,
           'replay_ratio': 0.25},
 'dqn': {'double_q': True,
         'prioritized_replay': False,
         'per_alpha': 0.6,
         'per_beta0': 0.4,
         'per_eps': 1e-06,
         'learning_rate': 0.001,
         'buffer_size': 100000,
         'learning_starts': 500,
         'batch_size': 64,
         'tau': 1.0,
         'gamma': 0.9,
         'train_freq': 1,
         'gradient_steps': 1,
         'replay_buffer_class': None,
         'replay_buffer_kwargs': None,
         'optimize_memory_usage': False,
         'n_steps': 1,
         'target_update_interval': 5000,
         'exploration_fraction': 0.2,
         'exploration_initial_eps': 1.0,
         'exploration_final_eps': 0.05,
         'max_grad_norm': 10.0,
         'stats_window_size': 100,
         'tensorboard_log': None,
         'policy_kwargs': None,
         'verbose': 0,
         'encoder_kwargs': None,
         'freeze_embeddings': None,
         'normalize_embeddings': None,
         'replay_ratio': 0.25},
 'drr': {'actor_learning_rate': 0.0001,
         'action_penalty': 0.1,
         'prioritized_replay': True,
         'per_alpha': 0.6,
         'per_beta0': 0.4,
         'per_eps': 1e-06,
         'learning_rate': 0.001,
         'buffer_size': 100000,
         'learning_starts': 500,
         'batch_size': 64,
         'tau': 0.01,
         'gamma': 0.9,
         'train_freq': 1,
         'gradient_steps': 1,
         'action_noise': None,
         'replay_buffer_class': None,
         'replay_buffer_kwargs': None,
         'optimize_memory_usage': False,
         'n_steps': 1,
         'tensorboard_log': None,
         'policy_kwargs': None,
         'verbose': 0,
         'encoder_kwargs': None,
         'freeze_embeddings': None,
         'normalize_embeddings': None,
         'replay_ratio': 0.125,
         'noise': 'ou',
         'noise_sigma': 0.2},
 'greedy-pmf': {'scenario': None},
 'greedy-pmf-topics': {'penalty': 0.5, 'window': 2, 'scenario': None},
 'linucb': {'alpha': 0.5, 'ridge': 1.0, 'scenario': None},
 'oracle-greedy': {'scenario': None},
 'oracle-greedy-topics': {'penalty': 6.0, 'window': 2, 'scenario': None},
 'planner': {'scenario': None, 'horizon': 8, 'n_candidates': 8, 'n_diverse': 8, 'shortlist': 32},
 'popularity': {'scenario': None},
 'random': {'scenario': None}}

# repr of the attributes of agents.make(name, env of 1 or 8 rows) and of the classes built directly (8 rows), at e5d1c91
OLD_BUILT = {'dqn/1': {'learning_rate': '0.001',
           'buffer_size': '100000',
           'batch_size': '64',
           'tau': '1.0',
           'gamma': '0.9',
           'learning_starts': '500',
           'gradient_steps': '1',
           'target_update_interval': '5000',
           'exploration_fraction': '0.2',
           'exploration_initial_eps': '1.0',
           'exploration_final_eps': '0.05',
           'max_grad_norm': '10.0',
           'double_q': 'True',
           'prioritized_replay': 'False',
           'per_beta0': '0.4',
           'n_step_returns': '1',
           'optimize_memory_usage': 'False',
           'verbose': '0',
           'train_freq': "(4, 'step')",
           'replay_buffer': 'DictReplayBuffer'},
 'dqn/8': {'learning_rate': '0.001',
           'buffer_size': '100000',
           'batch_size': '64',
           'tau': '1.0',
           'gamma': '0.9',
           'learning_starts': '500',
           'gradient_steps': '2',
           'target_update_interval': '5000',
           'exploration_fraction': '0.2',
           'exploration_initial_eps': '1.0',
           'exploration_final_eps': '0.05',
           'max_grad_norm': '10.0',
           'double_q': 'True',
           'prioritized_replay': 'False',
           'per_beta0': '0.4',
           'n_step_returns': '1',
           'optimize_memory_usage': 'False',
           'verbose': '0',
           'train_freq': "(1, 'step')",
           'replay_buffer': 'DictReplayBuffer'},
 'MaskedDQN/direct': {'learning_rate': '0.001',
                      'buffer_size': '100000',
                      'batch_size': '64',
                      'tau': '1.0',
                      'gamma': '0.9',
                      'learning_starts': '500',
                      'gradient_steps': '2',
                      'target_update_interval': '5000',
                      'exploration_fraction': '0.2',
                      'exploration_initial_eps': '1.0',
                      'exploration_final_eps': '0.05',
                      'max_grad_norm': '10.0',
                      'double_q': 'True',
                      'prioritized_replay': 'False',
                      'per_beta0': '0.4',
                      'n_step_returns': '1',
                      'optimize_memory_usage': 'False',
                      'verbose': '0',
                      'train_freq': "(1, 'step')"},
 'deers/1': {'learning_rate': '0.001',
             'buffer_size': '100000',
             'batch_size': '64',
             'tau': '1.0',
             'gamma': '0.9',
             'learning_starts': '500',
             'gradient_steps': '1',
             'target_update_interval': '5000',
             'exploration_fraction': '0.2',
             'exploration_initial_eps': '1.0',
             'exploration_final_eps': '0.05',
             'max_grad_norm': '10.0',
             'double_q': 'False',
             'prioritized_replay': 'False',
             'per_beta0': '0.4',
             'pairwise_alpha': '0.1',
             'pairwise_clip': 'None',
             'n_clusters': 'None',
             'competitor_feedback': "'log'",
             'n_step_returns': '1',
             'optimize_memory_usage': 'False',
             'verbose': '0',
             'train_freq': "(4, 'step')",
             'replay_buffer': 'DictReplayBuffer'},
 'deers/8': {'learning_rate': '0.001',
             'buffer_size': '100000',
             'batch_size': '64',
             'tau': '1.0',
             'gamma': '0.9',
             'learning_starts': '500',
             'gradient_steps': '2',
             'target_update_interval': '5000',
             'exploration_fraction': '0.2',
             'exploration_initial_eps': '1.0',
             'exploration_final_eps': '0.05',
             'max_grad_norm': '10.0',
             'double_q': 'False',
             'prioritized_replay': 'False',
             'per_beta0': '0.4',
             'pairwise_alpha': '0.1',
             'pairwise_clip': 'None',
             'n_clusters': 'None',
             'competitor_feedback': "'log'",
             'n_step_returns': '1',
             'optimize_memory_usage': 'False',
             'verbose': '0',
             'train_freq': "(1, 'step')",
             'replay_buffer': 'DictReplayBuffer'},
 'drr/1': {'learning_rate': '0.001',
           'buffer_size': '100000',
           'batch_size': '64',
           'tau': '0.01',
           'gamma': '0.9',
           'learning_starts': '500',
           'gradient_steps': '1',
           'prioritized_replay': 'True',
           'per_beta0': '0.4',
           'actor_learning_rate': '0.0001',
           'action_penalty': '0.1',
           'n_step_returns': '1',
           'optimize_memory_usage': 'False',
           'verbose': '0',
           'train_freq': "(8, 'step')",
           'replay_buffer': 'PrioritizedDictReplayBuffer',
           'per_alpha': '0.6',
           'per_eps': '1e-06',
           'action_noise': 'OrnsteinUhlenbeckActionNoise0.2'},
 'drr/8': {'learning_rate': '0.001',
           'buffer_size': '100000',
           'batch_size': '64',
           'tau': '0.01',
           'gamma': '0.9',
           'learning_starts': '500',
           'gradient_steps': '1',
           'prioritized_replay': 'True',
           'per_beta0': '0.4',
           'actor_learning_rate': '0.0001',
           'action_penalty': '0.1',
           'n_step_returns': '1',
           'optimize_memory_usage': 'False',
           'verbose': '0',
           'train_freq': "(1, 'step')",
           'replay_buffer': 'PrioritizedDictReplayBuffer',
           'per_alpha': '0.6',
           'per_eps': '1e-06',
           'action_noise': 'OrnsteinUhlenbeckActionNoise0.2'},
 'DRR/direct': {'learning_rate': '0.001',
                'buffer_size': '100000',
                'batch_size': '64',
                'tau': '0.01',
                'gamma': '0.9',
                'learning_starts': '500',
                'gradient_steps': '1',
                'prioritized_replay': 'True',
                'per_beta0': '0.4',
                'actor_learning_rate': '0.0001',
                'action_penalty': '0.1',
                'n_step_returns': '1',
                'optimize_memory_usage': 'False',
                'verbose': '0',
                'train_freq': "(1, 'step')"},
 'ddpg/1': {'learning_rate': '0.001',
            'buffer_size': '100000',
            'batch_size': '64',
            'tau': '0.01',
            'gamma': '0.9',
            'learning_starts': '500',
            'gradient_steps': '1',
            'prioritized_replay': 'False',
            'per_beta0': '0.4',
            'actor_learning_rate': '0.0001',
            'action_penalty': '0.1',
            'n_step_returns': '1',
            'optimize_memory_usage': 'False',
            'verbose': '0',
            'train_freq': "(8, 'step')",
            'replay_buffer': 'DictReplayBuffer',
            'action_noise': 'OrnsteinUhlenbeckActionNoise0.2'},
 'ddpg/8': {'learning_rate': '0.001',
            'buffer_size': '100000',
            'batch_size': '64',
            'tau': '0.01',
            'gamma': '0.9',
            'learning_starts': '500',
            'gradient_steps': '1',
            'prioritized_replay': 'False',
            'per_beta0': '0.4',
            'actor_learning_rate': '0.0001',
            'action_penalty': '0.1',
            'n_step_returns': '1',
            'optimize_memory_usage': 'False',
            'verbose': '0',
            'train_freq': "(1, 'step')",
            'replay_buffer': 'DictReplayBuffer',
            'action_noise': 'OrnsteinUhlenbeckActionNoise0.2'},
 'linucb/1': {'alpha': '0.5', 'ridge': '1.0'},
 'linucb/8': {'alpha': '0.5', 'ridge': '1.0'},
 'greedy-pmf-topics/1': {'penalty': '0.5', 'window': '2'},
 'greedy-pmf-topics/8': {'penalty': '0.5', 'window': '2'},
 'oracle-greedy-topics/1': {'penalty': '6.0', 'window': '2'},
 'oracle-greedy-topics/8': {'penalty': '6.0', 'window': '2'},
 'planner/1': {'horizon': '8', 'n_candidates': '8', 'n_diverse': '8', 'shortlist': '32'},
 'planner/8': {'horizon': '8', 'n_candidates': '8', 'n_diverse': '8', 'shortlist': '32'}}

#: listed before with the SB3 signature's value, which no agent used: train_freq and gradient_steps come
#: from replay_ratio (OLD_BUILT has them), so the model's default is None, "derived"
DERIVED = {"train_freq", "gradient_steps"}
#: listed before as None, applied as True by agents.make's builder (agents/registry.py:_policy_kwargs)
BUILDER_DEFAULTS = {"freeze_embeddings": True, "normalize_embeddings": True}
#: agents.make's own argument (it passes the scenario itself), listed before as a setting by mistake
NOT_SETTINGS = {"scenario"}


def test_every_agent_has_a_model_and_its_defaults_are_the_ones_used_before():
    assert sorted(OLD_ARGUMENTS) == agents.available()
    for name, old in OLD_ARGUMENTS.items():
        model = arguments_model(name)
        assert issubclass(model, AgentArguments) and agents.spec(name).arguments is model
        expected = {k: BUILDER_DEFAULTS.get(k, None if k in DERIVED else v) for k, v in old.items()
                    if k not in NOT_SETTINGS}
        defaults = model.defaults()
        assert defaults == expected, name
        for key, value in defaults.items():  # bit for bit: 1 is not 1.0, True is not 1
            assert type(value) is type(expected[key]), (name, key)


def test_every_argument_has_a_description_and_its_default_passes_its_own_check():
    for name in agents.available():
        model = arguments_model(name)
        for key, field in model.model_fields.items():
            assert field.description and len(field.description) > 10, (name, key)
        assert model.problems(model.defaults()) == [], name
        assert model.problems(agents.spec(name).defaults) == [], name


def test_the_models_name_exactly_what_the_agent_classes_take():
    # a new SB3 argument (or one of recgym's) without a field, or a field no class takes, fails here
    for name in agents.available():
        spec = agents.spec(name)
        model = spec.arguments
        taken = set(constructor_parameters(spec.agent_class)) - {"self", "policy", "env", "seed", "device",
                                                                  "_init_setup_model", "scenario"}
        by_class = {k for k, f in model.model_fields.items() if f.json_schema_extra["taken_by"] != "make"}
        assert by_class == taken, name


@pytest.fixture(scope="module")
def scenario():
    log = make_synthetic_log(n_users=60, n_items=80, density=0.15, seed=0)
    perm = np.random.default_rng(0).permutation(60)
    return scenario_from_parts(log, PMFSimulator(dim=16).fit(log), perm[:48], perm[48:])


def _built(model, with_buffer: bool = True) -> dict[str, str]:
    attributes = ["learning_rate", "buffer_size", "batch_size", "tau", "gamma", "learning_starts", "gradient_steps",
                  "target_update_interval", "exploration_fraction", "exploration_initial_eps",
                  "exploration_final_eps", "max_grad_norm", "double_q", "prioritized_replay", "per_beta0",
                  "actor_learning_rate", "action_penalty", "pairwise_alpha", "pairwise_clip", "n_clusters",
                  "competitor_feedback", "n_step_returns", "optimize_memory_usage", "stats_window_size", "verbose"]
    seen = {a: repr(getattr(model, a)) for a in attributes if hasattr(model, a)}
    if hasattr(model, "train_freq"):
        seen["train_freq"] = repr((model.train_freq.frequency, model.train_freq.unit.value))
    buffer = getattr(model, "replay_buffer", None)
    if buffer is not None and with_buffer:  # not recorded for the classes built directly
        seen["replay_buffer"] = type(buffer).__name__
        for attribute, key in (("alpha", "per_alpha"), ("eps", "per_eps")):
            if hasattr(buffer, attribute):
                seen[key] = repr(getattr(buffer, attribute))
    if getattr(model, "action_noise", None) is not None:
        seen["action_noise"] = type(model.action_noise).__name__ + repr(float(model.action_noise._sigma[0]))
    for attribute in ("alpha", "ridge"):
        if hasattr(getattr(model, "bandit", None), attribute):
            seen[attribute] = repr(getattr(model.bandit, attribute))
    for attribute in ("penalty", "window", "horizon", "n_candidates", "n_diverse", "shortlist"):
        if hasattr(model, attribute):
            seen[attribute] = repr(getattr(model, attribute))
    return seen


@pytest.mark.parametrize("key", [k for k in OLD_BUILT if not k.endswith("/direct")])
def test_agents_made_with_the_defaults_are_built_as_before(scenario, key):
    name, n_envs = key.split("/")
    env = RecommendationVectorEnv(int(n_envs), scenario=scenario, users="train",
                                  action_mode=agents.spec(name).action_mode)
    assert _built(agents.make(name, env, seed=0)) == OLD_BUILT[key]


@pytest.mark.parametrize("cls, recorded", [(agents.MaskedDQN, "MaskedDQN/direct"), (agents.DRR, "DRR/direct"),
                                           (agents.LinUCBAgent, "linucb/8")])
def test_agent_classes_built_directly_are_built_as_before(scenario, cls, recorded):
    mode = "embedding" if cls is agents.DRR else "discrete"
    env = SB3VecEnvAdapter(RecommendationVectorEnv(8, scenario=scenario, users="train", action_mode=mode))
    assert _built(cls(env=env, seed=0), with_buffer=False) == OLD_BUILT[recorded]


def test_the_classes_defaults_are_their_models():
    for cls in (agents.MaskedDQN, agents.DEERS, agents.DRR, agents.LinUCBAgent):
        for key, parameter in inspect.signature(cls.__init__).parameters.items():
            if key in cls.arguments.model_fields:
                assert parameter.default == cls.arguments.default(key), (cls.__name__, key)


def test_a_bad_value_names_the_argument_the_value_the_allowed_range_and_the_fix():
    with pytest.raises(ValueError) as error:
        validate_agent_kwargs("dqn", {"batch_size": 0, "gamma": 2, "noise": "ou"}, None, {})
    message = str(error.value)
    assert "batch_size=0: must be a positive integer (leave it out for the default, 64)" in message
    assert "gamma=2: must be a number in [0, 1] (leave it out for the default, 0.9)" in message
    assert "noise: unknown argument" in message  # an actor-critic's, not DQN's
    with pytest.raises(ValueError, match=r"invalid settings for agent 'drr': noise='pink': must be one of ou, "
                                         r"gaussian, none \(leave it out for the default, 'ou'\)"):
        validate_agent_kwargs("drr", {"noise": "pink"}, None, {})
    with pytest.raises(ValueError, match=r"competitor_feedback='user': must be one of log, simulator"):
        validate_agent_kwargs("deers", {"competitor_feedback": "user"}, None, {})
    with pytest.raises(ValueError, match=r"window=0: must be a positive integer"):
        validate_agent_kwargs("greedy-pmf-topics", {"window": 0}, None, {})
    with pytest.raises(ValueError, match=r"shortlist=1.5: must be a positive integer"):
        validate_agent_kwargs("planner", {"shortlist": 1.5}, None, {})


def test_values_are_checked_not_converted():
    given = {"learning_rate": 1, "batch_size": np.int64(32), "train_freq": [2, "episode"]}
    checked = arguments_model("dqn").model_validate(given)
    for key, value in given.items():
        assert getattr(checked, key) is value


def test_a_class_checks_only_the_names_its_model_holds():
    # a name the model does not hold is the constructor's to refuse (TypeError), as before
    check_constructor_arguments(agents.LinUCBAgent, {"alpha": 0.0, "not_an_argument": 1})
    with pytest.raises(ValueError, match=r"invalid settings for LinUCBAgent: ridge=0: must be a finite number > 0"):
        check_constructor_arguments(agents.LinUCBAgent, {"ridge": 0})


def _documented_defaults(section: str) -> dict[str, str]:
    """``name -> value`` of the rows of docs/agents.md's defaults table under the heading starting ``section``."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "agents.md").read_text()
    body = text.split(f"\n{section}", 1)[1].split("\n## ", 1)[0]
    table = body.split("| default | value | source |", 1)[1]
    rows = {}
    for line in table.strip().splitlines()[1:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0].count("`") == 2 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = cells[1]
    return rows


@pytest.mark.parametrize("section, name", [("## `dqn`", "dqn"), ("## `drr` and `ddpg`", "drr")])
def test_the_documented_defaults_are_the_models(section, name):
    model = arguments_model(name)
    checked = 0
    for key, value in _documented_defaults(section).items():
        if key not in model.model_fields:
            continue
        documented = value.replace(",", "")
        try:
            number = float(documented)
        except ValueError:
            if documented in ("True", "False"):
                assert model.default(key) is (documented == "True"), (name, key)
                checked += 1
            continue
        assert model.default(key) == pytest.approx(number), (name, key)
        checked += 1
    assert checked >= 5  # gamma, learning_rate, batch_size, buffer_size, ... are documented
