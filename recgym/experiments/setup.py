"""A run's setup, resolved once: its scenario, its episode configuration and its agent.

:meth:`RunSetup.from_config` is where a run's registered id is read: the id's registered
settings merged with the run's ``env_kwargs`` (:func:`environment_settings`, the one reader of a
registered id's settings), the scenario they define (built, or taken from the scenario cache,
once) and the episode configuration in the agent's action mode. ``recgym train``,
``recgym compare`` and ``recgym evaluate`` pass that one object down: the training env, the
agent (``agents.make(..., scenario=setup.scenario)``) and every protocol are built from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

import agents
import recgym  # noqa: F401  (registers the ids)
from agents.registry import AgentSpec
from recgym.envs.config import EpisodeConfig, resolve_env_kwargs
from recgym.envs.registration import ENTRY_POINT, VECTOR_ENTRY_POINT, env_ids
from recgym.envs.sb3 import SB3VecEnvAdapter
from recgym.envs.vector import RecommendationVectorEnv
from recgym.experiments.config import RUN_USERS_NOTE, TrainConfig
from recgym.scenario import Scenario, ScenarioSpec


@dataclass(frozen=True)
class RunSetup:
    """The scenario of a run, its episode configuration (in the agent's action mode) and its agent.

    Build it with :meth:`from_config`; each part is resolved once and shared by the training env, the
    agent and the evaluation.

    :param env_id: the registered id the run was asked for.
    :param scenario: log, split, simulated users and embedding model, shared by every env of the run.
    :param config: the episode configuration (training users; protocols choose their own users).
    :param agent: the registered agent the run trains (None for a setup built for its environment only,
        :func:`make_run_setup`).
    """

    env_id: str
    scenario: Scenario
    config: EpisodeConfig
    agent: AgentSpec | None = None

    @classmethod
    def from_config(cls, config: TrainConfig) -> "RunSetup":
        """Resolve a validated run configuration: its agent, its environment's settings, scenario and episodes.

        :param config: the run configuration (validated once, when it was built: :func:`make_config`).
        :raises ValueError: an id that is not recgym's, or environment settings the run's agent cannot use.
        """
        agent = agents.spec(config.agent)
        scenario, episode = _resolve(config.env, environment_settings(config.env, config.env_kwargs),
                                     agent.action_mode)
        return cls(config.env, scenario, episode, agent)

    def training_env(self, num_envs: int) -> SB3VecEnvAdapter:
        """The training users' batched env over this setup's scenario, as an SB3 ``VecEnv``."""
        return SB3VecEnvAdapter(RecommendationVectorEnv(num_envs, self.scenario, self.config.replace(users="train")))

    def for_agent(self, name: str) -> "RunSetup":
        """The same run for another registered agent (a baseline beside it), in that agent's action mode."""
        agent = agents.spec(name)
        return RunSetup(self.env_id, self.scenario, self.config.replace(action_mode=agent.action_mode), agent)

    def make_agent(self, config: TrainConfig, env: Any) -> Any:
        """The run's agent, built for this setup's scenario on ``env`` (:func:`agents.make`).

        :param config: the run configuration this setup was built from (agent, encoder, seed, arguments).
        :param env: the env it trains on (:meth:`training_env`).
        """
        if self.agent is None or self.agent.name != config.agent or self.env_id != config.env:
            raise ValueError(f"this setup was built for {self.agent.name if self.agent else 'no agent'} on "
                             f"{self.env_id}, not for {config.agent} on {config.env}: use RunSetup.from_config(config)")
        encoder_kwargs = config.all_encoder_kwargs()
        extra = {"encoder_kwargs": encoder_kwargs} if encoder_kwargs else {}
        return agents.make(config.agent, env, encoder=config.encoder, seed=config.seed, device=config.device,
                           scenario=self.scenario, **extra, **config.agent_kwargs)


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


def environment_settings(env_id: str, env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a recgym id for a run: its registered keywords (dataset, simulator, ...), then ``env_kwargs``.

    The one place a registered id's settings are read; :func:`setting` gives a setting left out its default.

    :param env_id: a registered recgym id.
    :param env_kwargs: the run's overrides, as for ``gymnasium.make``.
    """
    check_recgym_id(env_id)
    if not isinstance(env_kwargs, Mapping):
        raise ValueError(f"env_kwargs must be a mapping of keyword arguments, got {type(env_kwargs).__name__}")
    return {**gym.spec(env_id).kwargs, **env_kwargs}


#: every environment keyword's default: the scenario's (:class:`ScenarioSpec`) and the episode's (:class:`EpisodeConfig`)
_DEFAULTS = {f.name: f.default for cls in (ScenarioSpec, EpisodeConfig) for f in dataclasses.fields(cls)
             if f.default is not dataclasses.MISSING}


def setting(settings: Mapping[str, Any], name: str) -> Any:
    """A setting of :func:`environment_settings`: given, or the environment's own default for it."""
    return settings[name] if name in settings else _DEFAULTS[name]


def _resolve(env_id: str, settings: dict[str, Any], action_mode: str) -> tuple[Scenario, EpisodeConfig]:
    """The scenario and episode configuration of ``settings`` in ``action_mode`` (the agent's)."""
    kwargs = dict(settings)
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
    return resolve_env_kwargs(action_mode=action_mode, **kwargs)


def make_run_setup(env_id: str, env_kwargs: dict[str, Any], action_mode: str) -> RunSetup:
    """A setup of ``env_id`` with ``env_kwargs`` in ``action_mode``, with no agent of its own.

    For scripts and tools that pick their policies themselves (a logging policy, the OPE study); a
    training run is set up by :meth:`RunSetup.from_config`, whose configuration has checked its settings.

    :param env_id: a registered recgym id (its registered kwargs name the dataset and simulator).
    :param env_kwargs: overrides, as for ``gymnasium.make`` (``users`` is not allowed: a run trains on
        the training users and evaluates on the test users).
    :param action_mode: the action mode the policies act in.
    """
    settings = environment_settings(env_id, env_kwargs)
    if "users" in env_kwargs:
        raise ValueError(f"env_kwargs may not set users: {RUN_USERS_NOTE}")
    scenario, config = _resolve(env_id, settings, action_mode)
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
    from state_encoders.weights import read_description

    settings = environment_settings(env, env_kwargs)
    saved = read_description(weights)
    dataset, history, split_seed = (setting(settings, k) for k in ("dataset", "history_length", "split_seed"))
    problems = []
    if saved.get("dataset") is not None and saved["dataset"] != dataset:
        problems.append(f"pretrained on {saved['dataset']!r}, the environment's dataset is {dataset!r}")
    if saved.get("history_length") is not None and saved["history_length"] != history:
        problems.append(f"pretrained with history length {saved['history_length']}, the environment's is {history}")
    if saved.get("split_seed") is not None and saved["split_seed"] != split_seed:
        problems.append(f"pretrained on the training users of split_seed {saved['split_seed']}, the environment's "
                        f"split is {split_seed}")
    return problems
