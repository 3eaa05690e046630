"""Running a policy on an environment outside SB3, for agents that learn online (LinUCB)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from agents.masking import Observation, as_batch
from recgym.envs.sb3 import SB3VecEnvAdapter
from recgym.envs.vector import RecommendationVectorEnv


def iterate_steps(
    env: Any, act: Callable[[Observation], np.ndarray], total_timesteps: int, seed: int | None = None
) -> Iterator[tuple[Observation, np.ndarray, np.ndarray]]:
    """Run ``act`` on ``env`` for ``total_timesteps`` transitions; yield ``(obs, actions, rewards)`` batches.

    Works on a single Gymnasium env (batches of one; reset at episode end), on a
    :class:`RecommendationVectorEnv` and on SB3 ``VecEnv`` s (both autoreset).
    Used by agents that learn online outside SB3 (LinUCB).

    :param env: the environment.
    :param act: maps a batched observation to ``(B,)`` actions.
    :param total_timesteps: number of transitions (users x steps) to run.
    :param seed: seed of the first reset.
    """
    done_steps = 0
    if isinstance(env, RecommendationVectorEnv):
        env = SB3VecEnvAdapter(env)
    if isinstance(env, VecEnv):
        if seed is not None:
            env.seed(seed)
        obs = env.reset()
        while done_steps < total_timesteps:
            actions = act(obs)
            next_obs, rewards, _, _ = env.step(actions)
            yield obs, actions, np.asarray(rewards, dtype=np.float64)
            obs = next_obs
            done_steps += env.num_envs
        return
    obs, _ = env.reset(seed=seed)
    while done_steps < total_timesteps:
        batch, _ = as_batch(obs)
        actions = np.asarray(act(batch)).reshape(-1)
        next_obs, reward, terminated, truncated, _ = env.step(actions[0])
        yield batch, actions, np.array([reward], dtype=np.float64)
        done_steps += 1
        obs = env.reset()[0] if (terminated or truncated) else next_obs
