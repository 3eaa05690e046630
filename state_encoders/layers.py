"""Self-attention layers shared by the transformer encoders (SASRec, TiSASRec, FDSA, MB-STR).

One block follows SASRec (Kang & McAuley, ICDM 2018, Sec. III-B/C):

    S = SA(X) = softmax(Q K^T / sqrt(d_h) + mask) V,   Q = X W^Q, K = X W^K, V = X W^V
    F = FFN(S) = ReLU(S W^(1) + b^(1)) W^(2) + b^(2)          (point-wise, inner size d)
    g(x) = x + Dropout(g(LayerNorm(x)))                      (for g = SA and g = FFN)

with an optional pair term per (query i, key j) added to the keys and to the
values (TiSASRec's relative time-interval and absolute-position embeddings,
Li et al., WSDM 2020, Eq. 5-6)::

    e_ij = q_i (k_j + a^K_ij)^T / sqrt(d_h),    z_i = sum_j α_ij (v_j + a^V_ij)

and an optional bias per head and pair added to the scaled scores
(``score_bias``: MB-STR's relative-position bias, with its own post-LN layer
in :mod:`state_encoders.mbstr`).

Masking: ``attention_mask[b, i, j]`` says whether query ``i`` may read key
``j``; :func:`masked_softmax` gives masked keys exactly zero weight and a row
with no readable key a zero output (not NaN). Outputs at padded positions are
multiplied by zero after every block, so they stay 0.

Shapes in comments: ``B`` batch, ``N`` window length, ``d`` model size, ``H``
heads, ``d_h = d / H``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from state_encoders.base import masked_softmax


def causal_attention_mask(mask: torch.Tensor) -> torch.Tensor:
    """``[B, N, N]`` bool: query ``i`` may read key ``j`` iff ``j <= i`` and ``j`` is valid.

    :param mask: ``[B, N]`` valid slots of a left-aligned (oldest first) sequence.
    """
    n = mask.size(1)
    causal = torch.ones(n, n, dtype=torch.bool, device=mask.device).tril()  # [N, N]
    return causal.unsqueeze(0) & mask.bool().unsqueeze(1)  # [B, N, N]


class MaskedSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention over the readable keys only.

    As SASRec there is no output projection: the heads are concatenated (with
    one head, the paper's setting, the output is ``softmax(.) V`` itself).

    :param dim: model size ``d``.
    :param n_heads: number of heads ``H`` (``d`` must be divisible by it).
    :param dropout: dropout on the attention weights.
    """

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if n_heads < 1 or dim % n_heads != 0:
            raise ValueError(f"the model size {dim} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.n_heads, self.head_dim).transpose(1, 2)  # [B, H, N, d_h]

    def forward(
        self,
        x: torch.Tensor,
        attention_mask: torch.Tensor,
        key_terms: torch.Tensor | None = None,
        value_terms: torch.Tensor | None = None,
        score_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend ``x`` ``[B, N, d]`` to itself -> ``[B, N, d]``.

        :param attention_mask: ``[B, N, N]`` bool, query ``i`` may read key ``j``.
        :param key_terms: optional ``[B, N, N, d]`` added to key ``j`` for query ``i``.
        :param value_terms: optional ``[B, N, N, d]`` added to value ``j`` for query ``i``.
        :param score_bias: optional ``[B, H, N, N]`` added to the scaled scores (MB-STR's
            relative-position bias).
        """
        b, n, d = x.shape
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))  # [B, H, N, d_h]
        scores = q @ k.transpose(-1, -2)  # [B, H, N, N]
        if key_terms is not None:
            pair_k = key_terms.view(b, n, n, self.n_heads, self.head_dim)  # [B, N, N, H, d_h]
            scores = scores + torch.einsum("bhid,bijhd->bhij", q, pair_k)
        scores = scores / math.sqrt(self.head_dim)
        if score_bias is not None:
            scores = scores + score_bias
        weights = masked_softmax(scores, attention_mask.unsqueeze(1))  # [B, H, N, N]
        weights = self.dropout(weights)
        out = weights @ v  # [B, H, N, d_h]
        if value_terms is not None:
            pair_v = value_terms.view(b, n, n, self.n_heads, self.head_dim)  # [B, N, N, H, d_h]
            out = out + torch.einsum("bhij,bijhd->bhid", weights, pair_v)
        return out.transpose(1, 2).reshape(b, n, d)  # [B, N, d]


class TransformerBlock(nn.Module):
    """One self-attention block plus point-wise feed-forward, with residuals and LayerNorm.

    :param dim: model size ``d``.
    :param n_heads: attention heads.
    :param dropout: dropout on the attention weights and on each sub-layer's output.
    :param norm_first: True (default): pre-LN, ``x + Dropout(g(LN(x)))`` (the SASRec paper and its
        code); False: post-LN, ``LN(x + Dropout(g(x)))`` (BERT; RecBole's TransformerLayer).
    :param layer_norm_eps: the LayerNorms' epsilon (torch's 1e-5; RecBole 1e-12).
    """

    def __init__(self, dim: int, n_heads: int, dropout: float, norm_first: bool = True,
                 layer_norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.norm_first = bool(norm_first)
        self.attention_norm = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.attention = MaskedSelfAttention(dim, n_heads, dropout)
        self.feed_forward_norm = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        attention_mask: torch.Tensor,
        key_terms: torch.Tensor | None = None,
        value_terms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[B, N, d]`` -> ``[B, N, d]``; see :class:`MaskedSelfAttention` for the arguments."""
        if not self.norm_first:
            x = self.attention_norm(x + self.dropout(self.attention(x, attention_mask, key_terms, value_terms)))
            return self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))
        x = x + self.dropout(self.attention(self.attention_norm(x), attention_mask, key_terms, value_terms))
        return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))


class TransformerStack(nn.Module):
    """``n_blocks`` :class:`TransformerBlock` s and a LayerNorm; padded positions kept at 0.

    Pre-LN (``norm_first``, default) normalises after the last block; post-LN, whose blocks end
    with a LayerNorm, normalises the input instead (BERT's and RecBole's LayerNorm of the
    embeddings).

    :param dim: model size ``d``.
    :param n_blocks: number of blocks.
    :param n_heads: attention heads per block.
    :param dropout: dropout rate inside the blocks.
    :param norm_first: pre-LN (True) or post-LN (False) blocks, see :class:`TransformerBlock`.
    :param layer_norm_eps: the LayerNorms' epsilon.
    """

    def __init__(self, dim: int, n_blocks: int, n_heads: int, dropout: float, norm_first: bool = True,
                 layer_norm_eps: float = 1e-5) -> None:
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
        self.norm_first = bool(norm_first)
        self.blocks = nn.ModuleList(TransformerBlock(dim, n_heads, dropout, norm_first, layer_norm_eps)
                                    for _ in range(n_blocks))
        self.final_norm = nn.LayerNorm(dim, eps=layer_norm_eps)  # post-LN: the input's LayerNorm

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        attention_mask: torch.Tensor,
        key_terms: torch.Tensor | None = None,
        value_terms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Encode ``x`` ``[B, N, d]`` (valid slots ``mask`` ``[B, N]``) -> ``[B, N, d]``, 0 at padding."""
        keep = mask.to(x.dtype).unsqueeze(-1)  # [B, N, 1]
        x = x * keep if self.norm_first else self.final_norm(x) * keep
        for block in self.blocks:
            x = block(x, attention_mask, key_terms, value_terms) * keep
        return self.final_norm(x) * keep if self.norm_first else x
