"""Online simulated evaluation: run a policy on simulated users and average the reward.

Each evaluated user plays exactly one episode (users are taken in order and
cycled when more episodes than users are asked for), all of them at once in
the batched environment, so the figure is deterministic for a given seed and
is not biased towards users whose episodes end early.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from recgym.envs.config import EpisodeConfig
from recgym.envs.vector import RecommendationVectorEnv
from recgym.scenario import Scenario

#: rows of a protocol's batched environment: users evaluated in parallel
EVAL_ENVS = 256


class Policy(Protocol):
    """What evaluation needs of an agent: stable-baselines3's ``predict`` on batched observations.

    recgym's discrete agents also take ``action_masks`` (the environment's
    available items, as sb3-contrib's maskable agents do); a policy whose
    ``predict`` has no such argument is called without it.
    """

    def predict(self, observation: dict[str, np.ndarray], deterministic: bool = True) -> tuple[np.ndarray, Any]: ...


@dataclass
class OnlineResult:
    """Online evaluation figures.

    :param avg_reward_per_step: total reward / total steps over all episodes (DRR's "average reward").
    :param avg_reward_per_episode: mean episode return (cumulative reward).
    :param avg_episode_length: mean number of steps per episode.
    :param episodes: number of episodes.
    :param left_fraction: fraction of episodes that ended because the user left.
    :param distinct_first_items: number of different items recommended at the first step.
    :param episode_rewards: per-episode return, in evaluation order.
    """

    avg_reward_per_step: float
    avg_reward_per_episode: float
    avg_episode_length: float
    episodes: int
    left_fraction: float
    distinct_first_items: int
    episode_rewards: list[float]

    def summary(self) -> dict[str, float]:
        out = asdict(self)
        out.pop("episode_rewards")
        return out

    def __repr__(self) -> str:
        # the per-episode returns run to hundreds of numbers: the repr names their count, not them
        figures = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.summary().items())
        return f"OnlineResult({figures}, episode_rewards=<{len(self.episode_rewards)} values>)"


def bind_policy(policy: Any, env: Any) -> None:
    """Point a policy that reads the live environment (``oracle-greedy``) at ``env``."""
    if getattr(policy, "needs_live_env", False):
        policy.set_env(env)


def _takes_action_masks(policy: Any) -> bool:
    try:
        return "action_masks" in inspect.signature(policy.predict).parameters
    except (TypeError, ValueError):
        return False


def act(policy: Any, obs: dict[str, np.ndarray], env: RecommendationVectorEnv, deterministic: bool = True) -> np.ndarray:
    """The policy's actions for a batched observation of ``env``.

    A discrete policy that takes ``action_masks`` gets the environment's
    available items, so it chooses among them itself; embedding actions are
    ranked over the available items by the environment (that ranking is the
    policy, DRR section 3.2). Nothing is substituted afterwards.
    """
    if env.config.action_mode == "discrete" and _takes_action_masks(policy):
        return policy.predict(obs, deterministic=deterministic, action_masks=env.action_masks())[0]
    return policy.predict(obs, deterministic=deterministic)[0]


def run_episodes(
    policy: Policy,
    env: RecommendationVectorEnv,
    users: np.ndarray | None = None,
    n_episodes: int | None = None,
    seed: int = 0,
    deterministic: bool = True,
) -> OnlineResult:
    """Average reward of ``policy`` on a built :class:`~recgym.envs.RecommendationVectorEnv`.

    :func:`evaluate_online` builds the environment from a scenario; call this
    directly to reuse one environment (the runner's periodic evaluation does).

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
    returns, lengths, left, first = [], [], [], []
    for chunk_start in range(0, n_episodes, b):
        chunk = order[chunk_start : chunk_start + b]
        rows = np.resize(chunk, b)  # pad the last chunk; padded rows are not recorded
        obs, _ = env.reset(seed=seed + chunk_start, options={"users": rows})
        active = np.zeros(b, dtype=bool)
        active[: len(chunk)] = True
        ret = np.zeros(b)
        length = np.zeros(b, dtype=np.int64)
        quit_ = np.zeros(b, dtype=bool)
        step = 0
        while active.any():
            actions = act(policy, obs, env, deterministic)
            obs, reward, term, trunc, info = env.step(actions)
            if step == 0:
                items = info["item"] if info["item"].ndim == 1 else info["item"][:, 0]
                first.extend(items[: len(chunk)].tolist())
            step += 1
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
        distinct_first_items=int(len(set(first))),
        episode_rewards=[float(x) for x in returns_arr],
    )


def evaluation_env(scenario: Scenario, config: EpisodeConfig, users: Any = "test",
                   num_envs: int = EVAL_ENVS) -> RecommendationVectorEnv:
    """The batched environment of a protocol: ``config``'s episodes for ``users`` of ``scenario``."""
    config = config.replace(users=users)
    return RecommendationVectorEnv(max(1, min(num_envs, scenario.users(config.users).size)), scenario, config)


def evaluate_online(
    policy: Policy,
    scenario: Scenario,
    config: EpisodeConfig,
    users: Any = "test",
    n_episodes: int | None = None,
    seed: int = 0,
    deterministic: bool = True,
) -> OnlineResult:
    """The online protocol: one episode per user of ``users`` on the scenario's simulated users.

    :param policy: the frozen agent or a baseline (SB3 ``predict`` on batched observations).
    :param scenario: the scenario (its simulator plays the users).
    :param config: the episode configuration the policy acts in (action mode, N, T, ...).
    :param users: ``"test"`` (default), ``"train"``, ``"all"`` or user ids.
    :param n_episodes: number of episodes (default: one per user).
    :param seed: seed of the simulated responses.
    :param deterministic: act greedily (no exploration noise).
    """
    return run_episodes(policy, evaluation_env(scenario, config, users), n_episodes=n_episodes, seed=seed,
                        deterministic=deterministic)


#: an actor's output coordinate counts as saturated beyond this magnitude (tanh outputs lie in [-1, 1])
SATURATED = 0.99


class _ActionRecorder:
    """Passes ``predict`` through, keeping the actions (every row the batched env steps)."""

    def __init__(self, policy: Any) -> None:
        self.policy, self.actions = policy, []

    def predict(self, observation: dict, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        actions, state = self.policy.predict(observation, deterministic=deterministic)
        self.actions.append(np.asarray(actions))
        return actions, state


def actor_saturation(policy: Policy, scenario: Scenario, config: EpisodeConfig, seed: int = 0,
                     users: Any = "test") -> float:
    """The fraction of an embedding-action policy's output coordinates beyond :data:`SATURATED` in magnitude.

    Over the online protocol's episodes (one per user, ``seed`` the responses' seed): an actor whose
    ``tanh`` outputs sit at ±1 has stopped telling items apart (DRR's collapse, docs/agents.md).

    :param policy: a policy acting in the embedding action space (``drr``, ``ddpg``).
    :param scenario: the scenario.
    :param config: the episode configuration (its ``action_mode`` must be ``"embedding"``).
    :param seed: seed of the simulated responses.
    :param users: ``"test"``, ``"train"``, ``"all"`` or an array of user ids.
    """
    if config.action_mode != "embedding":
        raise ValueError(f"actor saturation needs an embedding-action policy; the episodes pick items "
                         f"(action_mode={config.action_mode!r}), so there are no actor outputs to saturate")
    recorder = _ActionRecorder(policy)
    run_episodes(recorder, evaluation_env(scenario, config, users), seed=seed)
    acted = np.concatenate([a.reshape(-1) for a in recorder.actions])
    return float(np.mean(np.abs(acted) > SATURATED))
