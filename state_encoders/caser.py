"""Caser state encoder (Tang & Wang, WSDM 2018).

J. Tang, K. Wang. *Personalized Top-N Sequential Recommendation via
Convolutional Sequence Embedding*. WSDM 2018 (arXiv:1809.07426), Sec. 3.

The embeddings of the L most recent items form an "image" E ∈ R^{L×d}
(the embedding look-up layer). Two kinds of convolution read it:

* **horizontal** filters F^k ∈ R^{h×d}, ``n_h`` of each height h = 1..L,
  slide over the rows (union-level and point-level sequential patterns);
  each gives c^k_i = φ_c(E_{i:i+h-1} ⊙ F^k) and is max-pooled over i:
  o = [max(c^1), ..., max(c^{n})]                      (size n_h L)
* **vertical** filters F̃^k ∈ R^{L×1}, ``n_v`` of them, take weighted sums of
  the rows: õ^k = Σ_l F̃^k_l E_l                       (size n_v d)

A fully-connected layer combines them (with dropout on its input), and the
user embedding P_u is concatenated, as in the input of the paper's output
layer:

    z = φ_a(W [o ; õ] + b)                              (size d)
    s = [z ; P_u]                                       (size 2d; d without the user term)
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from state_encoders.base import StateEncoder, TensorDict, align_valid
from state_encoders.registry import register

#: The paper's / official code's defaults: L = 5, n_h = 16, n_v = 4, dropout 0.5, ReLU.
DEFAULT_MARKOV_ORDER = 5
DEFAULT_HORIZONTAL_FILTERS = 16
DEFAULT_VERTICAL_FILTERS = 4
DEFAULT_DROPOUT = 0.5


@register("caser")
class CaserEncoder(StateEncoder):
    """Caser: horizontal and vertical convolutions over the last L history items, FC, user term; ``features_dim = 2d``.

    ``L = min(markov_order, N)``. The valid history items are right-aligned
    (the most recent in the last row); a history shorter than ``L`` leaves
    zero rows (the padding embedding) at the top, as the paper's zero padding
    of short sequences. An empty history gives ``z = φ_a(W [φ_c(bias) ; 0] + b)``,
    finite and the same for every user. ``features_dim`` is ``d`` with
    ``use_user=False``.

    :param observation_space: a recgym observation space.
    :param markov_order: ``L``, the number of recent items read.
    :param horizontal_filters: ``n_h``, filters per height.
    :param vertical_filters: ``n_v``.
    :param dropout: dropout on ``[o ; õ]``.
    :param use_user: concatenate the user term ``P_u`` (looked up, or folded in
        from the history with ``user_fold_in``).
    :param base_kwargs: the common arguments of :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("user", "history_items", "history_mask")

    def __init__(
        self,
        observation_space: spaces.Dict,
        markov_order: int = DEFAULT_MARKOV_ORDER,
        horizontal_filters: int = DEFAULT_HORIZONTAL_FILTERS,
        vertical_filters: int = DEFAULT_VERTICAL_FILTERS,
        dropout: float = DEFAULT_DROPOUT,
        use_user: bool = True,
        **base_kwargs: Any,
    ) -> None:
        if markov_order < 1 or horizontal_filters < 1 or vertical_filters < 1:
            raise ValueError("caser needs markov_order, horizontal_filters and vertical_filters >= 1")
        self.uses_user = bool(use_user)  # read by StateEncoder.__init__: no user table without the term
        super().__init__(observation_space, **base_kwargs)
        d = self.embedding_dim
        self.markov_order = min(int(markov_order), int(observation_space["history_items"].shape[0]))
        big_l = self.markov_order
        self.horizontal = nn.ModuleList(
            nn.Conv2d(1, horizontal_filters, kernel_size=(h, d)) for h in range(1, big_l + 1)
        )  # F^k, heights 1..L
        self.vertical = nn.Conv2d(1, vertical_filters, kernel_size=(big_l, 1))  # F̃^k
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(horizontal_filters * big_l + vertical_filters * d, d)  # W, b
        self._set_features_dim(2 * d if self.uses_user else d)

    def forward(self, observations: TensorDict) -> torch.Tensor:
        ids, mask = self._item_sequence(observations, "history")  # [B, N], [B, N]
        ids, _ = align_valid(ids, mask, side="right")
        image = self.embed_items(ids[:, -self.markov_order :]).unsqueeze(1)  # [B, 1, L, d]  E
        pooled = [
            torch.relu(conv(image).squeeze(3)).amax(dim=2)  # [B, n_h]  max_i c^k_i
            for conv in self.horizontal
        ]
        o = torch.cat(pooled, dim=1)  # [B, n_h L]
        o_tilde = self.vertical(image).flatten(1)  # [B, n_v d]
        z = torch.relu(self.fc(self.dropout(torch.cat([o, o_tilde], dim=1))))  # [B, d]
        if not self.uses_user:
            return z
        return torch.cat([z, self.embed_users(observations)], dim=-1)  # [B, 2d]
