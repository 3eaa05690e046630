"""The one place where an agent's action becomes the recommended item(s).

Two action modes, each with an optional slate of ``k`` items:

* ``"discrete"``: the action is an item id (``Discrete(n_items)``, or
  ``MultiDiscrete([n_items] * k)`` for a slate). The item recommended is the
  item asked for; there is no substitution. Whether it is available (not yet
  consumed in the episode, inside the user's candidate set) is for the episode
  rules to judge (:class:`~recgym.envs.config.EpisodeConfig` ``unavailable``);
  :meth:`ActionMapper.unavailable` tells which positions are not.
* ``"embedding"``: DRR's actor output, a vector in ``[-1, 1]^D``
  (``Box(-1, 1, (D,))``). Items are scored by the dot product with their
  action vectors (the scenario's :attr:`~recgym.scenario.Scenario.action_item_vectors`:
  the embedding model's item factors and item bias), the unavailable ones are
  masked, and the best ``k`` are recommended, in order. Ranking the items by the
  action's scores *is* the policy (DRR, section 3.2), so no rule stands between
  the action and the item.

Actions must have exactly the documented shape: ``(B,)`` or ``(B, k)`` ids, or
``(B, D)`` vectors in the batched environment; nothing is reshaped, so a
transposed batch is refused rather than read as other items.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from recgym.envs.config import ACTION_MODES


class InvalidActionError(ValueError):
    """An action outside the action space (range, NaN, shape or dtype)."""


class ActionMapper:
    """Validates actions and maps them to available items, for a batch of users.

    :param item_embeddings: ``(n_items, D)`` item action vectors (the scenario's
        ``action_item_vectors``); scaled so that every coordinate lies in ``[-1, 1]``.
    :param mode: ``"discrete"`` or ``"embedding"``.
    :param slate_size: number of items recommended per step.
    """

    def __init__(self, item_embeddings: np.ndarray, mode: str = "discrete", slate_size: int = 1) -> None:
        if mode not in ACTION_MODES:
            raise ValueError(f"unknown action_mode {mode!r}; choose one of {list(ACTION_MODES)}")
        if int(slate_size) < 1:
            raise ValueError(f"slate_size must be >= 1, got {slate_size}")
        emb = np.asarray(item_embeddings, dtype=np.float32)
        scale = float(np.abs(emb).max()) or 1.0
        self.item_embeddings = np.ascontiguousarray(emb / scale)
        self._item_embeddings_t = np.ascontiguousarray(self.item_embeddings.T)
        self.n_items, self.embedding_dim = self.item_embeddings.shape
        self.mode = mode
        self.slate_size = int(slate_size)
        self.space = self._make_space()

    def _make_space(self) -> spaces.Space:
        if self.mode == "discrete":
            if self.slate_size == 1:
                return spaces.Discrete(self.n_items)
            return spaces.MultiDiscrete([self.n_items] * self.slate_size)
        return spaces.Box(-1.0, 1.0, shape=(self.embedding_dim,), dtype=np.float32)

    # -- validation --------------------------------------------------------------------
    def validate(self, actions: np.ndarray, batch: int) -> np.ndarray:
        """Check a batch of actions against the space; return them as an array.

        Discrete: integer ids of shape ``(batch,)`` or ``(batch, k)``; embedding:
        finite floats of shape ``(batch, d)`` in ``[-1, 1]`` (a tolerance of 1e-5
        absorbs float rounding).
        """
        a = self._as_array(actions)
        if self.mode == "discrete":
            expected = (batch,) if self.slate_size == 1 else (batch, self.slate_size)
            if a.shape != expected:
                raise InvalidActionError(
                    f"action of shape {np.shape(actions)} does not fit {self.space} (expected shape {expected[1:] or ()} per user)"
                )
            if a.dtype.kind == "f":
                if not np.isfinite(a).all():
                    raise InvalidActionError(f"action {actions!r} is NaN or infinite; {self.space} takes item ids")
                if (a != np.round(a)).any():
                    raise InvalidActionError(f"action {actions!r} is not an integer item id for {self.space}")
            elif a.dtype.kind not in "iu":
                raise InvalidActionError(f"action {actions!r} of dtype {a.dtype} is not an item id for {self.space}")
            a = a.astype(np.int64, copy=False)
            if a.size and (a.min() < 0 or a.max() >= self.n_items):
                raise InvalidActionError(
                    f"action {actions!r} is outside {self.space}: item ids run from 0 to {self.n_items - 1}"
                )
            return a
        expected = (batch, self.embedding_dim)
        if a.shape != expected:
            raise InvalidActionError(
                f"action of shape {np.shape(actions)} does not fit {self.space} (expected ({self.embedding_dim},) per user)"
            )
        if a.dtype.kind not in "fiu":
            raise InvalidActionError(f"action of dtype {a.dtype} is not a vector for {self.space}")
        a = a.astype(np.float32, copy=False)
        if not np.isfinite(a).all():
            raise InvalidActionError(f"action contains NaN or infinity; {self.space} needs finite values")
        if a.size and (a.min() < -1.0 - 1e-5 or a.max() > 1.0 + 1e-5):
            raise InvalidActionError(
                f"action has values in [{a.min():.4g}, {a.max():.4g}], outside {self.space}: "
                "squash the actor output (tanh) or clip it to [-1, 1]"
            )
        return a

    def validate_scalar(self, action) -> int:
        """Fast check of one discrete action (single item, one user); returns the item id."""
        if isinstance(action, (int, np.integer)) and not isinstance(action, bool):
            item = int(action)
        else:
            a = self._as_array(action)
            if a.size != 1:
                raise InvalidActionError(f"action of shape {a.shape} does not fit {self.space} (expected one item id)")
            return int(self.validate(a.reshape(1), 1)[0])
        if not 0 <= item < self.n_items:
            raise InvalidActionError(f"action {action!r} is outside {self.space}: item ids run from 0 to {self.n_items - 1}")
        return item

    def _as_array(self, actions) -> np.ndarray:
        try:
            return np.asarray(actions)
        except (ValueError, TypeError) as err:  # ragged nested lists, objects numpy cannot hold
            raise InvalidActionError(f"action {actions!r} is not an array of the shape {self.space} takes: {err}") from None

    # -- mapping -----------------------------------------------------------------------
    def to_items(self, actions: np.ndarray, blocked: np.ndarray) -> np.ndarray:
        """``(B, k)`` item ids of validated actions; ``blocked`` ``(B, n_items)`` marks unavailable items.

        Discrete actions are the items themselves (``blocked`` is not consulted);
        embedding actions rank the available items by score. Rows of the
        embedding mode with fewer than ``k`` available items repeat their last
        pick; the episode rules never let that happen (an episode ends when its
        user has fewer than ``k`` items left).
        """
        if self.mode == "embedding":
            scores = actions @ self._item_embeddings_t  # [B, n_items]
            return self._top_k(scores, blocked)
        return actions.reshape(actions.shape[0], -1)

    @staticmethod
    def unavailable(items: np.ndarray, blocked: np.ndarray) -> np.ndarray:
        """``(B, k)`` bool: positions of ``items`` that are blocked, or repeat an earlier position of the slate."""
        rows = np.arange(items.shape[0])[:, None]
        bad = blocked[rows, items]
        if items.shape[1] > 1:
            for j in range(1, items.shape[1]):
                bad[:, j] |= (items[:, :j] == items[:, j : j + 1]).any(axis=1)
        return bad

    def _top_k(self, scores: np.ndarray, blocked: np.ndarray, k: int | None = None) -> np.ndarray:
        k = self.slate_size if k is None else k
        np.copyto(scores, -np.inf, where=blocked)
        if k == 1:
            return scores.argmax(axis=1)[:, None]
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1)
