"""Online simulated evaluation: run a policy on simulated users and average the reward.

Each evaluated user plays exactly one episode (users are taken in order and
cycled when more episodes than users are asked for), all of them at once in
the batched environment, so the figure is deterministic for a given seed and
is not biased towards users whose episodes end early.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np


class Policy(Protocol):
    """What evaluation needs of an agent: stable-baselines3's ``predict`` on batched observations."""

    def predict(self, observation: dict[str, np.ndarray], deterministic: bool = True) -> tuple[np.ndarray, Any]: ...


@dataclass
class OnlineResult:
    """Online evaluation figures.

    :param avg_reward_per_step: total reward / total steps over all episodes (DRR's "average reward").
    :param avg_reward_per_episode: mean episode return (cumulative reward).
    :param avg_episode_length: mean number of steps per episode.
    :param episodes: number of episodes.
    :param left_fraction: fraction of episodes that ended because the user left.
    :param episode_rewards: per-episode return, in evaluation order.
    """

    avg_reward_per_step: float
    avg_reward_per_episode: float
    avg_episode_length: float
    episodes: int
    left_fraction: float
    episode_rewards: list[float]

    def summary(self) -> dict[str, float]:
        out = asdict(self)
        out.pop("episode_rewards")
        return out


def bind_policy(policy: Any, env: Any) -> None:
    """Point a policy that reads the live environment (``oracle-greedy``) at ``env``."""
    if getattr(policy, "needs_live_env", False):
        policy.set_env(env)


def evaluate_online(
    policy: Policy,
    env,
    users: np.ndarray | None = None,
    n_episodes: int | None = None,
    seed: int = 0,
    deterministic: bool = True,
) -> OnlineResult:
    """Average reward of ``policy`` on a :class:`~recgym.envs.RecommendationVectorEnv`.

    :param policy: anything with SB3's ``predict(obs, deterministic)`` on batched observations.
    :param env: the batched environment; its ``num_envs`` rows are reused for chunks of users.
    :param users: users to evaluate (default: the environment's user set, e.g. the test users).
    :param n_episodes: number of episodes (default: one per user).
    :param seed: seed of the simulated responses.
    :param deterministic: act greedily (no exploration noise).
    """
    users = np.asarray(env.users if users is None else users, dtype=np.int64)
    if users.size == 0:
        raise ValueError("no users to evaluate")
    n_episodes = int(users.size if n_episodes is None else n_episodes)
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    order = np.resize(users, n_episodes)
    b = env.num_envs
    bind_policy(policy, env)
    returns, lengths, left = [], [], []
    for chunk_start in range(0, n_episodes, b):
        chunk = order[chunk_start : chunk_start + b]
        rows = np.resize(chunk, b)  # pad the last chunk; padded rows are not recorded
        obs, _ = env.reset(seed=seed + chunk_start, options={"users": rows})
        active = np.zeros(b, dtype=bool)
        active[: len(chunk)] = True
        ret = np.zeros(b)
        length = np.zeros(b, dtype=np.int64)
        quit_ = np.zeros(b, dtype=bool)
        while active.any():
            actions, _ = policy.predict(obs, deterministic=deterministic)
            obs, reward, term, trunc, info = env.step(actions)
            ret[active] += reward[active]
            length[active] += 1
            done = (term | trunc) & active
            quit_ |= done & info["left"]
            active &= ~done
        returns.extend(ret[: len(chunk)].tolist())
        lengths.extend(length[: len(chunk)].tolist())
        left.extend(quit_[: len(chunk)].tolist())
    returns_arr, lengths_arr = np.asarray(returns), np.asarray(lengths)
    return OnlineResult(
        avg_reward_per_step=float(returns_arr.sum() / max(1, lengths_arr.sum())),
        avg_reward_per_episode=float(returns_arr.mean()),
        avg_episode_length=float(lengths_arr.mean()),
        episodes=n_episodes,
        left_fraction=float(np.mean(left)),
        episode_rewards=[float(x) for x in returns_arr],
    )
