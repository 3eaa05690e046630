"""DIN state encoder (Zhou et al., KDD 2018).

G. Zhou, X. Zhu, C. Song, Y. Fan, H. Zhu, X. Ma, Y. Yan, J. Jin, H. Li,
K. Gai. *Deep Interest Network for Click-Through Rate Prediction*. KDD 2018
(arXiv:1706.06978), Sec. 4.

The user's interest is pooled from their behaviours with weights that
depend on the *candidate* item A (target attention). An activation unit, an
MLP over the query, the key, their difference and their product (80-40-1 in
the official code), scores each behaviour e_j against the candidate v_A:

    a_j = MLP([v_A, e_j, v_A - e_j, v_A ⊙ e_j])
    v_U(A) = Σ_j w_j e_j

The paper uses the scores themselves as weights, w_j = a_j: it relaxes the
constraint Σ_j w_j = 1 to keep the intensity of the user's interests
(Sec. 4); the official code masks the padded behaviours,
divides by sqrt(d) and soft-maxes: w = softmax_j(a_j / sqrt(d)). Both are
offered (``normalise_weights``). The state for a candidate is what DIN's
final MLP reads (RecBole's DIN concatenates the same three terms):

    s(A) = [v_U(A) ; v_A ; v_U(A) ⊙ v_A]                 (size 3d)

Behaviours here are the user's liked items (``positive_items``, the clicks
of the paper). :meth:`DINEncoder.target_state` gives ``s(A)`` for any
candidates; ``forward`` (the plain features path every agent uses) takes the
mean liked item as the query.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from gymnasium import spaces
from torch import nn

from state_encoders.base import StateEncoder, TensorDict, masked_mean, masked_softmax
from state_encoders.registry import register

Activation = Literal["sigmoid", "prelu"]

#: hidden layers of the activation unit (official code: 80-40-1).
DEFAULT_ATTENTION_HIDDEN = (80, 40)
#: candidates scored per chunk in :meth:`DINEncoder.target_state` (bounds the ``[B, M, N, 4d]`` input).
TARGET_CHUNK = 256


@register("din")
class DINEncoder(StateEncoder):
    """DIN: target attention over the liked items; ``features_dim = 3d``.

    ``forward`` uses the default query ``v_A = mean of the liked items``;
    :meth:`target_state` uses candidate items as queries. Padded behaviours
    get weight exactly 0 in both weightings; an empty window gives
    ``v_U = 0`` (and ``s = 0`` on the features path).

    How DQN uses it: with ``policy_kwargs={"q_head": "target"}`` the DQN
    Q-network (:class:`agents.dqn.MaskedQNetwork`) scores each candidate item
    ``a`` as ``Q(s, a) = MLP(s(a)) + c_a`` with ``s(a) = target_state(obs, a)``,
    as DIN scores a candidate ad; the whole catalogue costs one
    ``[B, N, 4d]`` MLP pass per item (chunked), so it suits small catalogues
    or a GPU.

    :param observation_space: a recgym observation space.
    :param attention_hidden: hidden layer sizes of the activation unit.
    :param activation: ``"sigmoid"`` (the official code's attention MLP) or
        ``"prelu"`` (the paper's activation unit). Dice is not offered: its
        batch statistics would make one observation's state depend on the
        other observations in the batch (and on padded slots).
    :param normalise_weights: True: masked softmax of ``a / sqrt(d)`` (official
        code); False: the paper's unnormalised ``w_j = a_j`` (0 at padding).
    :param base_kwargs: the common arguments of :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("positive_items", "positive_mask")
    uses_user = False

    def __init__(
        self,
        observation_space: spaces.Dict,
        attention_hidden: Sequence[int] = DEFAULT_ATTENTION_HIDDEN,
        activation: Activation = "sigmoid",
        normalise_weights: bool = True,
        **base_kwargs: Any,
    ) -> None:
        if activation not in ("sigmoid", "prelu"):
            raise ValueError(f"activation must be 'sigmoid' or 'prelu', got {activation!r}")
        super().__init__(observation_space, **base_kwargs)
        d = self.embedding_dim
        self.history_length = int(observation_space["positive_items"].shape[0])
        self.normalise_weights = bool(normalise_weights)
        layers: list[nn.Module] = []
        width = 4 * d
        for hidden in attention_hidden:
            layers += [nn.Linear(width, hidden), nn.Sigmoid() if activation == "sigmoid" else nn.PReLU(hidden)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.attention = nn.Sequential(*layers)  # the activation unit
        self._set_features_dim(3 * d)

    # -- the model -------------------------------------------------------------------
    def _behaviours(self, observations: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self._item_sequence(observations, "positive")  # [B, N], [B, N]
        return self.embed_items(ids), mask  # [B, N, d], [B, N]

    def _weights(self, queries: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``w`` ``[B, M, N]`` of keys ``[B, N, d]`` (valid ``mask`` ``[B, N]``) for queries ``[B, M, d]``."""
        m, n = queries.size(1), keys.size(1)
        q = queries.unsqueeze(2).expand(-1, -1, n, -1)  # [B, M, N, d]
        k = keys.unsqueeze(1).expand(-1, m, -1, -1)  # [B, M, N, d]
        scores = self.attention(torch.cat([q, k, q - k, q * k], dim=-1)).squeeze(-1)  # [B, M, N]  a_j
        valid = mask.unsqueeze(1)  # [B, 1, N]
        if self.normalise_weights:
            return masked_softmax(scores / math.sqrt(keys.size(-1)), valid)
        return scores * valid.to(scores.dtype)

    def _states(self, queries: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        interest = self._weights(queries, keys, mask) @ keys  # [B, M, d]  v_U(A)
        return torch.cat([interest, queries, interest * queries], dim=-1)  # [B, M, 3d]

    # -- public ------------------------------------------------------------------------
    def default_query(self, observations: TensorDict) -> torch.Tensor:
        """The features path's query ``[B, d]``: the mean embedding of the liked items (0 if none)."""
        keys, mask = self._behaviours(observations)
        return masked_mean(keys, mask)

    def attention_weights(self, observations: TensorDict, items: torch.Tensor | None = None) -> torch.Tensor:
        """Weights ``w`` at the observation's own positions: ``[B, N]`` for the default query, ``[B, M, N]`` for ``items`` ``[B, M]``."""
        keys, mask = self._behaviours(observations)
        if items is None:
            return self._weights(masked_mean(keys, mask).unsqueeze(1), keys, mask).squeeze(1)
        return self._weights(self.embed_items(items), keys, mask)

    def target_state(self, observations: TensorDict, items: torch.Tensor) -> torch.Tensor:
        """States ``s(A)`` ``[B, M, 3d]`` with the candidate items ``items`` ``[B, M]`` as queries."""
        keys, mask = self._behaviours(observations)  # [B, N, d], [B, N]
        chunks = [
            self._states(self.embed_items(part), keys, mask)  # [B, m, 3d]
            for part in torch.split(items, TARGET_CHUNK, dim=1)
        ]
        return torch.cat(chunks, dim=1)

    def forward(self, observations: TensorDict) -> torch.Tensor:
        keys, mask = self._behaviours(observations)  # [B, N, d], [B, N]
        query = masked_mean(keys, mask).unsqueeze(1)  # [B, 1, d]  mean liked item
        return self._states(query, keys, mask).squeeze(1)  # [B, 3d]
