"""FDSA state encoder (Zhang et al., IJCAI 2019).

T. Zhang, P. Zhao, Y. Liu, V. S. Sheng, J. Xu, D. Wang, G. Liu, X. Zhou.
*Feature-level Deeper Self-Attention Network for Sequential Recommendation*.
IJCAI 2019, Sec. 3.

Two self-attention streams over the history, oldest first:

* **item stream**: item embedding plus a learned position embedding, then
  causal self-attention blocks (as SASRec):  O_s = SA_s(E_s + P);
* **feature stream**: each item's features (here: the columns of
  ``item_features`` the item has, e.g. MovieLens genres and title words) are
  pooled by *vanilla attention*:

      α_i = softmax_j(A_i W_f + b_f)      over the item's features j
      f_i = Σ_j α_ij a_j                 (a_j the embedding of feature j)

  plus its own position embedding, then its own causal blocks:
  O_f = SA_f(F + P_f).

The two outputs at the last valid position are concatenated and projected
(the paper's fully-connected layer):

    s = W_o [O_s,T ; O_f,T] + b_o                        (size d)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from state_encoders.base import EMBEDDING_INIT_STD, TensorDict, masked_softmax
from state_encoders.features import feature_table
from state_encoders.layers import TransformerStack, causal_attention_mask
from state_encoders.registry import register
from state_encoders.sequential import SequentialEncoder

#: SASRec's settings for both streams (2 blocks, one head, dropout 0.2).
DEFAULT_N_BLOCKS = 2
DEFAULT_N_HEADS = 1
DEFAULT_DROPOUT = 0.2


@register("fdsa")
class FDSAEncoder(SequentialEncoder):
    """FDSA: an item and a feature self-attention stream, their last valid outputs projected; ``features_dim = d``.

    A feature ``j`` of item ``i`` is *present* when ``item_features[i, j] > 0``;
    the vanilla attention runs over the present features only (the feature
    values beyond presence are not used: FDSA's attributes are categorical).
    An item without features, and the padding id, get ``f_i = 0``. An empty
    history gives ``s = 0`` (the projection is applied per position before the
    last valid one is gathered, which is the same for a non-empty history).

    :param observation_space: a recgym observation space.
    :param item_features: ``(n_items, F)`` content features, e.g.
        :func:`state_encoders.features.item_content_features` of the scenario's log.
    :param n_blocks: self-attention blocks per stream.
    :param n_heads: attention heads (``d`` must be divisible by it).
    :param dropout: dropout inside both streams.
    :param base_kwargs: the common arguments of :class:`~state_encoders.base.StateEncoder`.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        item_features: np.ndarray,
        n_blocks: int = DEFAULT_N_BLOCKS,
        n_heads: int = DEFAULT_N_HEADS,
        dropout: float = DEFAULT_DROPOUT,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(observation_space, **base_kwargs)
        d, n = self.embedding_dim, self.history_length
        # the features travel in the constructor arguments (saved with an SB3 model), not in the state dict
        self.register_buffer("item_features", feature_table(item_features, self.n_items), persistent=False)
        self.n_features = int(self.item_features.shape[1])
        self.feature_embedding = nn.Parameter(torch.randn(self.n_features, d) * EMBEDDING_INIT_STD)  # a_j
        self.feature_score = nn.Linear(d, 1, bias=False)  # W_f (b_f cancels in the softmax)
        self.item_position = nn.Embedding(n, d)  # P
        self.feature_position = nn.Embedding(n, d)  # P_f
        for table in (self.item_position, self.feature_position):
            nn.init.normal_(table.weight, std=EMBEDDING_INIT_STD)
        self.input_dropout = nn.Dropout(dropout)
        self.item_blocks = TransformerStack(d, n_blocks, n_heads, dropout)
        self.feature_blocks = TransformerStack(d, n_blocks, n_heads, dropout)
        self.output = nn.Linear(2 * d, d)  # W_o, b_o
        self._set_features_dim(d)

    def pooled_features(self, ids: torch.Tensor) -> torch.Tensor:
        """``f_i`` ``[..., d]``: vanilla attention over the present features of items ``ids`` ``[...]``."""
        present = self.item_features[ids.long()] > 0  # [..., F]
        scores = self.feature_score(self.feature_embedding).squeeze(-1)  # [F]
        alpha = masked_softmax(scores.expand(present.shape), present)  # [..., F], 0 where absent
        return alpha @ self.feature_embedding  # [..., d]

    def sequence_states(self, observations: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
        history = self.history(observations)
        attention_mask = causal_attention_mask(history.mask)  # [B, N, N]
        items = self.input_dropout(self.embed_items(history.ids) + self.item_position.weight)  # [B, N, d]
        features = self.input_dropout(self.pooled_features(history.ids) + self.feature_position.weight)  # [B, N, d]
        item_out = self.item_blocks(items, history.mask, attention_mask)  # [B, N, d]  O_s
        feature_out = self.feature_blocks(features, history.mask, attention_mask)  # [B, N, d]  O_f
        out = self.output(torch.cat([item_out, feature_out], dim=-1))  # [B, N, d]
        return out * history.mask.unsqueeze(-1).to(out.dtype), history.mask
