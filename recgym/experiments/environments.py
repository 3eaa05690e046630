"""Build the environments of a run from a registered id: one world, a training and an evaluation env."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

import recgym  # noqa: F401  (registers the ids)
from recgym.envs.sb3 import SB3VecEnvAdapter
from recgym.envs.vector import RecommendationVectorEnv
from recgym.envs.world import World, build_world

#: keyword arguments that define the world (data + simulator + user split) rather than the episodes
WORLD_KWARGS = (
    "dataset",
    "simulator",
    "data_dir",
    "path",
    "dataset_kwargs",
    "simulator_kwargs",
    "test_fraction",
    "split_seed",
    "cache",
)
#: keyword arguments that shape episodes
EPISODE_KWARGS = ("history_length", "max_steps", "slate_size", "reward_mode", "consumed_length", "allow_repeats")


@dataclass
class RunEnvironments:
    """The world of a run and its episode settings.

    :param world: log, fitted simulator and user split, shared by every env of the run.
    :param episode_kwargs: episode settings (history_length, max_steps, slate_size, reward_mode, action_mode).
    """

    world: World
    episode_kwargs: dict[str, Any]

    def vector_env(self, num_envs: int, users: str = "train") -> RecommendationVectorEnv:
        """A batched env over ``users`` (``"train"``, ``"test"`` or ``"all"``)."""
        return RecommendationVectorEnv(num_envs, world=self.world, users=users, **self.episode_kwargs)

    def training_env(self, num_envs: int) -> SB3VecEnvAdapter:
        """The training users' batched env, as a stable-baselines3 ``VecEnv``."""
        return SB3VecEnvAdapter(self.vector_env(num_envs, users="train"))


def make_run_environments(env_id: str, env_kwargs: dict[str, Any], action_mode: str) -> RunEnvironments:
    """Resolve ``env_id`` and ``env_kwargs`` into a world and episode settings.

    :param env_id: a registered recgym id (its registered kwargs name the dataset and simulator).
    :param env_kwargs: overrides, as for ``gymnasium.make``.
    :param action_mode: the action mode the agent needs.
    """
    if env_id not in gym.registry:
        from recgym.envs.registration import env_ids

        raise ValueError(f"unknown environment id {env_id!r}; registered recgym ids: {', '.join(env_ids())}")
    kwargs = {**gym.spec(env_id).kwargs, **env_kwargs}
    requested_mode = kwargs.pop("action_mode", action_mode)
    if requested_mode != action_mode:
        raise ValueError(
            f"env_kwargs asks for action_mode={requested_mode!r} but the agent acts in {action_mode!r} mode; "
            "drop action_mode from env_kwargs"
        )
    kwargs.pop("users", None)  # a run trains on the train users and evaluates on the test users
    world_kwargs = {k: kwargs.pop(k) for k in WORLD_KWARGS if k in kwargs}
    unknown = sorted(set(kwargs) - set(EPISODE_KWARGS))
    if unknown:
        raise ValueError(
            f"unknown environment keyword(s) {unknown}; valid: {', '.join(sorted(WORLD_KWARGS + EPISODE_KWARGS))}"
        )
    cache = world_kwargs.pop("cache", True)
    world = build_world(use_cache=cache, **world_kwargs)
    return RunEnvironments(world=world, episode_kwargs={**kwargs, "action_mode": action_mode})
