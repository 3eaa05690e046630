"""DRR-att state representation (Liu et al., Knowledge-Based Systems 2020).

F. Liu, H. Guo, X. Li, R. Tang, Y. Ye, X. He. *State representation modeling
for deep reinforcement learning based recommendation*. Knowledge-Based
Systems 205 (2020) 106170.

DRR-ave with user-dependent attention in place of the fixed position weights:
an attention network scores each of the N latest positive items given the
user, the scores are soft-maxed over the items, and the attended vector
replaces ``ave``:

    a_l  = MLP([u, h_l])                 (one hidden ReLU layer -> scalar)
    α_l  = exp(a_l) / sum_j exp(a_j)     (over the valid positions only)
    ave  = sum_l α_l h_l
    s    = [u, u ⊗ ave, ave]             (size 3d)
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from state_encoders.base import StateEncoder, TensorDict, masked_softmax
from state_encoders.registry import register

#: hidden width of the attention network (not given by the paper; a small MLP).
DEFAULT_ATTENTION_HIDDEN = 64


@register("drr-att")
class DRRAttentionEncoder(StateEncoder):
    """DRR-att: ``s = [u, u ⊗ ave, ave]`` with ``ave = sum_l α_l h_l``, ``α = softmax_l MLP([u, h_l])``.

    ``features_dim = 3d``. The softmax runs over the valid positions only, so
    the weights sum to 1 over them and are 0 at padded positions; an empty
    window gives ``s = [u, 0, 0]``. The attention is order-free (no position
    parameters), so no re-alignment is needed. The scoring layer has no bias:
    a constant added to every score cancels in the softmax.

    :param observation_space: a recgym observation space (N = its ``history_length``).
    :param attention_hidden: hidden width of the attention MLP.
    :param base_kwargs: the arguments common to every encoder (``embedding_dim``,
        ``item_embeddings``, ...), passed on to :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("user", "positive_items", "positive_mask")
    uses_user = True

    def __init__(
        self,
        observation_space: spaces.Dict,
        attention_hidden: int = DEFAULT_ATTENTION_HIDDEN,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(observation_space, **base_kwargs)
        d = self.embedding_dim
        self.history_length = int(observation_space["positive_items"].shape[0])
        self.attention = nn.Sequential(
            nn.Linear(2 * d, attention_hidden),
            nn.ReLU(),
            nn.Linear(attention_hidden, 1, bias=False),
        )
        self._set_features_dim(3 * d)

    def _encode(self, observations: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.embed_users(observations)  # [B, d]
        ids, mask = self._item_sequence(observations, "positive")  # [B, N], [B, N]
        h = self.embed_items(ids)  # [B, N, d]
        pairs = torch.cat([u.unsqueeze(1).expand_as(h), h], dim=-1)  # [B, N, 2d]
        alpha = masked_softmax(self.attention(pairs).squeeze(-1), mask)  # [B, N]
        ave = (alpha.unsqueeze(-1) * h).sum(dim=1)  # [B, d]
        return torch.cat([u, u * ave, ave], dim=-1), alpha  # [B, 3d], [B, N]

    def attention_weights(self, observations: TensorDict) -> torch.Tensor:
        """α ``[B, N]`` at the observation's own positions (0 at padded slots)."""
        return self._encode(observations)[1]

    def forward(self, observations: TensorDict) -> torch.Tensor:
        return self._encode(observations)[0]
