"""HPMN state encoder (Ren et al., SIGIR 2019).

K. Ren, J. Qin, Y. Fang, W. Zhang, L. Zheng, W. Bian, G. Zhou, J. Xu, Y. Yu,
X. Zhu, K. Gai. *Lifelong Sequential Modeling with Personalized Memorization
for User Response Prediction*. SIGIR 2019 (arXiv:1905.00758), the method's
three parts: the hierarchical periodic memory writing, the attentional
memory reading and the memory covariance regularisation. Section and
equation numbers are not quoted (the stored copies we could read do not
show them); the equations below follow the paper's description and the
official code (github.com/alimamarankgroup/HPMN, ``code/hpmn.py``).

**Writing.** A behaviour is embedded as ``x_i = e_item(i) + e_type(b_i)``
(the item and its response type, ``history_behavior``). Layer ``j`` of the
memory is a GRU updated every ``t_j = 2^(j-1)`` behaviours from the layer
below, so upper layers keep slower, longer-range patterns:

    m^0_i = x_i
    m^j_i = GRU_j(m^j_{i-1}, m^(j-1)_i)   if i mod 2^(j-1) = 0
    m^j_i = m^j_{i-1}                      otherwise

``i`` counts the behaviours of the window from its oldest (``i = 1``). After
``L`` behaviours the memory is the last state of every layer,
``M = [m^1_L, ..., m^J_L]`` ``[J, H]``; a layer not yet updated
(``L < 2^(j-1)``) holds its zero initial state.

**Reading** (``K = 3`` hops, the target item ``v`` as the query):

    q_0 = W_q v
    a^k_j = MLP_k([q_k, m^j, q_k - m^j, q_k ⊙ m^j])           (80-40-1, ReLU)
    w^k = softmax_j(a^k)                                        over the J slots
    q_(k+1) = q_k H + Σ_j w^k_j m^j
    s(v) = [q_K ; v]                                            (size H + d)

**Regularisation.** With ``M̃`` each slot minus its mean over the hidden
units and ``C = M̃ M̃^T / H`` ``[J, J]``, the loss adds
``λ Σ_batch ||C - diag(C)||_F`` (λ = 1e-5), which pushes the slots to
hold different patterns (:meth:`HPMNEncoder.pop_auxiliary_loss`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from simulators.base import N_BEHAVIORS, Behavior
from state_encoders.base import EMBEDDING_INIT_STD, StateEncoder, TensorDict, gather_last_valid, valid_order
from state_encoders.registry import register

#: GRU hidden size H (official code, every dataset: 32).
DEFAULT_HIDDEN_SIZE = 32
#: memory layers J, periods 1, 2, 4, 8 (official code: 3 on Amazon, 4 on Taobao).
DEFAULT_N_LAYERS = 4
#: reading hops K (official code: 3).
DEFAULT_HOPS = 3
#: hidden widths of each hop's attention MLP (official code: 80-40-1).
DEFAULT_ATTENTION_HIDDEN = (80, 40)
#: weight λ of the memory covariance regulariser (official code: 1e-5 on Amazon and Taobao).
DEFAULT_MEMORY_REG = 1e-5
#: candidates read per chunk in :meth:`HPMNEncoder.target_state` (bounds the ``[B, M, J, 4H]`` input).
TARGET_CHUNK = 512


@register("hpmn")
class HPMNEncoder(StateEncoder):
    """HPMN: a hierarchical periodic memory of the history read by multi-hop attention; ``features_dim = H + d``.

    Reads ``history_items`` (every response, liked or not) with its
    ``history_behavior`` types, oldest first (valid slots moved to the front,
    so padding side and holes do not matter). Every layer's state is gathered
    after its last update inside the valid part, so nothing at a padded slot
    reaches the memory.

    * :meth:`memory` ``[B, J, H]``: the memory slots;
    * :meth:`target_state` ``[B, M, H + d]``: ``s(v)`` for candidate items
      ``[B, M]`` (the paper's setting: the target item is the query); the
      memory is written once and read once per candidate;
    * ``forward`` (the features path every agent uses): the query is the
      newest behaviour ``x_L`` (the official code queries with the last
      element of its input sequence), ``s = [q_K ; x_L]``; an empty history
      gives a zero memory and ``s = [q_K ; 0]`` with ``q_K`` finite.

    How a long history reaches it: through the observation contract. The
    environment's ``history_length`` is the window ``N`` (hundreds of steps
    for ML-100K's long users); see ``docs/encoders.md`` for why an
    encoder-side memory carried between steps is not used.

    :param observation_space: a recgym observation space (``N`` = its ``history_length``).
    :param hidden_size: GRU hidden size ``H`` of every layer.
    :param n_layers: memory layers ``J``; capped so that a full window of ``N`` behaviours
        updates every layer at least twice (period ``2^(j-1) <= N / 2``): a layer updated once
        is a single GRU step from the zero state, whose recurrence never acts.
    :param hops: reading hops ``K``.
    :param attention_hidden: hidden widths of each hop's attention MLP.
    :param memory_reg: weight λ of the covariance regulariser (0 turns it off).
    :param use_behavior: add the response-type embedding ``e_type(b_i)`` to each behaviour
        (False: items only, as the paper's click sequences).
    :param base_kwargs: the common arguments of :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("history_items", "history_mask", "history_behavior")
    uses_user = False

    def __init__(
        self,
        observation_space: spaces.Dict,
        hidden_size: int = DEFAULT_HIDDEN_SIZE,
        n_layers: int = DEFAULT_N_LAYERS,
        hops: int = DEFAULT_HOPS,
        attention_hidden: Sequence[int] = DEFAULT_ATTENTION_HIDDEN,
        memory_reg: float = DEFAULT_MEMORY_REG,
        use_behavior: bool = True,
        **base_kwargs: Any,
    ) -> None:
        for name, value in (("hidden_size", hidden_size), ("n_layers", n_layers), ("hops", hops)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"hpmn {name} must be a positive integer, got {value!r}")
        if not memory_reg >= 0:
            raise ValueError(f"hpmn memory_reg must be >= 0 (0 turns the regulariser off), got {memory_reg!r}")
        super().__init__(observation_space, **base_kwargs)
        d, h = self.embedding_dim, int(hidden_size)
        self.history_length = int(observation_space["history_items"].shape[0])
        self.hidden_size = h
        # layer j's period is 2^(j-1): it must fit twice into the window to be a recurrence at all
        self.n_layers = max(1, min(int(n_layers), self.history_length.bit_length() - 1))
        self.hops = int(hops)
        self.memory_reg = float(memory_reg)
        self.use_behavior = bool(use_behavior)
        self.behavior_embedding = nn.Embedding(N_BEHAVIORS, d, padding_idx=int(Behavior.PAD)) if use_behavior else None
        if self.behavior_embedding is not None:
            nn.init.normal_(self.behavior_embedding.weight, std=EMBEDDING_INIT_STD)
            with torch.no_grad():
                self.behavior_embedding.weight[int(Behavior.PAD)].zero_()
        self.layers = nn.ModuleList(
            nn.GRU(d if j == 0 else h, h, batch_first=True) for j in range(self.n_layers)
        )  # GRU_1 .. GRU_J
        self.query = nn.Linear(d, h)  # W_q
        self.hop_map = nn.Linear(h, h, bias=False)  # H
        self.attention = nn.ModuleList(_attention_mlp(4 * h, attention_hidden) for _ in range(self.hops))
        self._pending_regulariser: torch.Tensor | None = None
        self._set_features_dim(h + d)

    # -- writing ---------------------------------------------------------------------------
    def _behaviours(self, observations: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
        """Behaviour embeddings ``x`` ``[B, N, d]``, valid slots first in their order, and the lengths ``[B]``."""
        ids, mask = self._item_sequence(observations, "history")  # [B, N], [B, N]
        order = valid_order(mask, side="left")  # [B, N]
        ids, mask = ids.gather(1, order), mask.gather(1, order)
        x = self.embed_items(ids)  # [B, N, d]
        if self.behavior_embedding is not None:
            types = observations["history_behavior"].long().gather(1, order).masked_fill(~mask, int(Behavior.PAD))
            x = x + self.behavior_embedding(types.clamp(0, N_BEHAVIORS - 1))
        return x, mask.sum(dim=1)

    def _write(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The memory ``[B, J, H]`` of left-aligned behaviours ``x`` ``[B, N, d]`` with ``lengths`` ``[B]``."""
        slots = []
        inputs, count = x, lengths  # layer j reads layer j-1's states at the end of each block of 2
        for j, gru in enumerate(self.layers):
            if j > 0:
                inputs = outputs[:, 1::2]  # [B, N_j, H]  m^(j-1) at i = 2, 4, 6, ... of layer j-1
                count = count // 2  # updates of layer j: floor(L / 2^(j-1))
            if inputs.size(1) == 0:  # a window too short for this layer's period: never written
                outputs = inputs.new_zeros(inputs.size(0), 0, self.hidden_size)
                slots.append(inputs.new_zeros(inputs.size(0), self.hidden_size))
                continue
            outputs = _run_valid(gru, inputs, count)  # [B, <= N_j, H]; causal: a row's slots after `count` never reach it
            slots.append(gather_last_valid(outputs, count))  # [B, H]  m^j_L, 0 if never updated
        return torch.stack(slots, dim=1)  # [B, J, H]

    def memory(self, observations: TensorDict) -> torch.Tensor:
        """The memory slots ``M`` ``[B, J, H]`` (layer ``j``'s state after its last update)."""
        x, lengths = self._behaviours(observations)
        return self._remember(self._write(x, lengths))

    def _remember(self, memory: torch.Tensor) -> torch.Tensor:
        # the regulariser of the latest training pass waits for the supervised loss to collect it
        if self.training and torch.is_grad_enabled() and self.memory_reg > 0:
            self._pending_regulariser = self.memory_reg * covariance_regulariser(memory).sum()
        return memory

    def pop_auxiliary_loss(self) -> torch.Tensor | None:
        """``λ Σ_batch ||C - diag(C)||_F`` of the latest forward pass in training mode, then forget it.

        Supervised pretraining adds it to the task's loss (:mod:`recgym.pretrain.tasks`); the RL
        agents' losses do not use it.
        """
        pending, self._pending_regulariser = self._pending_regulariser, None
        return pending

    # -- reading ---------------------------------------------------------------------------
    def _read(self, queries: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q_K`` ``[B, M, H]`` and the read weights ``[B, M, K, J]`` of queries ``v`` ``[B, M, d]``."""
        q = self.query(queries)  # [B, M, H]  q_0
        m = memory.unsqueeze(1).expand(-1, q.size(1), -1, -1)  # [B, M, J, H]
        weights = []
        for mlp in self.attention:
            qj = q.unsqueeze(2).expand_as(m)  # [B, M, J, H]
            scores = mlp(torch.cat([qj, m, qj - m, qj * m], dim=-1)).squeeze(-1)  # [B, M, J]
            w = torch.softmax(scores, dim=-1)  # over the J slots
            q = self.hop_map(q) + (w.unsqueeze(-1) * m).sum(dim=2)  # [B, M, H]  q_(k+1)
            weights.append(w)
        return q, torch.stack(weights, dim=2)  # [B, M, H], [B, M, K, J]

    def _default_query(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return gather_last_valid(x, lengths)  # [B, d]  the newest behaviour x_L (0 if none)

    def read_weights(self, observations: TensorDict, items: torch.Tensor | None = None) -> torch.Tensor:
        """Read weights ``w`` over the slots: ``[B, K, J]`` for the default query, ``[B, M, K, J]`` for ``items`` ``[B, M]``."""
        x, lengths = self._behaviours(observations)
        memory = self._write(x, lengths)
        if items is None:
            return self._read(self._default_query(x, lengths).unsqueeze(1), memory)[1].squeeze(1)
        return self._read(self.embed_items(items), memory)[1]

    def target_state(self, observations: TensorDict, items: torch.Tensor) -> torch.Tensor:
        """States ``s(v) = [q_K ; v]`` ``[B, M, H + d]`` with the candidate items ``items`` ``[B, M]`` as queries."""
        memory = self.memory(observations)  # [B, J, H], written once for every candidate
        states = []
        for part in torch.split(items, TARGET_CHUNK, dim=1):
            v = self.embed_items(part)  # [B, m, d]
            states.append(torch.cat([self._read(v, memory)[0], v], dim=-1))  # [B, m, H + d]
        return torch.cat(states, dim=1)

    def forward(self, observations: TensorDict) -> torch.Tensor:
        x, lengths = self._behaviours(observations)  # [B, N, d], [B]
        memory = self._remember(self._write(x, lengths))  # [B, J, H]
        v = self._default_query(x, lengths).unsqueeze(1)  # [B, 1, d]
        return torch.cat([self._read(v, memory)[0], v], dim=-1).squeeze(1)  # [B, H + d]


def covariance_regulariser(memory: torch.Tensor) -> torch.Tensor:
    """``||C - diag(C)||_F`` per row ``[B]`` of memories ``[B, J, H]``, ``C = M̃ M̃^T / H``.

    ``M̃`` is each slot minus its mean over the hidden units (the official code's
    centring); the off-diagonal entries measure how alike two slots are.
    """
    centred = memory - memory.mean(dim=-1, keepdim=True)  # [B, J, H]
    cov = centred @ centred.transpose(1, 2) / memory.size(-1)  # [B, J, J]
    off = cov - torch.diag_embed(torch.diagonal(cov, dim1=1, dim2=2))
    # the floor keeps the gradient finite where C is diagonal (one slot, an empty memory): d sqrt(x)/dx at 0
    return off.pow(2).sum(dim=(1, 2)).clamp_min(torch.finfo(memory.dtype).tiny).sqrt()


def _run_valid(gru: nn.GRU, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``gru`` over ``inputs`` ``[B, T, ·]`` up to the longest row's ``lengths`` -> ``[B, T', H]``, ``T' = max(lengths)``.

    The GRU is causal, so a row's states up to its own length ignore the steps after it; the
    steps after the batch's longest row are not run at all (a packed sequence would skip every
    padded step, but its backward pass is several times slower on a CPU).
    """
    longest = int(lengths.max()) if lengths.numel() else 0
    outputs, _ = gru(inputs[:, : max(longest, 1)])
    return outputs


def _attention_mlp(width: int, hidden: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, 1, bias=False))  # a bias shifts every slot's score alike: it cancels in the softmax
    return nn.Sequential(*layers)
