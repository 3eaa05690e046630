"""n-step returns for Dict observations: SB3's ``NStepReplayBuffer`` logic on a ``DictReplayBuffer``.

stable-baselines3 (2.9) computes n-step returns only for array observations
(``OffPolicyAlgorithm`` asserts ``n_steps == 1`` for ``Dict`` spaces); every
recgym observation is a ``Dict``. This buffer stores single steps as
``DictReplayBuffer`` does and builds the n-step target at sampling time, as SB3's
``NStepReplayBuffer`` does (Sutton & Barto 2018, eq. 7.1):

``G = sum_{k=0}^{m-1} gamma^k r_{t+k}``, bootstrapped with ``gamma^m Q(s_{t+m}, .)``,

where ``m <= n`` stops at the first step of the episode that terminated or was
truncated (the episode's last transition is included), so a return never
crosses into the next episode of the same environment. The sample's
``discounts`` is ``gamma^m`` and its ``next_observations`` the observation after
step ``t + m - 1``; ``dones`` is 1 only where that step *terminated* (a
truncation bootstraps, as in SB3). The algorithm's update uses ``discounts`` in
place of ``gamma`` (``MaskedDQN.train`` does).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize


class NStepDictReplayBuffer(DictReplayBuffer):
    """``DictReplayBuffer`` whose samples carry n-step returns (see the module docstring).

    :param n_steps: n, the most rewards summed before bootstrapping (>= 1; 1 is the one-step target).
    :param gamma: the discount factor of the algorithm.
    Other arguments as SB3's ``DictReplayBuffer``.
    """

    def __init__(self, *args: Any, n_steps: int = 3, gamma: float = 0.99, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
        if not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
        if n_steps > self.buffer_size:
            # positions wrap around the buffer: a longer return would sum overwritten transitions
            # (and sampling would allocate batch x n_steps arrays)
            raise ValueError(
                f"n_steps={n_steps} is more than the replay buffer holds per environment ({self.buffer_size} "
                f"transitions: buffer_size over {self.n_envs} env(s)): use a smaller "
                "n_steps (a return stops at its episode's end anyway, so n beyond the episode length (max_steps) "
                "changes nothing) or a larger buffer_size"
            )
        self.n_steps, self.gamma = int(n_steps), float(gamma)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> DictReplayBufferSamples:
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        # the newest position has no successor yet: end every sequence there (restored below)
        newest = (self.pos - 1) % self.buffer_size
        saved = self.timeouts[newest].copy()
        self.timeouts[newest] = np.logical_or(saved, np.logical_not(self.dones[newest]))
        try:
            offsets = np.arange(self.n_steps)[None, :]  # [1, n]
            positions = (batch_inds[:, None] + offsets) % self.buffer_size  # [B, n]
            column = env_indices[:, None]
            rewards = self._normalize_reward(self.rewards[positions, column], env)  # [B, n]
            ended = np.logical_or(self.dones[positions, column], self.timeouts[positions, column])  # [B, n]
            last = np.where(ended.any(axis=1), ended.argmax(axis=1), self.n_steps - 1)  # [B], index of step t+m-1
            used = offsets <= last[:, None]  # [B, n]
            returns = (rewards * self.gamma ** offsets.astype(np.float32) * used).sum(axis=1, keepdims=True)
            discounts = (self.gamma ** (last + 1)).astype(np.float32).reshape(-1, 1)
            final = (batch_inds + last) % self.buffer_size
        finally:
            self.timeouts[newest] = saved
        # the bootstrapped step's own truncation flag: read after the newest position is restored,
        # so a transition still in progress bootstraps (it is not terminal)
        terminated = self.dones[final, env_indices] * (1.0 - self.timeouts[final, env_indices])
        obs = self._normalize_obs({k: v[batch_inds, env_indices] for k, v in self.observations.items()}, env)
        next_obs = self._normalize_obs({k: v[final, env_indices] for k, v in self.next_observations.items()}, env)
        return DictReplayBufferSamples(
            observations={k: self.to_torch(v) for k, v in obs.items()},
            actions=self.to_torch(self.actions[batch_inds, env_indices]),
            next_observations={k: self.to_torch(v) for k, v in next_obs.items()},
            dones=self.to_torch(terminated.astype(np.float32)).reshape(-1, 1),
            rewards=self.to_torch(returns.astype(np.float32)),
            discounts=self.to_torch(discounts),
        )


def take_n_steps(algorithm_kwargs: dict, prioritized_replay: bool) -> int:
    """Pop ``n_steps`` from an algorithm's keyword arguments and choose the buffer for it.

    SB3 refuses n-step returns for Dict observations, and ignores ``n_steps`` (with a
    warning) beside a custom buffer; recgym's algorithms call this before SB3 sees the
    arguments, so n > 1 gets :class:`NStepDictReplayBuffer` or a clear error.

    :param algorithm_kwargs: the keyword arguments, updated in place.
    :param prioritized_replay: whether the algorithm samples with PER (not combined with n > 1).
    :returns: n (1: one-step targets, the buffer left as it was).
    """
    n_steps = algorithm_kwargs.pop("n_steps", 1)
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    if n_steps > 1:
        if prioritized_replay:
            raise ValueError("n_steps > 1 is not available with prioritized replay; pass prioritized_replay=False "
                             "or n_steps=1")
        algorithm_kwargs["replay_buffer_class"] = NStepDictReplayBuffer
    return int(n_steps)


def n_step_buffer_kwargs(n_steps: int, gamma: float, given: dict | None) -> dict:
    """The buffer's keyword arguments for n-step returns at the algorithm's ``gamma`` (``given`` wins)."""
    return {**({"n_steps": n_steps, "gamma": gamma} if n_steps > 1 else {}), **(given or {})}
