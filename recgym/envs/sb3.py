"""Adapter that lets stable-baselines3 train on the natively batched environment."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvStepReturn

from recgym.envs.vector import RecommendationVectorEnv


class SB3VecEnvAdapter(VecEnv):
    """Expose a :class:`RecommendationVectorEnv` through stable-baselines3's ``VecEnv`` API.

    Finished rows are reset in the same step (as SB3 expects); the observation
    that ended an episode goes to ``infos[i]["terminal_observation"]`` and
    truncation to ``infos[i]["TimeLimit.truncated"]``, so bootstrapping at
    time limits works.

    :param env: the batched recgym environment.
    """

    def __init__(self, env: RecommendationVectorEnv) -> None:
        self.env = env
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None
        self._seed: int | None = None

    def reset(self):
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, info = self.env.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            final_obs = info["final_obs"]
            final = {key: value[i] for key, value in final_obs.items()} if isinstance(final_obs, dict) else final_obs[i]
            infos[i] = {"terminal_observation": final, "TimeLimit.truncated": bool(truncated[i] and not terminated[i])}
        return obs, rewards.astype(np.float32), dones, infos

    @property
    def scenario(self):
        """The scenario of the wrapped environment (what agents are built for)."""
        return self.env.scenario

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_items)`` bool available items (sb3-contrib's maskable agents call this)."""
        return self.env.action_masks()

    def close(self) -> None:
        self.env.close()

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        self._seed = seed
        return [seed] * self.num_envs

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.env, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def _get_indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)
