"""MB-STR state encoder (Yuan et al., SIGIR 2022).

E. Yuan, W. Guo, Z. He, H. Guo, C. Liu, R. Tang. *Multi-Behavior Sequential
Transformer Recommender*. SIGIR 2022, Sec. 3 (what the official code does is
summarised in ``shared/REFERENCES.md``).

The history is a sequence of items ``v_i`` each with a behaviour type ``b_i``
(``history_behavior``: skip, click, purchase). Item embeddings ``h^0_i = e_{v_i}``
(no position embedding) go through ``L`` post-LayerNorm layers of

* **multi-behaviour self-attention** (Sec. 3.2): behaviour-specific projections
  ``q_i = h_i W^Q_{b_i}``, ``k_j = h_j W^K_{b_j}``, ``v_j = h_j W^V_{b_j}``; for the
  behaviour pair ``c = (b_i, b_j)`` an attention matrix and an output matrix
  mixed from ``n`` shared bases, and a bucketed relative-position bias::

      W^att_c = Σ_k softmax_k(α^att_c) W^att_k,    W^out_c = Σ_k softmax_k(α^out_c) W^out_k
      A_ij    = q_i W^att_c k_j^T / sqrt(d_h) + P_c[bucket(j - i)]
      z_i     = Σ_j softmax_j(A_ij) v_j W^out_c            (bidirectional: every valid j)
      h'_i    = LayerNorm(h_i + Dropout(z_i))

  (per head; the heads are concatenated);
* **behaviour-specific feed-forward** (Sec. 3.2)::

      h''_i = LayerNorm(h'_i + Dropout(FFN_{b_i}(h'_i))),   FFN_b(x) = GELU(x W1_b + c1_b) W2_b + c2_b

and a **behaviour-aware prediction head** (Sec. 3.3), the customised gate
control of PLE (Tang et al., RecSys 2020): ``S`` shared experts and ``P``
experts per behaviour, each a linear map, mixed by a gate per behaviour::

      g_b(x) = softmax(x W^gate_b),   f_b(x) = Σ_e g_b(x)_e E_e(x)   (shared experts and b's own)
      y = x + LayerNorm(f_b(x)),       P(v | y) = softmax_v(y · e_v)

Training is cloze-style masked item prediction (Sec. 3.4): items at random
positions (probability 0.2) are replaced by a learned ``[MASK]`` embedding,
keeping their behaviour type, and predicted through the head of that
behaviour (:meth:`MBSTREncoder.masked_item_states`,
:class:`recgym.pretrain.tasks.ClozeTask`).

**The state** (size ``d``) is the prediction for the target behaviour (default
purchase) of the next item: a ``[MASK]`` of type ``target_behavior`` is appended
after the most recent interaction, the layers read it together with the
history, and the head of the target behaviour maps its output to ``y``; an
agent (or :class:`~recgym.pretrain.tasks.ClozeTask`) scores item ``v`` by
``y · e_v``.

With one behaviour type (``n_behaviors=1``) and the behaviour-specific parts
off (``position_bias=False``, ``behavior_head=False``) the model is a
bidirectional post-LN transformer without positions; with ``n_behaviors=1`` the
behaviour-specific projections and feed-forward layers are the shared ones
(one type has nothing to specialise; the official code does the same).

Shapes in comments: ``B`` batch, ``L`` sequence length (``N``, or ``N + 1``
with the appended query), ``d`` model size, ``H`` heads, ``d_h = d / H``,
``n`` behaviour types, ``M`` masked positions.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from simulators.base import Behavior
from state_encoders.base import EMBEDDING_INIT_STD, StateEncoder, TensorDict, masked_softmax, valid_order
from state_encoders.layers import MaskedSelfAttention
from state_encoders.registry import register

#: The paper's settings (official code): 2 layers, 2 heads; dropout 0.2 (its configuration files)
DEFAULT_N_BLOCKS = 2
DEFAULT_N_HEADS = 2
DEFAULT_DROPOUT = 0.2
#: relative-position buckets and the distance from which they all share the last one (official: 32, 40)
DEFAULT_N_BUCKETS = 32
DEFAULT_MAX_DISTANCE = 40
#: the prediction head's experts (official: 3 shared, 1 per behaviour)
DEFAULT_SHARED_EXPERTS = 3
DEFAULT_SPECIFIC_EXPERTS = 1
#: width of the feed-forward layers relative to d (BERT4Rec's, on which MB-STR builds)
FEED_FORWARD_FACTOR = 4
#: the behaviour types MB-STR tells apart: SKIP, CLICK, PURCHASE (simulators.base.Behavior codes 1..3)
N_TYPES = len(Behavior) - 1
#: standard deviation of the small random parts of the initialisation (official: initializer_range 0.02)
INIT_STD = 0.02
_BEHAVIOR_NAMES = {b.name.lower(): int(b) for b in Behavior if b != Behavior.PAD}


def relative_position_buckets(length: int, n_buckets: int, max_distance: int,
                              device: torch.device | None = None) -> torch.Tensor:
    """``[L, L]`` bucket of the relative position ``j - i`` of key ``j`` to query ``i`` (T5's bidirectional rule).

    Half of the buckets are for keys before the query, half for keys after
    it; within a half, distances below a quarter of ``n_buckets`` get a
    bucket each, larger ones logarithmically wider buckets up to
    ``max_distance``, beyond which they share the last one.
    """
    position = torch.arange(length, device=device)
    distance = position[:, None] - position[None, :]  # [L, L] i - j: > 0 for keys before the query
    half = n_buckets // 2
    bucket = (distance < 0).long() * half
    distance = distance.abs()
    exact = half // 2
    # clamp_min(1): log(0) is never selected below, but must not be -inf either
    log_ratio = torch.log(distance.clamp_min(1).float() / exact) / math.log(max_distance / exact)
    large = (exact + (log_ratio * (half - exact)).long()).clamp_max(half - 1)
    return bucket + torch.where(distance < exact, distance, large)


def _linear_init(weight: torch.Tensor, fan_in: int) -> None:
    """PyTorch's ``nn.Linear`` weight initialisation, for weights stacked per behaviour."""
    bound = 1.0 / math.sqrt(fan_in)
    nn.init.uniform_(weight, -bound, bound)


class PairPositionBias(nn.Module):
    """``P_c[bucket(j - i)]``: a learned bias per behaviour pair, bucket and head.

    :param n_pairs: number of behaviour pairs ``n^2``.
    :param n_buckets: relative-position buckets.
    :param n_heads: attention heads.
    """

    def __init__(self, n_pairs: int, n_buckets: int, n_heads: int) -> None:
        super().__init__()
        self.n_buckets = n_buckets
        self.table = nn.Parameter(torch.empty(n_pairs, n_buckets, n_heads))  # [n^2, buckets, H]
        nn.init.normal_(self.table, std=INIT_STD)

    def forward(self, pairs: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
        """Bias ``[B, H, L, L]`` for behaviour pairs ``[B, L, L]`` and buckets ``[L, L]``."""
        index = pairs * self.n_buckets + buckets  # [B, L, L]
        return self.table.flatten(0, 1)[index].permute(0, 3, 1, 2)  # [B, H, L, L]


class BehaviorAwareAttention(nn.Module):
    """Multi-behaviour multi-head self-attention (module docstring), without residual and norm.

    :param dim: model size ``d``.
    :param n_heads: heads ``H`` (``d`` must be divisible by it).
    :param n_types: behaviour types ``n``.
    :param dropout: dropout on the attention weights.
    """

    def __init__(self, dim: int, n_heads: int, n_types: int, dropout: float) -> None:
        super().__init__()
        if n_heads < 1 or dim % n_heads != 0:
            raise ValueError(f"the model size {dim} must be divisible by n_heads={n_heads}")
        self.n_heads, self.head_dim, self.n_types = n_heads, dim // n_heads, n_types
        n, h, dh = n_types, n_heads, self.head_dim
        # W^Q_b, W^K_b, W^V_b stacked per behaviour (no bias, as the official code)
        self.query = nn.Parameter(torch.empty(n, dim, dim))
        self.key = nn.Parameter(torch.empty(n, dim, dim))
        self.value = nn.Parameter(torch.empty(n, dim, dim))
        for weight in (self.query, self.key, self.value):
            _linear_init(weight, dim)
        # n shared bases per head for W^att and W^out, and each pair's mixing logits α_c.
        # The bases start at the identity (plus noise), so an untrained layer is plain attention.
        eye = torch.eye(dh).expand(n, h, dh, dh)
        self.attention_bases = nn.Parameter(eye + INIT_STD * torch.randn(n, h, dh, dh))  # [n, H, d_h, d_h]
        self.output_bases = nn.Parameter(eye + INIT_STD * torch.randn(n, h, dh, dh))
        self.attention_mix = nn.Parameter(INIT_STD * torch.randn(n * n, n, h))  # [n^2, n, H]
        self.output_mix = nn.Parameter(INIT_STD * torch.randn(n * n, n, h))
        self.dropout = nn.Dropout(dropout)

    def pair_matrices(self, bases: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        """``W_c = Σ_k softmax_k(α_c) W_k`` ``[n (query type), n (key type), H, d_h, d_h]``."""
        n, h, dh = self.n_types, self.n_heads, self.head_dim
        mixed = torch.einsum("ckh,khxy->chxy", torch.softmax(mix, dim=1), bases)  # [n^2, H, d_h, d_h]
        return mixed.view(n, n, h, dh, dh)

    def _project(self, x: torch.Tensor, weight: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """``x_i W_{b_i}`` split into heads ``[B, H, L, d_h]`` (all n maps computed, then picked: d is small)."""
        b, length, d = x.shape
        every = torch.einsum("bld,nde->blne", x, weight)  # [B, L, n, d]
        picked = every.gather(2, types[:, :, None, None].expand(b, length, 1, d)).squeeze(2)  # [B, L, d]
        return picked.view(b, length, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, types: torch.Tensor, attention_mask: torch.Tensor,
                score_bias: torch.Tensor | None = None) -> torch.Tensor:
        """Attend ``x`` ``[B, L, d]`` with behaviour types ``[B, L]`` (0-based) -> ``[B, L, d]``.

        :param attention_mask: ``[B, L, L]`` bool, query ``i`` may read key ``j``.
        :param score_bias: optional ``[B, H, L, L]`` added to the scaled scores.
        """
        b, length, d = x.shape
        n, h, dh = self.n_types, self.n_heads, self.head_dim
        q, k, v = (self._project(x, w, types) for w in (self.query, self.key, self.value))  # [B, H, L, d_h]
        query_type = types[:, None, :, None, None].expand(b, h, length, 1, dh)  # [B, H, L, 1, d_h]
        key_is = [(types == t)[:, None, None, :] for t in range(n)]  # n x [B, 1, 1, L]

        # q_i W^att_(b_i, t), for each key type t: [B, H, L, n, d_h]
        att = self.pair_matrices(self.attention_bases, self.attention_mix)
        q_w = torch.einsum("bhid,athde->bhiate", q, att)  # [B, H, L, n (query type), n (key type), d_h]
        q_w = q_w.gather(3, query_type.unsqueeze(-2).expand(b, h, length, 1, n, dh)).squeeze(3)
        # A_ij = (q_i W^att_(b_i, b_j)) k_j^T: one product per key type, kept where b_j is that type
        scores = sum((q_w[:, :, :, t] @ k.transpose(-1, -2)) * key_is[t] for t in range(n))  # [B, H, L, L]
        scores = scores / math.sqrt(dh)
        if score_bias is not None:
            scores = scores + score_bias
        weights = self.dropout(masked_softmax(scores, attention_mask.unsqueeze(1)))  # [B, H, L, L]

        # z_i = Σ_t (Σ_{j: b_j = t} p_ij v_j) W^out_(b_i, t)
        out_w = self.pair_matrices(self.output_bases, self.output_mix)
        z = torch.zeros_like(q)
        for t in range(n):
            context = (weights * key_is[t]) @ v  # [B, H, L, d_h]
            every = torch.einsum("bhid,ahde->bhiae", context, out_w[:, t])  # [B, H, L, n (query type), d_h]
            z = z + every.gather(3, query_type).squeeze(3)
        return z.transpose(1, 2).reshape(b, length, d)  # [B, L, d]


class FeedForward(nn.Sequential):
    """``GELU(x W1 + c1) W2 + c2`` with dropout after the activation (inner size ``inner``)."""

    def __init__(self, dim: int, inner: int, dropout: float) -> None:
        super().__init__(nn.Linear(dim, inner), nn.GELU(), nn.Dropout(dropout), nn.Linear(inner, dim))


class BehaviorFeedForward(nn.Module):
    """``FFN_{b_i}(x_i)``: one :class:`FeedForward` per behaviour type, each applied to its own positions.

    :param dim: model size.
    :param inner: inner width.
    :param n_types: behaviour types.
    :param dropout: dropout after the activation.
    """

    def __init__(self, dim: int, inner: int, n_types: int, dropout: float) -> None:
        super().__init__()
        self.experts = nn.ModuleList(FeedForward(dim, inner, dropout) for _ in range(n_types))

    def forward(self, x: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """``[B, L, d]`` with types ``[B, L]`` -> ``[B, L, d]``."""
        flat, flat_types = x.reshape(-1, x.shape[-1]), types.reshape(-1)  # [B L, d], [B L]
        out = torch.zeros_like(flat)
        for t, expert in enumerate(self.experts):
            rows = torch.nonzero(flat_types == t).squeeze(1)
            out = out.index_copy(0, rows, expert(flat[rows]))
        return out.view_as(x)


class MBSTRLayer(nn.Module):
    """One post-LN layer: (behaviour-aware) attention, then (behaviour-specific) feed-forward.

    :param dim: model size.
    :param n_heads: attention heads.
    :param n_types: behaviour types.
    :param dropout: dropout rate.
    :param behavior_attention: behaviour-specific projections and pair matrices (else shared ones).
    :param behavior_feed_forward: one feed-forward layer per behaviour (else one shared).
    :param n_pairs: behaviour pairs of the position bias (0: no bias).
    :param n_buckets: relative-position buckets.
    """

    def __init__(self, dim: int, n_heads: int, n_types: int, dropout: float, behavior_attention: bool,
                 behavior_feed_forward: bool, n_pairs: int, n_buckets: int) -> None:
        super().__init__()
        inner = FEED_FORWARD_FACTOR * dim
        self.attention: nn.Module = (BehaviorAwareAttention(dim, n_heads, n_types, dropout) if behavior_attention
                                     else MaskedSelfAttention(dim, n_heads, dropout))
        self.feed_forward: nn.Module = (BehaviorFeedForward(dim, inner, n_types, dropout) if behavior_feed_forward
                                        else FeedForward(dim, inner, dropout))
        self.position_bias = PairPositionBias(n_pairs, n_buckets, n_heads) if n_pairs else None
        self.attention_norm = nn.LayerNorm(dim)
        self.feed_forward_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, types: torch.Tensor, attention_mask: torch.Tensor, pairs: torch.Tensor,
                buckets: torch.Tensor) -> torch.Tensor:
        """``[B, L, d]`` -> ``[B, L, d]``; ``pairs`` ``[B, L, L]`` pair index, ``buckets`` ``[L, L]``."""
        bias = self.position_bias(pairs, buckets) if self.position_bias is not None else None  # [B, H, L, L]
        if isinstance(self.attention, BehaviorAwareAttention):
            z = self.attention(x, types, attention_mask, score_bias=bias)
        else:
            z = self.attention(x, attention_mask, score_bias=bias)
        x = self.attention_norm(x + self.dropout(z))
        f = self.feed_forward(x, types) if isinstance(self.feed_forward, BehaviorFeedForward) else self.feed_forward(x)
        return self.feed_forward_norm(x + self.dropout(f))


class BehaviorExpertHead(nn.Module):
    """``y = x + LayerNorm(Σ_e g_b(x)_e E_e(x))``: shared and behaviour-specific linear experts, a gate per behaviour.

    :param dim: model size.
    :param n_types: behaviour types.
    :param n_shared: shared experts ``S``.
    :param n_specific: experts per behaviour ``P``.
    """

    def __init__(self, dim: int, n_types: int, n_shared: int, n_specific: int) -> None:
        super().__init__()
        if n_shared < 0 or n_specific < 0 or n_shared + n_specific < 1:
            raise ValueError(f"the head needs at least one expert, got {n_shared} shared and {n_specific} specific")
        self.shared_weight = nn.Parameter(torch.empty(n_shared, dim, dim))  # [S, d, d]
        self.shared_bias = nn.Parameter(torch.zeros(n_shared, dim))
        self.specific_weight = nn.Parameter(torch.empty(n_types, n_specific, dim, dim))  # [n, P, d, d]
        self.specific_bias = nn.Parameter(torch.zeros(n_types, n_specific, dim))
        self.gates = nn.Parameter(INIT_STD * torch.randn(n_types, dim, n_shared + n_specific))  # [n, d, S + P]
        _linear_init(self.shared_weight, dim)
        _linear_init(self.specific_weight, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """``[M, d]`` outputs with the behaviour type ``[M]`` (0-based) each is predicted for -> ``[M, d]``."""
        m, d = x.shape
        shared = torch.einsum("md,sde->mse", x, self.shared_weight) + self.shared_bias  # [M, S, d]
        every = torch.einsum("md,npde->mnpe", x, self.specific_weight) + self.specific_bias  # [M, n, P, d]
        specific = every[torch.arange(m, device=x.device), types]  # [M, P, d]
        experts = torch.cat([shared, specific], dim=1)  # [M, S + P, d]
        gate = torch.softmax(torch.einsum("md,nde->mne", x, self.gates)[torch.arange(m, device=x.device), types],
                             dim=-1)  # [M, S + P]
        return x + self.norm((gate.unsqueeze(-1) * experts).sum(dim=1))


def behavior_code(value: int | str) -> int:
    """A behaviour type as its :class:`~simulators.base.Behavior` code: ``"purchase"`` or ``3`` -> 3."""
    if isinstance(value, str):
        try:
            return _BEHAVIOR_NAMES[value.lower()]
        except KeyError:
            raise ValueError(f"unknown behaviour {value!r}; choose one of {', '.join(_BEHAVIOR_NAMES)}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value not in _BEHAVIOR_NAMES.values():
        raise ValueError(f"a behaviour must be one of {_BEHAVIOR_NAMES} (name or code), got {value!r}")
    return int(value)


@register("mbstr")
class MBSTREncoder(StateEncoder):
    """MB-STR: state = the target-behaviour prediction at a ``[MASK]`` appended to the history; ``features_dim = d``.

    Reads ``history_items`` with their ``history_behavior`` (the
    :class:`~simulators.base.Behavior` code the environment reports: SKIP 1,
    CLICK 2, PURCHASE 3). The valid slots are moved to the end, keeping their
    order, so relative positions do not depend on the padding; nothing at a
    padded slot matters, and an empty history gives the head's output for the
    ``[MASK]`` alone (finite).

    :param observation_space: a recgym observation space.
    :param n_blocks: layers ``L``.
    :param n_heads: attention heads (``d`` must be divisible by it).
    :param dropout: dropout on the input embeddings, the attention weights, inside the
        feed-forward layers and on each sub-layer's output.
    :param n_behaviors: 3 (skip, click, purchase, read from ``history_behavior``) or 1 (every
        interaction one type, ``history_behavior`` ignored: the single-behaviour ablation).
    :param target_behavior: the behaviour the state predicts (name or code; default purchase);
        ignored with ``n_behaviors=1``.
    :param behavior_attention: behaviour-specific Q/K/V and pair matrices (only with 3 types).
    :param behavior_feed_forward: one feed-forward layer per behaviour (only with 3 types).
    :param position_bias: the bucketed relative-position bias per behaviour pair (one shared
        table with one type); off: no position information at all.
    :param behavior_head: the expert-and-gate head; off: the state is the last layer's output.
    :param n_buckets: relative-position buckets (official 32).
    :param max_distance: distance from which positions share the last bucket (official 40).
    :param n_shared_experts: shared experts of the head (official 3).
    :param n_specific_experts: experts per behaviour in the head (official 1).
    :param base_kwargs: the common arguments of :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("history_items", "history_mask", "history_behavior")
    uses_user = False

    def __init__(
        self,
        observation_space: spaces.Dict,
        n_blocks: int = DEFAULT_N_BLOCKS,
        n_heads: int = DEFAULT_N_HEADS,
        dropout: float = DEFAULT_DROPOUT,
        n_behaviors: int = N_TYPES,
        target_behavior: int | str = Behavior.PURCHASE,
        behavior_attention: bool = True,
        behavior_feed_forward: bool = True,
        position_bias: bool = True,
        behavior_head: bool = True,
        n_buckets: int = DEFAULT_N_BUCKETS,
        max_distance: int = DEFAULT_MAX_DISTANCE,
        n_shared_experts: int = DEFAULT_SHARED_EXPERTS,
        n_specific_experts: int = DEFAULT_SPECIFIC_EXPERTS,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(observation_space, **base_kwargs)
        if n_behaviors not in (1, N_TYPES):
            raise ValueError(
                f"n_behaviors must be {N_TYPES} (skip, click, purchase: the codes of simulators.base.Behavior) "
                f"or 1 (every interaction one type: the single-behaviour ablation), got {n_behaviors!r}"
            )
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 1:
            raise ValueError(f"n_blocks must be a positive integer, got {n_blocks!r}")
        if n_buckets < 4 or n_buckets % 4 or max_distance <= n_buckets // 4:
            raise ValueError(
                f"n_buckets must be a multiple of 4 (>= 4) and max_distance larger than n_buckets / 4, "
                f"got n_buckets={n_buckets}, max_distance={max_distance}"
            )
        d = self.embedding_dim
        self.n_behaviors = int(n_behaviors)
        self.target_behavior = behavior_code(target_behavior)
        # 0-based type of the appended query: the target's, or the one type
        self.target_type = self.target_behavior - 1 if self.n_behaviors > 1 else 0
        self.n_buckets, self.max_distance = int(n_buckets), int(max_distance)
        specific = self.n_behaviors > 1
        n_pairs = self.n_behaviors ** 2 if position_bias else 0

        self.mask_embedding = nn.Parameter(EMBEDDING_INIT_STD * torch.randn(d))  # the [MASK] token
        self.input_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            MBSTRLayer(d, n_heads, self.n_behaviors, dropout, behavior_attention and specific,
                       behavior_feed_forward and specific, n_pairs, self.n_buckets)
            for _ in range(n_blocks)
        )
        self.head = (BehaviorExpertHead(d, self.n_behaviors, n_shared_experts, n_specific_experts)
                     if behavior_head else None)
        self._set_features_dim(d)

    # -- inputs ---------------------------------------------------------------------------
    def _history(self, observations: TensorDict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(ids, types, mask, order)`` ``[B, N]`` each: valid slots moved to the end, oldest first.

        ``types`` is the 0-based behaviour type (0 at padding); ``order`` the
        permutation applied (:func:`~state_encoders.base.valid_order`).
        """
        ids, mask = self._item_sequence(observations, "history")  # [B, N]
        order = valid_order(mask, side="right")  # [B, N]
        ids, mask = ids.gather(1, order), mask.gather(1, order)
        if self.n_behaviors == 1:
            return ids, torch.zeros_like(ids), mask, order
        codes = observations["history_behavior"].long().gather(1, order)  # [B, N]
        bad = mask & ((codes < 1) | (codes > self.n_behaviors))
        if bool(bad.any()):
            raise ValueError(
                f"history_behavior holds {sorted(set(codes[bad].tolist()))[:5]} at valid slots; MB-STR needs a "
                "Behavior code there (1 skip, 2 click, 3 purchase): check the observation, or use n_behaviors=1"
            )
        return ids, (codes - 1).clamp_min(0) * mask, mask, order

    def _encode(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """The last layer's outputs ``[B, L, d]`` (0 at padding); ``masked`` slots read the ``[MASK]`` embedding."""
        x = self.embed_items(ids)  # [B, L, d]
        x = torch.where(masked.unsqueeze(-1), self.mask_embedding.expand_as(x), x)
        keep = mask.to(x.dtype).unsqueeze(-1)  # [B, L, 1]
        x = self.input_dropout(x) * keep
        attention_mask = mask.unsqueeze(1) & mask.unsqueeze(2)  # [B, L, L] bidirectional, valid pairs only
        pairs = types.unsqueeze(2) * self.n_behaviors + types.unsqueeze(1)  # [B, L, L] index of (b_i, b_j)
        buckets = relative_position_buckets(ids.shape[1], self.n_buckets, self.max_distance, ids.device)  # [L, L]
        for layer in self.layers:
            x = layer(x, types, attention_mask, pairs, buckets) * keep
        return x

    def _predict(self, x: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """The head's ``y`` ``[M, d]`` for outputs ``[M, d]`` predicted as behaviour types ``[M]``."""
        return x if self.head is None else self.head(x, types)

    def cloze_only_parameter_names(self) -> list[str]:
        """Parameters the state never reads, by construction; only the cloze objective trains them.

        The state is the output at the appended ``[MASK]`` (type: the target
        behaviour), and a feed-forward layer acts position by position, so the
        last layer's feed-forward layers of the other behaviours never reach it.
        """
        last = self.layers[-1].feed_forward
        if not isinstance(last, BehaviorFeedForward):
            return []
        prefix = f"layers.{len(self.layers) - 1}.feed_forward.experts"
        return [f"{prefix}.{t}.{name}" for t, expert in enumerate(last.experts) if t != self.target_type
                for name, _ in expert.named_parameters()]

    # -- the state --------------------------------------------------------------------------
    def forward(self, observations: TensorDict) -> torch.Tensor:
        ids, types, mask, _ = self._history(observations)  # [B, N]
        b = ids.shape[0]
        query = torch.ones(b, 1, dtype=torch.bool, device=ids.device)
        ids = torch.cat([ids, torch.full_like(ids[:, :1], self.pad_item)], dim=1)  # [B, N + 1]
        types = torch.cat([types, torch.full_like(types[:, :1], self.target_type)], dim=1)
        masked = torch.cat([torch.zeros_like(mask), query], dim=1)
        out = self._encode(ids, types, torch.cat([mask, query], dim=1), masked)[:, -1]  # [B, d]
        return self._predict(out, types[:, -1])  # [B, d]

    def masked_item_states(self, observations: TensorDict, masked: torch.Tensor) -> torch.Tensor:
        """Predictions ``y`` ``[M, d]`` at the ``masked`` history slots (cloze training, Sec. 3.4).

        The items at ``masked`` slots ``[B, N]`` (bool, in the observation's slot
        order; padded slots are ignored) are replaced by ``[MASK]``, keeping
        their behaviour type, and each is predicted through the head of its
        behaviour. Rows follow ``observations["history_items"][masked & valid]``.
        """
        ids, types, mask, order = self._history(observations)  # [B, N]
        valid_masked = masked.bool().gather(1, order) & mask  # [B, N] aligned
        out = self._encode(ids, types, mask, valid_masked)  # [B, N, d] aligned
        # back to the observation's slot order, so rows line up with history_items[masked]
        restored = torch.zeros_like(out).scatter(1, order.unsqueeze(-1).expand_as(out), out)
        restored_types = torch.zeros_like(types).scatter(1, order, types)
        restored_masked = torch.zeros_like(valid_masked).scatter(1, order, valid_masked)
        return self._predict(restored[restored_masked], restored_types[restored_masked])  # [M, d]
