"""DRR-u state representation (Liu et al. 2018, arXiv 1810.12027, Sec. III-B, Fig. "DRR-u").

F. Liu, R. Tang, X. Li, W. Zhang, Y. Ye, H. Chen, H. Guo, Y. Zhang. *Deep
Reinforcement Learning based Recommendation with Explicit User-Item
Interactions Modeling*. arXiv:1810.12027.

DRR-p plus the user: the items themselves are replaced by their user-item
interactions, and the item-item interactions are kept (the paper's DRR-u
equation):

    s = [{u ⊗ w_l h_l | l = 1..N}, {w_a h_a ⊗ w_b h_b | a < b}]
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from state_encoders.base import StateEncoder, TensorDict, align_valid, pairwise_products
from state_encoders.registry import register


@register("drr-u")
class DRRUEncoder(StateEncoder):
    """DRR-u: ``s = [{u ⊗ w_l h_l}_l, {w_a h_a ⊗ w_b h_b}_{a<b}]``; ``features_dim = d N (N+1) / 2``.

    The same position weights ``w_l`` serve both terms. Positions are recency
    ranks (valid items right-aligned); terms of padded positions are zero, so
    an empty window gives ``s = 0``.

    :param observation_space: a recgym observation space (N = its ``history_length``).
    :param base_kwargs: the arguments common to every encoder (``embedding_dim``,
        ``item_embeddings``, ...), passed on to :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("user", "positive_items", "positive_mask")
    uses_user = True

    def __init__(self, observation_space: spaces.Dict, **base_kwargs: Any) -> None:
        super().__init__(observation_space, **base_kwargs)
        n = int(observation_space["positive_items"].shape[0])
        self.history_length = n
        #: w_l, one scalar per position, initialised to 1.
        self.position_weights = nn.Parameter(torch.ones(n))
        n_pairs = n * (n - 1) // 2
        self._set_features_dim((n + n_pairs) * self.embedding_dim)

    def forward(self, observations: TensorDict) -> torch.Tensor:
        u = self.embed_users(observations)  # [B, d]
        ids, mask = self._item_sequence(observations, "positive")  # [B, N], [B, N]
        ids, mask = align_valid(ids, mask, side="right")
        m = mask.to(u.dtype).unsqueeze(-1)  # [B, N, 1]
        weighted = self.embed_items(ids) * m * self.position_weights.view(1, -1, 1)  # [B, N, d]  w_l h_l
        user_item = u.unsqueeze(1) * weighted  # [B, N, d]  u ⊗ w_l h_l
        pairs = pairwise_products(weighted)  # [B, N(N-1)/2, d]
        return torch.cat([user_item.flatten(1), pairs.flatten(1)], dim=-1)  # [B, d N(N+1)/2]
