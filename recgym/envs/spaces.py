"""The observation contract shared by environments, encoders and agents.

Every recgym environment returns a flat ``gymnasium.spaces.Dict`` with fixed
shapes (stable-baselines3 supports neither nested Dicts nor ``Sequence``
spaces). Item ids are integer ``Box`` entries, not ``Discrete``, because
stable-baselines3 one-hot encodes ``Discrete`` observations; encoders cast them
with ``.long()``. Padded slots hold the id ``n_items`` (one past the last item)
and a 0 in the matching mask, so an embedding table with ``n_items + 1`` rows
and ``padding_idx=n_items`` is safe; encoders must still honour the mask.

Keys (``N`` = ``history_length``, ``C`` = ``consumed_length``):

=====================  ========  =======  ==============================================
key                    shape     dtype    meaning
=====================  ========  =======  ==============================================
``user``               (1,)      int64    contiguous user id
``history_items``      (N,)      int64    last N items the user responded to (oldest first)
``history_mask``       (N,)      int8     1 for a real slot, 0 for padding
``history_feedback``   (N,)      float32  normalised reward of each history item, [-1, 1]
``history_behavior``   (N,)      int8     :class:`simulators.base.Behavior` code (0 = pad)
``history_time``       (N,)      float32  episode step of the interaction (logged start
                                          items get -n .. -1)
``positive_items``     (N,)      int64    last N liked items (clicked / purchased): DRR's
                                          state window, which slides only on positive feedback
``positive_mask``      (N,)      int8
``negative_items``     (N,)      int64    last N skipped items: DEERS's negative queue
``negative_mask``      (N,)      int8
``consumed``           (C,)      int64    items shown or consumed in this episode (start
                                          items included), padded: a policy masks them
=====================  ========  =======  ==============================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

ITEM_SEQUENCE_KEYS = ("history", "positive", "negative")


@dataclass(frozen=True)
class ObservationLayout:
    """Sizes that define an environment's observation space.

    :param n_users: number of users (ids ``0 .. n_users-1``).
    :param n_items: number of items (ids ``0 .. n_items-1``; ``n_items`` is padding).
    :param history_length: N, the length of the history and of the queues.
    :param consumed_length: C, capacity of the ``consumed`` list.
    """

    n_users: int
    n_items: int
    history_length: int
    consumed_length: int

    def __post_init__(self) -> None:
        for name in ("n_users", "n_items", "history_length", "consumed_length"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ObservationLayout.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def pad_item(self) -> int:
        return self.n_items

    def space(self) -> spaces.Dict:
        n, c, pad = self.history_length, self.consumed_length, self.pad_item

        def ids(length: int) -> spaces.Box:
            return spaces.Box(0, pad, shape=(length,), dtype=np.int64)

        def mask() -> spaces.Box:
            return spaces.Box(0, 1, shape=(n,), dtype=np.int8)

        return spaces.Dict(
            {
                "user": spaces.Box(0, self.n_users - 1, shape=(1,), dtype=np.int64),
                "history_items": ids(n),
                "history_mask": mask(),
                "history_feedback": spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32),
                "history_behavior": spaces.Box(0, 3, shape=(n,), dtype=np.int8),
                "history_time": spaces.Box(-float(n), float(c), shape=(n,), dtype=np.float32),
                "positive_items": ids(n),
                "positive_mask": mask(),
                "negative_items": ids(n),
                "negative_mask": mask(),
                "consumed": ids(c),
            }
        )

    @classmethod
    def from_space(cls, space: spaces.Dict) -> "ObservationLayout":
        """Recover the layout from an observation space (what encoders receive)."""
        try:
            n_items = int(space["history_items"].high.flat[0])
            return cls(
                n_users=int(space["user"].high.flat[0]) + 1,
                n_items=n_items,
                history_length=int(space["history_items"].shape[0]),
                consumed_length=int(space["consumed"].shape[0]),
            )
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(
                "not a recgym observation space: expected a spaces.Dict with keys "
                f"'user', 'history_items', 'consumed', ... (got {space!r})"
            ) from err
