"""Proportional prioritized experience replay (Schaul et al., ICLR 2016) for Dict observations.

T. Schaul, J. Quan, I. Antonoglou, D. Silver. *Prioritized Experience Replay*.
ICLR 2016 (arXiv:1511.05952). DRR trains with it (Liu et al. 2018, Algorithm 1).

* Priority of transition ``i``: ``p_i = |δ_i| + ε`` (proportional variant, Sec. 3.3).
* Sampling probability (eq. 1): ``P(i) = p_i^α / Σ_k p_k^α``.
* Importance-sampling weight (Sec. 3.4): ``w_i = (N · P(i))^-β / max_j w_j``; the
  maximum is over the whole buffer, i.e. at the smallest priority, so weights
  only ever scale updates down. ``β`` is annealed from ``β_0`` to 1 by the
  algorithm (it sets :attr:`PrioritizedDictReplayBuffer.beta`).
* New transitions get the largest priority seen so far, so each is replayed
  at least once soon (Algorithm 1, line 6).
* Stratified sampling: the range ``[0, Σ p^α)`` is cut into ``batch_size``
  equal segments and one value is drawn in each (Appendix B.2.1).

The sum-tree is a flat numpy array (root at index 1, leaves at
``[n_leaves, 2 n_leaves)``); updates and searches are vectorised over the batch
and cost ``O(batch · log N)`` numpy work.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.type_aliases import TensorDict
from stable_baselines3.common.vec_env import VecNormalize

#: α of eq. 1 (Schaul et al. 2016, Table 3, proportional variant: 0.6).
DEFAULT_ALPHA = 0.6
#: β_0, the initial importance-sampling exponent (Schaul et al. 2016, Table 3: 0.4), annealed to 1.
DEFAULT_BETA0 = 0.4
#: ε added to |δ| so that no transition has zero probability.
DEFAULT_EPS = 1e-6


class SumTree:
    """A binary tree whose internal nodes hold the sum of their children's values.

    Leaves are the priorities ``p_i^α``; the root is their total. :meth:`find`
    maps a value ``v`` in ``[0, total)`` to the leaf where the running sum of
    leaves passes ``v``, i.e. samples leaf ``i`` with probability ``leaf_i / total``
    when ``v`` is uniform.

    :param capacity: number of leaves in use (rounded up to a power of two inside).
    """

    def __init__(self, capacity: int) -> None:
        if int(capacity) < 1:
            raise ValueError(f"SumTree capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.n_leaves = 1 << max(0, (self.capacity - 1).bit_length())
        self.depth = self.n_leaves.bit_length() - 1
        self.tree = np.zeros(2 * self.n_leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all leaves."""
        return float(self.tree[1])

    def leaves(self, count: int | None = None) -> np.ndarray:
        """View of the first ``count`` leaves (default: ``capacity``)."""
        start = self.n_leaves
        return self.tree[start : start + (self.capacity if count is None else count)]

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Leaf values at ``indices``."""
        return self.tree[np.asarray(indices, dtype=np.int64) + self.n_leaves]

    def update(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``indices`` to ``values`` (the last value wins for repeated indices) and re-sum."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size == 0:
            return
        if indices.min() < 0 or indices.max() >= self.capacity:
            raise IndexError(f"SumTree leaf indices must lie in [0, {self.capacity}), got {indices.min()}..{indices.max()}")
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), indices.shape)
        if (values < 0).any() or not np.isfinite(values).all():
            raise ValueError("SumTree values must be finite and >= 0")
        nodes = indices + self.n_leaves
        self.tree[nodes] = values
        # recompute the parents from their children (no running sums, so no drift)
        nodes = np.unique(nodes)
        while True:
            nodes = np.unique(nodes >> 1)
            if nodes[0] == 0:
                break
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]

    def find(self, values: np.ndarray) -> np.ndarray:
        """Leaf index of each prefix-sum value in ``values`` (each in ``[0, total)``)."""
        remaining = np.asarray(values, dtype=np.float64).copy()
        nodes = np.ones(remaining.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * nodes
            left_sum = self.tree[left]
            go_right = remaining >= left_sum
            remaining -= left_sum * go_right
            nodes = left + go_right
        return nodes - self.n_leaves


class PrioritizedDictReplayBufferSamples(NamedTuple):
    """SB3's ``DictReplayBufferSamples`` plus the importance weights and the flat indices to update."""

    observations: TensorDict
    actions: th.Tensor
    next_observations: TensorDict
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    weights: th.Tensor  # [B, 1] importance-sampling weights w_i
    indices: np.ndarray  # [B] flat indices (position * n_envs + env) for update_priorities


