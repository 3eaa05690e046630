"""Parallel RNN (p-RNN) state encoder (Hidasi et al., RecSys 2016).

B. Hidasi, M. Quadrana, A. Karatzoglou, D. Tikk. *Parallel Recurrent Neural
Network Architectures for Feature-rich Session-based Recommendations*.
RecSys 2016, Sec. 3.

GRU4Rec with item content: the *parallel* architecture has one GRU subnet per
representation of the item, here one over the item id (its embedding) and
one over the item's content feature vector, and combines their hidden states
by concatenation (the paper's output layer then scores the items from
``[h^ID_t ; h^F_t]``):

    h^ID_t = GRU_ID(e_{s_t}, h^ID_{t-1})
    h^F_t  = GRU_F(x_{s_t}, h^F_{t-1})                  x_i = item_features[i]
    s      = [h^ID_T ; h^F_T]                           (size H_ID + H_F)

Content for MovieLens and Jester comes from
:func:`state_encoders.features.item_content_features` (genres, title or joke
words).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from state_encoders.base import TensorDict
from state_encoders.features import feature_table
from state_encoders.registry import register
from state_encoders.sequential import SequentialEncoder

#: hidden size of each subnet (GRU4Rec's 100-unit setting).
DEFAULT_HIDDEN_SIZE = 100
#: dropout on both subnets' inputs (RecBole's GRU4RecF uses 0.3).
DEFAULT_DROPOUT = 0.3


@register("prnn")
class ParallelRNNEncoder(SequentialEncoder):
    """p-RNN: an id GRU and a content GRU read the history in parallel; ``features_dim = 2 H``.

    The content GRU reads the feature vectors as they are (the paper feeds
    the feature vector straight into the subnet). Both states are gathered at
    the last valid position; an empty history gives ``s = 0``.

    :param observation_space: a recgym observation space.
    :param item_features: ``(n_items, F)`` content features, e.g.
        :func:`state_encoders.features.item_content_features` of the scenario's log.
    :param hidden_size: hidden size ``H`` of each GRU.
    :param dropout: dropout on the inputs of both GRUs.
    :param base_kwargs: the common arguments of :class:`~state_encoders.base.StateEncoder`.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        item_features: np.ndarray,
        hidden_size: int = DEFAULT_HIDDEN_SIZE,
        dropout: float = DEFAULT_DROPOUT,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(observation_space, **base_kwargs)
        # the features travel in the constructor arguments (saved with an SB3 model), not in the state dict
        self.register_buffer("item_features", feature_table(item_features, self.n_items), persistent=False)
        self.n_features = int(self.item_features.shape[1])
        self.hidden_size = int(hidden_size)
        self.input_dropout = nn.Dropout(dropout)
        self.id_gru = nn.GRU(self.embedding_dim, self.hidden_size, batch_first=True)  # GRU_ID
        self.feature_gru = nn.GRU(self.n_features, self.hidden_size, batch_first=True)  # GRU_F
        self._set_features_dim(2 * self.hidden_size)

    def sequence_states(self, observations: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
        history = self.history(observations)
        ids_out, _ = self.id_gru(self.input_dropout(self.embed_items(history.ids)))  # [B, N, H]
        content_out, _ = self.feature_gru(self.input_dropout(self.item_features[history.ids]))  # [B, N, H]
        out = torch.cat([ids_out, content_out], dim=-1)  # [B, N, 2H]
        return out * history.mask.unsqueeze(-1).to(out.dtype), history.mask
