"""What every agent reads from its environment: the scenario, the action mode, documented methods.

An agent is built for a :class:`~recgym.scenario.Scenario` and an environment
over it. The scenario comes explicitly (``agents.make(..., scenario=...)``) or
through the environment's documented accessors: ``env.scenario`` on recgym's
environments, Gymnasium's ``get_wrapper_attr("scenario")`` through wrappers,
SB3's ``get_attr("scenario")`` on a ``VecEnv``. The action mode and slate size
come from the action space itself. Nothing in ``agents/`` looks inside an
environment.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from recgym.scenario import Scenario


def scenario_of(env: Any) -> Scenario:
    """The scenario an environment was built for, through documented accessors only.

    :param env: a recgym environment, a Gymnasium wrapper over one, or an SB3 ``VecEnv`` over one.
    :raises ValueError: when ``env`` exposes no scenario (pass ``scenario=`` explicitly).
    """
    found: Any = None
    if isinstance(env, VecEnv):
        found = env.get_attr("scenario", indices=[0])[0]
    elif isinstance(env, gym.Env):
        found = env.get_wrapper_attr("scenario") if env.has_wrapper_attr("scenario") else None
    else:
        found = getattr(env, "scenario", None)
    if not isinstance(found, Scenario):
        raise ValueError(
            f"{type(env).__name__} is not a recgym environment (no .scenario): agents need RecommendationEnv, "
            "RecommendationVectorEnv or an SB3 VecEnv over one (e.g. SB3VecEnvAdapter), or scenario= given explicitly"
        )
    return found


def call_env_method(env: Any, method: str) -> Any:
    """Call a documented method of a recgym environment, also through SB3's ``VecEnv`` and Gymnasium wrappers."""
    if isinstance(env, VecEnv):
        return env.env_method(method, indices=[0])[0]
    if isinstance(env, gym.Env) and env.has_wrapper_attr(method):
        return env.get_wrapper_attr(method)()
    return getattr(env, method)()


def single_action_space(env: Any) -> spaces.Space:
    """The action space of one user (``single_action_space`` of vector envs)."""
    return getattr(env, "single_action_space", None) or env.action_space


def action_mode_of(env: Any) -> tuple[str, int]:
    """``(action_mode, slate_size)`` read from an environment's action space."""
    space = single_action_space(env)
    if isinstance(space, spaces.Discrete):
        return "discrete", 1
    if isinstance(space, spaces.MultiDiscrete):
        return "discrete", int(space.nvec.size)
    if isinstance(space, spaces.Box):
        return "embedding", 1
    raise ValueError(f"not a recgym action space: {space!r}")


def check_action_mode(env: Any, required: str, agent: str) -> None:
    """Raise a ValueError that says how to build the right env when the action mode differs.

    :param env: the environment.
    :param required: the action mode the agent needs.
    :param agent: the agent's registry name (for the message).
    """
    mode, slate = action_mode_of(env)
    if mode != required:
        raise ValueError(
            f"agent {agent!r} needs an environment with action_mode={required!r}, but this one uses "
            f"action_mode={mode!r}; build it with action_mode=agents.spec({agent!r}).action_mode "
            f"(e.g. RecommendationEnv(..., action_mode={required!r}))"
        )
    if slate != 1:
        raise ValueError(
            f"agent {agent!r} recommends one item per step; build the environment with slate_size=1 (got {slate})"
        )
