"""The base class of sequential encoders: the history, oldest first, read position by position.

GRU4Rec, SASRec, TiSASRec, FDSA and p-RNN are next-item models: they read
the user's recent interactions (``history_items``, positive and negative
responses alike) in order and keep one output per position, the state after
the items up to it. What they share lives here, as in RecBole's
``SequentialRecommender``:

* the valid slots are moved to the front, keeping their order
  (:func:`~state_encoders.base.valid_order`): position ``t`` holds the
  ``t + 1``-th oldest item of the window, whatever side the environment pads
  on, and the time stamps and feedback travel with the ids;
* :meth:`SequentialEncoder.sequence_states` gives the output at every position
  ``[B, N, h]`` (what a next-item loss trains at every position);
* the state is the output at the last valid position
  (:func:`~state_encoders.base.gather_last_valid`); an empty history gives 0.

A causal model's output at position ``t`` reads positions ``0..t`` only, so
the state of a prefix of the history equals the output at the prefix's last
position.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from gymnasium import spaces

from state_encoders.base import StateEncoder, TensorDict, gather_last_valid, valid_order


class History(NamedTuple):
    """The history of a batch of observations, valid slots first (oldest first).

    :param ids: ``[B, N]`` long item ids, the padding id at padded slots.
    :param mask: ``[B, N]`` bool valid slots (a prefix of each row).
    :param time: ``[B, N]`` ``history_time`` (episode steps), 0 at padded slots.
    :param feedback: ``[B, N]`` ``history_feedback`` in [-1, 1], 0 at padded slots.
    """

    ids: torch.Tensor
    mask: torch.Tensor
    time: torch.Tensor
    feedback: torch.Tensor

    @property
    def lengths(self) -> torch.Tensor:
        """``[B]`` number of valid items."""
        return self.mask.sum(dim=1)


class SequentialEncoder(StateEncoder):
    """Base class: state = the output at the last valid position of a left-aligned history.

    Subclasses implement :meth:`sequence_states`. ``uses_user`` is False: these
    models represent the user by the sequence alone.

    :param observation_space: a recgym observation space (N = its ``history_length``).
    :param base_kwargs: the common arguments of :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("history_items", "history_mask")
    uses_user = False

    def __init__(self, observation_space: spaces.Dict, **base_kwargs: Any) -> None:
        super().__init__(observation_space, **base_kwargs)
        self.history_length = int(observation_space["history_items"].shape[0])

    def history(self, observations: TensorDict) -> History:
        """The observations' history, valid slots moved to the front in their order."""
        ids, mask = self._item_sequence(observations, "history")  # [B, N], [B, N]
        order = valid_order(mask, side="left")  # [B, N]
        ids, mask = ids.gather(1, order), mask.gather(1, order)
        zeros = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)

        def aligned(key: str) -> torch.Tensor:
            if key not in observations:
                return zeros
            values = observations[key].to(torch.float32).gather(1, order)  # [B, N]
            return values.masked_fill(~mask, 0.0)

        return History(ids, mask, aligned("history_time"), aligned("history_feedback"))

    def sequence_states(self, observations: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        """Outputs ``[B, N, features_dim]`` at every position of the aligned history, and its mask ``[B, N]``.

        Position ``t`` is the state after the ``t + 1`` oldest valid items;
        padded positions (after the last valid one) hold 0.
        """
        raise NotImplementedError

    def forward(self, observations: TensorDict) -> torch.Tensor:
        states, mask = self.sequence_states(observations)  # [B, N, h], [B, N]
        return gather_last_valid(states, mask.sum(dim=1))  # [B, h]
