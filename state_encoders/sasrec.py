"""SASRec state encoder (Kang & McAuley, ICDM 2018).

W.-C. Kang, J. McAuley. *Self-Attentive Sequential Recommendation*. ICDM 2018
(arXiv:1808.09781), Sec. III.

The items of the history, oldest first, plus a learned position embedding
(Sec. III, "Embedding Layer")

    Ê = [M_{s_1} + P_1; ...; M_{s_n} + P_n]

go through ``b`` causal self-attention blocks (Sec. III: scaled dot-product
attention with the links Q_i -> K_j for j > i forbidden, a point-wise
two-layer feed-forward network, and around each sub-layer
g(x) = x + Dropout(g(LayerNorm(x)))); see :mod:`state_encoders.layers`. The output at the last valid
position is the state (the paper scores item i at position t by
r_{i,t} = F_t^(b) M_i^T):

    s = F_T^(b)                                         (size d)
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from state_encoders.base import EMBEDDING_INIT_STD, TensorDict
from state_encoders.layers import TransformerStack, causal_attention_mask
from state_encoders.registry import register
from state_encoders.sequential import SequentialEncoder

#: The paper's settings for MovieLens-1M (Sec. IV): 2 blocks, one head, dropout 0.2 (d = 50).
DEFAULT_N_BLOCKS = 2
DEFAULT_N_HEADS = 1
DEFAULT_DROPOUT = 0.2


@register("sasrec")
class SASRecEncoder(SequentialEncoder):
    """SASRec: ``s`` = the last self-attention block's output at the last valid position; ``features_dim = d``.

    Position ``t`` is the ``t + 1``-th oldest item of the (left-aligned)
    window, ``P`` has one row per slot (``N`` of them). Attention reads only
    valid items at or before the query (causal), outputs at padded positions
    are zeroed after every block, and an empty history gives ``s = 0``.

    :param observation_space: a recgym observation space (N = its ``history_length``).
    :param n_blocks: number of self-attention blocks ``b``.
    :param n_heads: attention heads (``d`` must be divisible by it; the paper uses one).
    :param dropout: dropout on the input, the attention weights and each sub-layer's output.
    :param norm_first: True (default): pre-LN blocks, as the paper's code; False: post-LN blocks
        after a LayerNorm of the input, as RecBole's SASRec (see :class:`~state_encoders.layers.TransformerBlock`).
    :param layer_norm_eps: the LayerNorms' epsilon (RecBole: 1e-12).
    :param init_std: None (default): embeddings ``N(0, 0.1)`` as every recgym table, linear layers
        torch's default; a float: every embedding and linear weight ``N(0, init_std)``, biases 0
        (BERT's and RecBole's initialisation, ``initializer_range`` 0.02).
    :param base_kwargs: the common arguments of :class:`~state_encoders.base.StateEncoder`.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        n_blocks: int = DEFAULT_N_BLOCKS,
        n_heads: int = DEFAULT_N_HEADS,
        dropout: float = DEFAULT_DROPOUT,
        norm_first: bool = True,
        layer_norm_eps: float = 1e-5,
        init_std: float | None = None,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(observation_space, **base_kwargs)
        if init_std is not None and not init_std > 0:
            raise ValueError(f"init_std must be > 0 (or None for recgym's initialisation), got {init_std!r}")
        d = self.embedding_dim
        self.position_embedding = nn.Embedding(self.history_length, d)  # P
        nn.init.normal_(self.position_embedding.weight, std=EMBEDDING_INIT_STD)
        self.input_dropout = nn.Dropout(dropout)
        self.blocks = TransformerStack(d, n_blocks, n_heads, dropout, norm_first, layer_norm_eps)
        self._set_features_dim(d)
        if init_std is not None:
            # item embeddings given by the caller (pretrained factors) are kept as given
            drawn = [self.position_embedding, self.blocks]
            if base_kwargs.get("item_embeddings") is None:
                drawn.append(self.item_embedding)
            _normal_init(drawn, init_std)
            with torch.no_grad():
                self.item_embedding.weight[self.pad_item].zero_()  # the padding row stays 0

    def sequence_states(self, observations: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
        history = self.history(observations)
        positions = self.position_embedding.weight.unsqueeze(0)  # [1, N, d]
        x = self.input_dropout(self.embed_items(history.ids) + positions)  # [B, N, d]  Ê
        out = self.blocks(x, history.mask, causal_attention_mask(history.mask))  # [B, N, d]  F^(b)
        return out, history.mask


def _normal_init(modules: list[nn.Module], std: float) -> None:
    """RecBole's ``SASRec._init_weights``: embedding and linear weights ``N(0, std)``, biases 0."""
    with torch.no_grad():
        for module in (m for top in modules for m in top.modules()):
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
