"""Observations in batches, and the consumed items masked out of an agent's choice (numpy and torch).

Observations follow :mod:`recgym.envs.spaces`: ``consumed`` is the window of the
latest items of the episode (the whole episode by default), padded with the id
``n_items``; every agent masks them, and takes ``action_masks`` (the
environment's :meth:`~recgym.envs.RecommendationVectorEnv.action_masks`, as
sb3-contrib's maskable agents do) to restrict itself to the available items
when a protocol passes them.
"""

from __future__ import annotations

import numpy as np
import torch as th

Observation = dict[str, np.ndarray]


def as_batch(observation: Observation) -> tuple[Observation, bool]:
    """A batched view ``(B, ...)`` of one observation or of a batch; and whether it was single.

    A single recgym observation has ``consumed`` of shape ``(C,)``; a batch ``(B, C)``.
    """
    consumed = np.asarray(observation["consumed"])
    if consumed.ndim == 1:
        return {key: np.asarray(value)[None] for key, value in observation.items()}, True
    return {key: np.asarray(value) for key, value in observation.items()}, False


def consumed_mask_numpy(consumed: np.ndarray, n_items: int) -> np.ndarray:
    """``(B, n_items)`` bool mask of the items listed in ``consumed`` ``(B, C)``; padding ids are dropped."""
    ids = np.clip(np.asarray(consumed, dtype=np.int64), 0, n_items)
    mask = np.zeros((ids.shape[0], n_items + 1), dtype=bool)
    mask[np.arange(ids.shape[0])[:, None], ids] = True
    return mask[:, :n_items]


def mask_consumed(q_values: th.Tensor, consumed: th.Tensor) -> th.Tensor:
    """``q_values`` ``[B, n_items]`` with the consumed items set to ``-inf`` (never the argmax).

    Scatters ``-inf`` into a copy with one extra column that absorbs the padding
    ids (about 3x faster than building a boolean mask and ``masked_fill``).
    """
    n_items = q_values.shape[1]
    padded = th.cat([q_values, q_values.new_empty(q_values.shape[0], 1)], dim=1)  # [B, n_items + 1]
    padded.scatter_(1, consumed.long().clamp(0, n_items), float("-inf"))
    return padded[:, :n_items]
