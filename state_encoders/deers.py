"""DEERS state encoder (Zhao et al., KDD 2018).

X. Zhao, L. Zhang, Z. Ding, L. Xia, J. Tang, D. Yin. *Recommendations with
Negative Feedback via Pairwise Deep Reinforcement Learning*. KDD 2018
(arXiv:1802.06501), Sec. 2.2 "Architecture of DEERS".

The state is a pair: the N latest positive items s+ = {i_1..i_N} (clicked or
ordered) and the N latest negative items s- = {j_1..j_N} (skipped). Each queue
is read by its own GRU (the paper's GRU equations: update gate
z_n = σ(W_z i_n + U_z h_{n-1}), reset gate r_n = σ(W_r i_n + U_r h_{n-1}),
candidate ĥ_n = tanh(W i_n + U (r_n · h_{n-1})), h_n = (1 - z_n) h_{n-1} + z_n ĥ_n)
and the final hidden states are the two halves of the state:

    s = [GRU+(h(i_1..i_N)), GRU-(h(j_1..j_N))]       (size 2H)

The environment advances only the queue that matches the feedback type, so a
queue may be shorter than N (or empty). Q(s+, s-, a) is the agent's job.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from state_encoders.base import StateEncoder, TensorDict, align_valid, gather_last_valid
from state_encoders.registry import register

#: GRU hidden size (the paper does not report one; small, like the embeddings).
DEFAULT_GRU_HIDDEN = 64


@register("deers")
class DEERSEncoder(StateEncoder):
    """DEERS: ``s = [h+_last, h-_last]``, the final GRU states of the positive and negative queues.

    ``features_dim = 2 * hidden_size``. Each queue is left-aligned (oldest
    valid item first) and its GRU state is read at the last *valid* position,
    so padding never enters the state; an empty queue gives the GRU's initial
    zero state. Both GRUs share the item embedding table.

    :param observation_space: a recgym observation space with ``negative_items``.
    :param hidden_size: hidden size ``H`` of each GRU.
    :param base_kwargs: the arguments common to every encoder (``embedding_dim``,
        ``item_embeddings``, ...), passed on to :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("positive_items", "positive_mask", "negative_items", "negative_mask")
    uses_user = False

    def __init__(
        self,
        observation_space: spaces.Dict,
        hidden_size: int = DEFAULT_GRU_HIDDEN,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(observation_space, **base_kwargs)
        self.history_length = int(observation_space["positive_items"].shape[0])
        self.hidden_size = int(hidden_size)
        self.positive_gru = nn.GRU(self.embedding_dim, self.hidden_size, batch_first=True)
        self.negative_gru = nn.GRU(self.embedding_dim, self.hidden_size, batch_first=True)
        self._set_features_dim(2 * self.hidden_size)

    def _read_queue(self, observations: TensorDict, prefix: str, gru: nn.GRU) -> torch.Tensor:
        ids, mask = self._item_sequence(observations, prefix)  # [B, N], [B, N]
        ids, mask = align_valid(ids, mask, side="left")
        outputs, _ = gru(self.embed_items(ids))  # [B, N, H]; causal, so padding after the last valid slot is inert
        return gather_last_valid(outputs, mask.sum(dim=1))  # [B, H]

    def forward(self, observations: TensorDict) -> torch.Tensor:
        positive = self._read_queue(observations, "positive", self.positive_gru)  # [B, H]
        negative = self._read_queue(observations, "negative", self.negative_gru)  # [B, H]
        return torch.cat([positive, negative], dim=-1)  # [B, 2H]
