"""Mean encoder: the simplest reference state, ``s = [u, mean_l h_l]``.

Not from a paper: a bag-of-items baseline that any learned encoder should beat.
It averages the embeddings of the whole recent history (``history_items``,
positive and negative responses alike) over the valid slots and concatenates
the user embedding. It is invariant to the order of the history.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces

from state_encoders.base import StateEncoder, TensorDict, masked_mean
from state_encoders.registry import register


@register("mean")
class MeanEncoder(StateEncoder):
    """``s = [u, (1/|V|) sum_{l in V} h_l]`` over the valid history slots ``V``; ``features_dim = 2d``.

    An empty history gives ``s = [u, 0]``.

    :param observation_space: a recgym observation space.
    :param base_kwargs: the arguments common to every encoder (``embedding_dim``,
        ``item_embeddings``, ...), passed on to :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("user", "history_items", "history_mask")
    uses_user = True

    def __init__(self, observation_space: spaces.Dict, **base_kwargs: Any) -> None:
        super().__init__(observation_space, **base_kwargs)
        self._set_features_dim(2 * self.embedding_dim)

    def forward(self, observations: TensorDict) -> torch.Tensor:
        u = self.embed_users(observations)  # [B, d]
        ids, mask = self._item_sequence(observations, "history")  # [B, N], [B, N]
        h = self.embed_items(ids)  # [B, N, d]
        return torch.cat([u, masked_mean(h, mask)], dim=-1)  # [B, 2d]
