"""DRR-p state representation (Liu et al. 2018, arXiv 1810.12027, Sec. III-B, Fig. "DRR-p").

F. Liu, R. Tang, X. Li, W. Zhang, Y. Ye, H. Chen, H. Guo, Y. Zhang. *Deep
Reinforcement Learning based Recommendation with Explicit User-Item
Interactions Modeling*. arXiv:1810.12027.

The state keeps the N latest positive items h_1..h_N themselves and adds the
pairwise item-item interactions through an element-wise product with one
learnable scalar weight per position (the paper's DRR-p equation):

    s = [h_1, ..., h_N, {w_a h_a ⊗ w_b h_b | a < b}]

The user embedding is not used (that is what DRR-u adds).
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from state_encoders.base import StateEncoder, TensorDict, align_valid, pairwise_products
from state_encoders.registry import register


@register("drr-p")
class DRRPEncoder(StateEncoder):
    """DRR-p: ``s = [h_1..h_N, {w_a h_a ⊗ w_b h_b}_{a<b}]``; ``features_dim = d N (N+1) / 2``.

    Positions are recency ranks: the valid positive items are right-aligned
    (``h_N`` is the most recent) whatever side the environment pads on, so
    ``w_l`` always weights the same rank. For a user with fewer than N
    positives the terms of padded positions (their ``h_l`` and every product
    involving them) are zero; an empty window gives ``s = 0``.

    :param observation_space: a recgym observation space (N = its ``history_length``).
    :param base_kwargs: the arguments common to every encoder (``embedding_dim``,
        ``item_embeddings``, ...), passed on to :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("positive_items", "positive_mask")
    uses_user = False

    def __init__(self, observation_space: spaces.Dict, **base_kwargs: Any) -> None:
        super().__init__(observation_space, **base_kwargs)
        n = int(observation_space["positive_items"].shape[0])
        self.history_length = n
        #: w_l, one scalar per position, initialised to 1 (plain products).
        self.position_weights = nn.Parameter(torch.ones(n))
        n_pairs = n * (n - 1) // 2
        self._set_features_dim((n + n_pairs) * self.embedding_dim)

    def forward(self, observations: TensorDict) -> torch.Tensor:
        ids, mask = self._item_sequence(observations, "positive")  # [B, N], [B, N]
        ids, mask = align_valid(ids, mask, side="right")
        m = mask.to(self.position_weights.dtype).unsqueeze(-1)  # [B, N, 1]
        h = self.embed_items(ids) * m  # [B, N, d], padded rows zeroed
        weighted = h * self.position_weights.view(1, -1, 1)  # [B, N, d]  w_l h_l
        pairs = pairwise_products(weighted)  # [B, N(N-1)/2, d]  zero if a or b is padded
        return torch.cat([h.flatten(1), pairs.flatten(1)], dim=-1)  # [B, d N(N+1)/2]
