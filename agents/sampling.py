"""Uniformly random items for exploration: among the unconsumed ones, or among the available ones."""

from __future__ import annotations

import numpy as np

from agents.masking import consumed_mask_numpy


def random_unconsumed(consumed: np.ndarray, n_items: int, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random item per row that is not in that row's ``consumed`` ``(B, C)``.

    Rejection sampling: ``C`` is small next to ``n_items``, so a redraw is rare
    and this avoids a ``(B, n_items)`` matrix per step. Rows whose items are all
    consumed get 0 (the environment ends such episodes before that happens).
    """
    consumed = np.asarray(consumed, dtype=np.int64)
    items = rng.integers(n_items, size=consumed.shape[0])
    for _ in range(64):
        bad = np.flatnonzero((consumed == items[:, None]).any(axis=1))
        if bad.size == 0:
            return items
        items[bad] = rng.integers(n_items, size=bad.size)
    # nearly everything consumed: sample exactly among what is left
    scores = rng.random((consumed.shape[0], n_items))
    scores[consumed_mask_numpy(consumed, n_items)] = -1.0
    return scores.argmax(axis=1)


def random_available(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random available item per row of ``masks`` ``(B, n_items)`` (row without one: 0)."""
    scores = rng.random(masks.shape)
    scores[~masks] = -1.0
    return scores.argmax(axis=1)
