"""TiSASRec state encoder (Li, Wang & McAuley, WSDM 2020).

J. Li, Y. Wang, J. McAuley. *Time Interval Aware Self-Attention for
Sequential Recommendation*. WSDM 2020, Sec. 3.

SASRec whose attention also sees how far apart in time two interactions are.
With time stamps t_1..t_n of the history, the interval between items i and j
is counted in units of the user's smallest interval and clipped at k:

    r_ij = min(k, floor(|t_i - t_j| / r_min))

Each clipped interval has a key and a value embedding (R^K, R^V), each
absolute position a key and a value embedding (P^K, P^V), and the
time-interval aware self-attention adds them to the keys and values:

    e_ij = m_i W^Q (m_j W^K + R^K_{r_ij} + P^K_j)^T / sqrt(d)
    α_ij = softmax_j(e_ij)                      (over j <= i: causal)
    z_i  = Σ_j α_ij (m_j W^V + R^V_{r_ij} + P^V_j)

followed, as SASRec, by a point-wise feed-forward network, residual
connections, layer normalisation and dropout, ``b`` blocks; the state is the
output at the last valid position (size d).

Time in recgym: ``history_time`` holds the *episode step* of each interaction
(logged start items get -n .. -1; every item of one slate shares its step), so
an interval counts environment steps, not seconds. The smallest interval
between two steps is 1 for every user, so ``r_min`` is the constant
``time_unit`` (default 1 step) instead of the paper's per-user minimum: this
also keeps the model causal (a later item cannot change how earlier
intervals are scaled).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from state_encoders.base import EMBEDDING_INIT_STD, TensorDict
from state_encoders.layers import TransformerStack, causal_attention_mask
from state_encoders.registry import register
from state_encoders.sequential import SequentialEncoder

#: The official code's defaults (ML-1M): 2 blocks, one head, dropout 0.2, k = 256 (``time_span``).
DEFAULT_N_BLOCKS = 2
DEFAULT_N_HEADS = 1
DEFAULT_DROPOUT = 0.2
DEFAULT_TIME_SPAN = 256


@register("tisasrec")
class TiSASRecEncoder(SequentialEncoder):
    """TiSASRec: causal self-attention with relative time-interval and absolute position keys/values; ``features_dim = d``.

    The interval table has ``k + 1`` rows, ``k = min(time_span, the largest
    interval the observation space allows)`` (rows no observation can reach
    would never be trained). Times at padded slots are never read; an empty
    history gives ``s = 0``.

    :param observation_space: a recgym observation space with ``history_time``.
    :param n_blocks: number of self-attention blocks.
    :param n_heads: attention heads (``d`` must be divisible by it).
    :param dropout: dropout on the inputs, the interval/position embeddings, the
        attention weights and each sub-layer's output.
    :param time_span: ``k``, intervals longer than ``k`` units are clipped to ``k``.
    :param time_unit: ``r_min``, the length of one interval unit in ``history_time`` units (steps).
    :param base_kwargs: the common arguments of :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("history_items", "history_mask", "history_time")

    def __init__(
        self,
        observation_space: spaces.Dict,
        n_blocks: int = DEFAULT_N_BLOCKS,
        n_heads: int = DEFAULT_N_HEADS,
        dropout: float = DEFAULT_DROPOUT,
        time_span: int = DEFAULT_TIME_SPAN,
        time_unit: float = 1.0,
        **base_kwargs: Any,
    ) -> None:
        if time_span < 1 or not time_unit > 0:
            raise ValueError(f"tisasrec needs time_span >= 1 and time_unit > 0, got {time_span} and {time_unit}")
        super().__init__(observation_space, **base_kwargs)
        d, n = self.embedding_dim, self.history_length
        time_space = observation_space["history_time"]
        widest = float(time_space.high.max() - time_space.low.min())
        reachable = math.ceil(widest / time_unit) if math.isfinite(widest) else time_span
        self.time_span = int(min(time_span, max(reachable, 1)))
        self.time_unit = float(time_unit)
        self.interval_key = nn.Embedding(self.time_span + 1, d)  # R^K
        self.interval_value = nn.Embedding(self.time_span + 1, d)  # R^V
        self.position_key = nn.Embedding(n, d)  # P^K
        self.position_value = nn.Embedding(n, d)  # P^V
        for table in (self.interval_key, self.interval_value, self.position_key, self.position_value):
            nn.init.normal_(table.weight, std=EMBEDDING_INIT_STD)
        self.input_dropout = nn.Dropout(dropout)
        self.term_dropout = nn.Dropout(dropout)
        self.blocks = TransformerStack(d, n_blocks, n_heads, dropout)
        self._set_features_dim(d)

    def intervals(self, time: torch.Tensor) -> torch.Tensor:
        """Clipped intervals ``r_ij`` ``[B, N, N]`` (long) of aligned time stamps ``[B, N]``."""
        gap = (time.unsqueeze(2) - time.unsqueeze(1)).abs() / self.time_unit  # [B, N, N]
        return torch.floor(gap).clamp(0, self.time_span).long()

    def sequence_states(self, observations: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
        history = self.history(observations)
        r = self.intervals(history.time)  # [B, N, N]
        key_terms = self.term_dropout(self.interval_key(r) + self.position_key.weight.unsqueeze(0))  # [B, N, N, d]
        value_terms = self.term_dropout(self.interval_value(r) + self.position_value.weight.unsqueeze(0))  # [B, N, N, d]
        x = self.input_dropout(self.embed_items(history.ids))  # [B, N, d]  m_i
        out = self.blocks(x, history.mask, causal_attention_mask(history.mask), key_terms, value_terms)  # [B, N, d]
        return out, history.mask
