"""GRU4Rec state encoder (Hidasi et al., ICLR 2016).

B. Hidasi, A. Karatzoglou, L. Baltrunas, D. Tikk. *Session-based
Recommendations with Recurrent Neural Networks*. ICLR 2016 (arXiv:1511.06939),
Sec. 3.

A GRU reads the embeddings of the items the user responded to, oldest first
(the paper's input is the 1-of-N coding of the item, i.e. an embedding
lookup; its GRU, Sec. 3):

    z_t = σ(W_z x_t + U_z h_{t-1})                       update gate
    r_t = σ(W_r x_t + U_r h_{t-1})                       reset gate
    ĥ_t = tanh(W x_t + U (r_t ⊙ h_{t-1}))                candidate
    h_t = (1 - z_t) h_{t-1} + z_t ĥ_t

and the hidden state after the last item is the session's representation
(the paper scores every item from it with an output layer; the agent's head
plays that role here):

    s = h_T                                             (size H)
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from state_encoders.base import TensorDict
from state_encoders.registry import register
from state_encoders.sequential import SequentialEncoder

#: GRU hidden size: the paper's smaller setting (100 units; it also reports 1000).
DEFAULT_HIDDEN_SIZE = 100
#: Dropout on the input embeddings (as RecBole's GRU4Rec; the paper applies dropout to the hidden layers).
DEFAULT_DROPOUT = 0.3


@register("gru4rec")
class GRU4RecEncoder(SequentialEncoder):
    """GRU4Rec: ``s = h_T``, the GRU state after the last valid history item; ``features_dim = H``.

    The history is read oldest first from position 0; the output is gathered
    at the last valid position, so padding never enters the state, and an
    empty history gives the initial zero state.

    :param observation_space: a recgym observation space.
    :param hidden_size: GRU hidden size ``H``.
    :param num_layers: stacked GRU layers (the paper found one layer best).
    :param dropout: dropout on the input embeddings (and between stacked layers).
    :param base_kwargs: the common arguments of :class:`~state_encoders.base.StateEncoder`.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        hidden_size: int = DEFAULT_HIDDEN_SIZE,
        num_layers: int = 1,
        dropout: float = DEFAULT_DROPOUT,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(observation_space, **base_kwargs)
        self.hidden_size = int(hidden_size)
        self.input_dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(
            self.embedding_dim, self.hidden_size, num_layers=num_layers, batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self._set_features_dim(self.hidden_size)

    def sequence_states(self, observations: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
        history = self.history(observations)
        x = self.input_dropout(self.embed_items(history.ids))  # [B, N, d]
        outputs, _ = self.gru(x)  # [B, N, H]; causal, so slots after the last valid one are inert
        return outputs * history.mask.unsqueeze(-1).to(outputs.dtype), history.mask  # [B, N, H], [B, N]
