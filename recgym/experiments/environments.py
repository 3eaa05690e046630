"""A run's scenario and episode configuration, from a registered id: what train and evaluate pass down."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

import recgym  # noqa: F401  (registers the ids)
from recgym.envs.config import EpisodeConfig, resolve_env_kwargs
from recgym.envs.registration import ENTRY_POINT, VECTOR_ENTRY_POINT, env_ids
from recgym.envs.sb3 import SB3VecEnvAdapter
from recgym.scenario import Scenario


@dataclass(frozen=True)
class RunSetup:
    """The scenario of a run and its episode configuration (in the agent's action mode).

    :param env_id: the registered id the run was asked for.
    :param scenario: log, split, simulated users and embedding model, shared by every env of the run.
    :param config: the episode configuration (training users; protocols choose their own users).
    """

    env_id: str
    scenario: Scenario
    config: EpisodeConfig

    def training_env(self, num_envs: int) -> SB3VecEnvAdapter:
        """The training users' batched env (built through ``gymnasium.make_vec``), as an SB3 ``VecEnv``."""
        venv = gym.make_vec(self.env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                            scenario=self.scenario, config=self.config.replace(users="train"))
        return SB3VecEnvAdapter(venv)

    def with_action_mode(self, action_mode: str) -> "RunSetup":
        """The same run in another action mode (a baseline's)."""
        return RunSetup(self.env_id, self.scenario, self.config.replace(action_mode=action_mode))


def check_recgym_id(env_id: str) -> None:
    """Refuse ids that are not registered, or whose entry point is not recgym's (``CartPole-v1``)."""
    if env_id not in gym.registry:
        raise ValueError(f"unknown environment id {env_id!r}; registered recgym ids: {', '.join(env_ids())}")
    spec = gym.spec(env_id)
    if spec.entry_point != ENTRY_POINT or spec.vector_entry_point != VECTOR_ENTRY_POINT:
        raise ValueError(
            f"{env_id!r} is not a recgym environment (entry point {spec.entry_point!r}); recgym trains and evaluates "
            f"only on its own ids: {', '.join(env_ids())}"
        )


def make_run_setup(env_id: str, env_kwargs: dict[str, Any], action_mode: str) -> RunSetup:
    """Resolve ``env_id`` and ``env_kwargs`` into the run's scenario and episode configuration.

    :param env_id: a registered recgym id (its registered kwargs name the dataset and simulator).
    :param env_kwargs: overrides, as for ``gymnasium.make`` (``users`` is not allowed: a run trains on
        the training users and evaluates on the test users).
    :param action_mode: the action mode the agent needs.
    """
    check_recgym_id(env_id)
    if not isinstance(env_kwargs, dict):
        raise ValueError(f"env_kwargs must be a mapping of keyword arguments, got {type(env_kwargs).__name__}")
    kwargs = {**gym.spec(env_id).kwargs, **env_kwargs}
    if "users" in env_kwargs:
        raise ValueError("env_kwargs may not set users: a run trains on the training users and evaluates on the "
                         "test users (choose the split with split_seed / test_fraction)")
    requested_mode = kwargs.pop("action_mode", action_mode)
    if requested_mode != action_mode:
        raise ValueError(
            f"env_kwargs asks for action_mode={requested_mode!r} but the agent acts in {action_mode!r} mode; "
            "drop action_mode from env_kwargs"
        )
    if kwargs.get("observation", "dict") != "dict" or kwargs.get("candidates") is not None:
        raise ValueError(
            f"{env_id!r} with observation={kwargs.get('observation', 'dict')!r}, "
            f"candidates={kwargs.get('candidates')!r} is for generic clients (docs/clients.md); recgym's agents and protocols read the dict observation "
            f"and choose among every item: use {env_id.replace('-Flat-', '-')!r} without observation/candidates"
        )
    scenario, config = resolve_env_kwargs(action_mode=action_mode, **kwargs)
    return RunSetup(env_id, scenario, config)


def pretrained_weights_mismatch(weights: str, env: str, env_kwargs: Mapping[str, Any]) -> list[str]:
    """How a folder written by ``recgym pretrain`` differs from an environment (empty when it matches).

    The weights must come from the environment's dataset, history length and user split: weights
    pretrained on another split were trained on ratings of this split's test users. ``recgym train``
    refuses such weights and ``recgym compare`` skips such cells, each saying its own fix.

    :param weights: the weights folder.
    :param env: the registered environment id.
    :param env_kwargs: the run's environment settings (``split_seed``, ``history_length``, ``dataset``).
    """
    from recgym.envs.config import DEFAULT_HISTORY_LENGTH
    from state_encoders.weights import read_description

    saved = read_description(weights)
    dataset = env_kwargs.get("dataset", gym.spec(env).kwargs.get("dataset"))
    history = env_kwargs.get("history_length", DEFAULT_HISTORY_LENGTH)
    split_seed = env_kwargs.get("split_seed", 0)
    problems = []
    if saved.get("dataset") is not None and saved["dataset"] != dataset:
        problems.append(f"pretrained on {saved['dataset']!r}, the environment's dataset is {dataset!r}")
    if saved.get("history_length") is not None and saved["history_length"] != history:
        problems.append(f"pretrained with history length {saved['history_length']}, the environment's is {history}")
    if saved.get("split_seed") is not None and saved["split_seed"] != split_seed:
        problems.append(f"pretrained on the training users of split_seed {saved['split_seed']}, the environment's "
                        f"split is {split_seed}")
    return problems