class PrioritizedDictReplayBuffer(DictReplayBuffer):
    """``DictReplayBuffer`` with proportional prioritized sampling (see the module docstring).

    Transition ``(position, env)`` has the flat index ``position * n_envs + env``
    in the sum-tree. The algorithm samples, uses ``samples.weights`` in its loss,
    and calls :meth:`update_priorities` with the new TD errors.

    :param buffer_size: total capacity in transitions (split across ``n_envs`` as in SB3).
    :param observation_space: the Dict observation space.
    :param action_space: the action space.
    :param device: torch device of the sampled tensors.
    :param n_envs: number of parallel environments.
    :param optimize_memory_usage: unsupported for Dict observations (SB3); must be False.
    :param handle_timeout_termination: bootstrap through time-limit truncations (SB3).
    :param alpha: α, how much prioritization is used (0 = uniform).
    :param beta: β, the importance-sampling exponent (annealed by the algorithm).
    :param eps: ε added to ``|δ|``.
    :param seed: seed of the sampling generator.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        alpha: float = DEFAULT_ALPHA,
        beta: float = DEFAULT_BETA0,
        eps: float = DEFAULT_EPS,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )
        if alpha < 0 or not 0 <= beta <= 1 or eps <= 0:
            raise ValueError(f"PER needs alpha >= 0, 0 <= beta <= 1 and eps > 0; got {alpha}, {beta}, {eps}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.eps = float(eps)
        self.tree = SumTree(self.buffer_size * self.n_envs)
        self.max_priority = 1.0  # largest p_i = |δ_i| + ε seen so far (before the exponent α)
        self._rng = np.random.default_rng(seed)

    def add(
        self,
        obs: dict[str, np.ndarray],
        next_obs: dict[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Store one step of every env; the new transitions get the maximal priority."""
        position = self.pos
        super().add(obs, next_obs, action, reward, done, infos)
        flat = position * self.n_envs + np.arange(self.n_envs)
        self.tree.update(flat, self.max_priority**self.alpha)

    def n_transitions(self) -> int:
        """Number of stored transitions (all envs)."""
        return self.size() * self.n_envs

    def probabilities(self) -> np.ndarray:
        """``P(i)`` of every stored transition (eq. 1), in flat-index order."""
        leaves = self.tree.leaves(self.n_transitions())
        return leaves / leaves.sum()

    def importance_weights(self, indices: np.ndarray) -> np.ndarray:
        """``w_i = (N P(i))^-β / max_j (N P(j))^-β`` of the transitions ``indices`` (flat)."""
        n = self.n_transitions()
        total = self.tree.total
        probs = self.tree.get(indices) / total
        smallest = self.tree.leaves(n).min() / total  # the largest weight belongs to the smallest P
        return (n * probs) ** (-self.beta) / (n * smallest) ** (-self.beta)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> PrioritizedDictReplayBufferSamples:  # type: ignore[override]
        """Draw ``batch_size`` transitions with probability ``P(i)`` (stratified), with their weights."""
        n = self.n_transitions()
        if n == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        total = self.tree.total
        segment = total / batch_size
        values = (np.arange(batch_size) + self._rng.random(batch_size)) * segment
        # float round-off may push a search past the last stored leaf (their priorities are 0)
        indices = np.minimum(self.tree.find(np.minimum(values, np.nextafter(total, 0.0))), n - 1)
        weights = self.importance_weights(indices)
        positions, env_indices = np.divmod(indices, self.n_envs)
        base = self._samples_at(positions, env_indices, env)
        return PrioritizedDictReplayBufferSamples(
            *base, weights=self.to_torch(weights.astype(np.float32).reshape(-1, 1)), indices=indices
        )

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray | th.Tensor) -> None:
        """Set ``p_i = |δ_i| + ε`` for the sampled transitions after a learning step."""
        if isinstance(td_errors, th.Tensor):
            td_errors = td_errors.detach().cpu().numpy()
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64).reshape(-1)) + self.eps
        self.tree.update(indices, priorities**self.alpha)
        self.max_priority = max(self.max_priority, float(priorities.max()))

    def _samples_at(self, positions: np.ndarray, env_indices: np.ndarray, env: VecNormalize | None):
        # DictReplayBuffer._get_samples draws env indices at random; here they are given
        obs = self._normalize_obs({k: v[positions, env_indices] for k, v in self.observations.items()}, env)
        next_obs = self._normalize_obs({k: v[positions, env_indices] for k, v in self.next_observations.items()}, env)
        dones = self.dones[positions, env_indices] * (1 - self.timeouts[positions, env_indices])
        rewards = self._normalize_reward(self.rewards[positions, env_indices].reshape(-1, 1), env)
        return (
            {k: self.to_torch(v) for k, v in obs.items()},
            self.to_torch(self.actions[positions, env_indices]),
            {k: self.to_torch(v) for k, v in next_obs.items()},
            self.to_torch(dones).reshape(-1, 1),
            self.to_torch(rewards),
            None,
        )


def annealed_beta(beta0: float, progress_remaining: float) -> float:
    """β annealed linearly from ``beta0`` (start of training) to 1 (end), as Schaul et al. Sec. 3.4."""
    return float(beta0 + (1.0 - beta0) * min(max(1.0 - progress_remaining, 0.0), 1.0))


def use_prioritized_replay(algorithm_kwargs: dict, alpha: float, beta0: float, eps: float) -> None:
    """Make an SB3 algorithm's keyword arguments use :class:`PrioritizedDictReplayBuffer`.

    :param algorithm_kwargs: the keyword arguments, updated in place; a given
        ``replay_buffer_kwargs`` overrides the PER settings.
    :param alpha: priority exponent α.
    :param beta0: initial importance-sampling exponent β.
    :param eps: priority floor ε.
    """
    algorithm_kwargs["replay_buffer_class"] = PrioritizedDictReplayBuffer
    algorithm_kwargs["replay_buffer_kwargs"] = {
        "alpha": alpha,
        "beta": beta0,
        "eps": eps,
        "seed": algorithm_kwargs.get("seed"),
        **(algorithm_kwargs.get("replay_buffer_kwargs") or {}),
    }
