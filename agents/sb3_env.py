"""The environment SB3 algorithms train on: recgym's vector env behind the adapter, with episode stats."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecMonitor

from recgym.envs.sb3 import SB3VecEnvAdapter
from recgym.envs.vector import RecommendationVectorEnv


def as_sb3_env(env: Any) -> Any:
    """What SB3 algorithms train on: the batched env behind the adapter (with episode stats), else ``env``.

    A bare :class:`RecommendationVectorEnv` is wrapped in :class:`SB3VecEnvAdapter`;
    SB3 ``VecEnv`` s get a ``VecMonitor`` (so ``rollout/ep_rew_mean`` is logged)
    unless they already have one; single Gymnasium envs are left to SB3, which
    wraps them in ``Monitor`` and ``DummyVecEnv`` itself.
    """
    if isinstance(env, RecommendationVectorEnv):
        env = SB3VecEnvAdapter(env)
    if isinstance(env, VecEnv) and not _has_vec_monitor(env):
        env = VecMonitor(env)
    return env


def _has_vec_monitor(env: VecEnv) -> bool:
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, VecMonitor):
            return True
        env = env.venv
    return False
