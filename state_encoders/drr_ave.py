"""DRR-ave state representation (Liu et al. 2018, arXiv 1810.12027, Sec. III-B, Fig. "DRR-ave").

F. Liu, R. Tang, X. Li, W. Zhang, Y. Ye, H. Chen, H. Guo, Y. Zhang. *Deep
Reinforcement Learning based Recommendation with Explicit User-Item
Interactions Modeling*. arXiv:1810.12027. (Also the baseline structure of
Liu et al., KBS 2020, "State representation modeling for deep reinforcement
learning based recommendation".)

The N latest positive items are pooled by a weighted average (in the paper a
1x1 convolution over the N positions, i.e. one learnable weight per position);
the pooled vector interacts with the user by an element-wise product, and the
state is (the paper's DRR-ave equation)

    ave = sum_l w_l h_l
    s   = [u, u ⊗ ave, ave]                          (size 3d)

The paper pools a full window. With masking (users with fewer than N
positives) two variants are offered, see :class:`DRRAveEncoder`.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from gymnasium import spaces
from torch import nn

from state_encoders.base import StateEncoder, TensorDict, align_valid, masked_softmax
from state_encoders.registry import register

Pooling = Literal["renormalise", "zero"]


@register("drr-ave")
class DRRAveEncoder(StateEncoder):
    """DRR-ave: ``s = [u, u ⊗ ave, ave]``, ``ave`` = position-weighted pooling of ``h``; ``features_dim = 3d``.

    Positions are recency ranks (valid items right-aligned, ``h_N`` the most
    recent). ``pooling`` chooses how padded positions are handled:

    * ``"renormalise"`` (default): ``w = softmax(θ)`` restricted to the valid
      positions, so the weights are positive and sum to 1 over the valid
      items: a true weighted *average* whose scale does not depend on how many
      positives the user has. ``θ = 0`` at start, i.e. a plain mean. For a full
      window this is the paper's 1x1 convolution with its weights constrained
      to the simplex.
    * ``"zero"``: the paper's unconstrained 1x1 convolution (no bias),
      ``ave = sum_l m_l θ_l h_l``; padded positions contribute zero and the
      weights are not renormalised (``θ_l = 1/N`` at start).

    An empty window gives ``ave = 0`` and ``s = [u, 0, 0]`` in both modes.

    :param observation_space: a recgym observation space (N = its ``history_length``).
    :param pooling: ``"renormalise"`` or ``"zero"`` (see above).
    :param base_kwargs: the arguments common to every encoder (``embedding_dim``,
        ``item_embeddings``, ...), passed on to :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("user", "positive_items", "positive_mask")
    uses_user = True

    def __init__(
        self,
        observation_space: spaces.Dict,
        pooling: Pooling = "renormalise",
        **base_kwargs: Any,
    ) -> None:
        if pooling not in ("renormalise", "zero"):
            raise ValueError(f"pooling must be 'renormalise' or 'zero', got {pooling!r}")
        super().__init__(observation_space, **base_kwargs)
        n = int(observation_space["positive_items"].shape[0])
        self.history_length = n
        self.pooling: Pooling = pooling
        #: θ_l: logits ("renormalise") or raw 1x1-convolution weights ("zero").
        init = torch.zeros(n) if pooling == "renormalise" else torch.full((n,), 1.0 / n)
        self.position_weights = nn.Parameter(init)
        self._set_features_dim(3 * self.embedding_dim)

    def pooling_weights(self, mask: torch.Tensor) -> torch.Tensor:
        """Weights ``[B, N]`` of the (right-aligned) positions for a right-aligned ``mask`` ``[B, N]``."""
        theta = self.position_weights.unsqueeze(0).expand(mask.size(0), -1)  # [B, N]
        if self.pooling == "renormalise":
            return masked_softmax(theta, mask)
        return theta * mask.to(theta.dtype)

    def forward(self, observations: TensorDict) -> torch.Tensor:
        u = self.embed_users(observations)  # [B, d]
        ids, mask = self._item_sequence(observations, "positive")  # [B, N], [B, N]
        ids, mask = align_valid(ids, mask, side="right")
        h = self.embed_items(ids)  # [B, N, d]
        weights = self.pooling_weights(mask)  # [B, N], 0 at padded positions
        ave = (weights.unsqueeze(-1) * h).sum(dim=1)  # [B, d]
        return torch.cat([u, u * ave, ave], dim=-1)  # [B, 3d]
