"""UBR4CTR state encoder (Qin et al., SIGIR 2020).

J. Qin, W. Zhang, X. Wu, J. Jin, Y. Fang, Y. Yu. *User Behavior Retrieval
for Click-Through Rate Prediction*. SIGIR 2020 (arXiv:2005.14171), the
framework's two modules: user behaviour retrieval and prediction. Section
and equation numbers are not quoted (the stored copies we could read do not
show them); the equations follow the paper's description and the official
code (github.com/qinjr/UBR4CTR, ``code/rec.py`` ``RecAtt``,
``code/elastic_client.py``).

**Retrieval.** The target item ``A`` is turned into a query of features: its
item id, its content features (``item_features``: the genres, and title
words where given) and the time bucket "now". Each past behaviour ``j``
(item ``i_j`` at time ``t_j``) is a record of the same fields, and its
relevance is the feature overlap

    o_j = [i_j = A] + |F(i_j) ∩ F(A)| + [bucket(t_j) = bucket(now)]

with ``F(i)`` the features item ``i`` has (``item_features[i] > 0``) and
``bucket(t_j) = bucket(now)`` when the behaviour is at most ``time_bucket``
steps old. The ``k`` behaviours of highest overlap are retrieved (ties go
to the more recent one). The official code indexes the records in
Elasticsearch and scores them with BM25; an in-memory overlap count is the
same search without term weighting.

**Prediction.** The retrieved behaviours ``b_j = e_item(i_j) + x_(i_j) W_c +
e_type(type_j)`` are pooled by attention with the target as query (the
official ``RecAtt``: a projected query, dot-product scores, masked softmax):

    t = e_item(A) + x_A W_c
    α_j = softmax_j(<W_q t + c_q, b_j>)       over the retrieved behaviours
    r = Σ_j α_j b_j
    s(A) = [r ; t]                             (size 2d)
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from simulators.base import N_BEHAVIORS, Behavior
from state_encoders.base import EMBEDDING_INIT_STD, StateEncoder, TensorDict, masked_softmax
from state_encoders.features import feature_table
from state_encoders.registry import register

Retrieval = Literal["overlap", "recent"]

#: behaviours retrieved per target (official code: ``b_num = 20`` on Tmall, Taobao and Alipay).
DEFAULT_K = 20
#: width of a time bucket in environment steps: the behaviours this recent share the target's bucket (our choice).
DEFAULT_TIME_BUCKET = 10.0
#: the shared-feature counts of every item pair are tabulated up to this many items (+ padding): 32 MB of int16.
MAX_SHARED_TABLE = 4096
#: candidates retrieved per chunk in :meth:`UBREncoder.target_state` (bounds the ``[B, M, N]`` overlaps).
TARGET_CHUNK = 256


class Retrieved(NamedTuple):
    """What the retrieval returned for each (observation, target) pair.

    :param positions: ``[B, M, k]`` slots of the observation's history, most relevant first.
    :param mask: ``[B, M, k]`` bool, False where the history had fewer than ``k`` valid behaviours.
    :param overlap: ``[B, M, k]`` the feature overlap ``o_j`` of each retrieved behaviour (0 where masked),
        whichever rule retrieved it.
    """

    positions: torch.Tensor
    mask: torch.Tensor
    overlap: torch.Tensor


@register("ubr")
class UBREncoder(StateEncoder):
    """UBR4CTR: the ``k`` past behaviours that share most features with the target, attention-pooled; ``features_dim = 2d``.

    Reads ``history_items`` (every response) with ``history_time`` and
    ``history_behavior``; the observation's history is the search index (for
    long histories the environment's ``history_length`` is its size). Padded
    slots are never retrieved, so nothing written there changes the state.

    * :meth:`retrieve`: the retrieved slots for candidate items ``[B, M]``;
    * :meth:`target_state` ``[B, M, 2d]``: ``s(A)`` for candidate items (the paper's
      setting: retrieval and attention are driven by the target);
    * ``forward`` (the features path every agent uses): the query is the newest
      behaviour's item (what the user just did), ``s = [r ; t]``; an empty
      history gives ``s = 0``.

    :param observation_space: a recgym observation space.
    :param item_features: ``(n_items, F)`` content features, e.g. ``log.item_genres()`` or
        :func:`state_encoders.features.item_content_features` of the scenario's log; feature
        ``f`` of item ``i`` is present when ``item_features[i, f] > 0``.
    :param k: behaviours retrieved per target.
    :param time_bucket: width of a time bucket (environment steps; in pretraining windows one
        step is one interaction).
    :param retrieval: ``"overlap"`` (the model) or ``"recent"`` (the ablation: the last ``k``
        behaviours, whatever the target).
    :param use_behavior: add the response-type embedding ``e_type`` to each behaviour.
    :param base_kwargs: the common arguments of :class:`~state_encoders.base.StateEncoder`.
    """

    required_keys = ("history_items", "history_mask", "history_time", "history_behavior")
    uses_user = False

    def __init__(
        self,
        observation_space: spaces.Dict,
        item_features: np.ndarray,
        k: int = DEFAULT_K,
        time_bucket: float = DEFAULT_TIME_BUCKET,
        retrieval: Retrieval = "overlap",
        use_behavior: bool = True,
        **base_kwargs: Any,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"ubr k (behaviours retrieved) must be a positive integer, got {k!r}")
        if not time_bucket > 0:
            raise ValueError(f"ubr time_bucket must be > 0 steps, got {time_bucket!r}")
        if retrieval not in ("overlap", "recent"):
            raise ValueError(f"ubr retrieval must be 'overlap' (the model) or 'recent' (the last-k ablation), "
                             f"got {retrieval!r}")
        super().__init__(observation_space, **base_kwargs)
        d = self.embedding_dim
        self.history_length = int(observation_space["history_items"].shape[0])
        self.k = min(int(k), self.history_length)  # a window of N holds at most N behaviours
        self.time_bucket = float(time_bucket)
        self.retrieval = retrieval
        # presence flags for the overlap, the values for the content projection; padding row 0
        table = feature_table(item_features, self.n_items)
        self.register_buffer("item_features", table, persistent=False)
        present = (table > 0).to(torch.float32)  # [n_items + 1, F]
        self.register_buffer("feature_present", present, persistent=False)
        # |F(i) ∩ F(j)| for every pair of items, when the catalogue is small enough to tabulate (int16:
        # 32 MB at most): a gather instead of a [B, N, F] product per batch (F is 519 with title words)
        shared = (present @ present.T).to(torch.int16) if present.shape[0] <= MAX_SHARED_TABLE else None
        self.register_buffer("shared_features", shared, persistent=False)
        self.content = nn.Linear(table.shape[1], d, bias=False)  # W_c
        self.behavior_embedding = nn.Embedding(N_BEHAVIORS, d, padding_idx=int(Behavior.PAD)) if use_behavior else None
        if self.behavior_embedding is not None:
            nn.init.normal_(self.behavior_embedding.weight, std=EMBEDDING_INIT_STD)
            with torch.no_grad():
                self.behavior_embedding.weight[int(Behavior.PAD)].zero_()
        self.query = nn.Linear(d, d)  # W_q, c_q
        self._set_features_dim(2 * d)

    # -- retrieval ----------------------------------------------------------------------------
    def _recency_rank(self, time: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` rank of each valid slot by (time, slot), 0 the oldest; padded slots rank below all."""
        key = time.masked_fill(~mask, float("-inf"))
        order = torch.sort(key, dim=1, stable=True).indices  # ties keep slot order: the later slot is newer
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(order.size(1), device=order.device).expand_as(order))
        return rank - (~mask).sum(dim=1, keepdim=True)  # valid slots 0 .. L-1, padded ones negative

    def _overlap(self, ids: torch.Tensor, mask: torch.Tensor, time: torch.Tensor,
                 targets: torch.Tensor) -> torch.Tensor:
        """``o`` ``[B, M, N]``: features shared by each behaviour ``[B, N]`` and each target ``[B, M]``."""
        same_item = (ids.unsqueeze(1) == targets.unsqueeze(2)).to(torch.float32)  # [B, M, N]
        if self.shared_features is not None:
            pairs = self.shared_features[targets.unsqueeze(2), ids.unsqueeze(1)]  # [B, M, N]
            shared = pairs.to(torch.float32)
        else:
            shared = self.feature_present[targets] @ self.feature_present[ids].transpose(1, 2)  # [B, M, N]
        now = time.masked_fill(~mask, float("-inf")).max(dim=1, keepdim=True).values + 1.0  # [B, 1]
        recent = ((now - time) <= self.time_bucket).to(torch.float32).unsqueeze(1)  # [B, 1, N]
        return same_item + shared + recent

    def _retrieve(self, ids: torch.Tensor, mask: torch.Tensor, time: torch.Tensor,
                  targets: torch.Tensor) -> Retrieved:
        n = ids.size(1)
        rank = self._recency_rank(time, mask).unsqueeze(1).to(torch.float32)  # [B, 1, N]
        overlap = self._overlap(ids, mask, time, targets)  # [B, M, N]
        # "recent" (the last-k ablation): recency alone decides; the overlap is still reported
        score = overlap if self.retrieval == "overlap" else torch.zeros_like(overlap)
        # the score first, recency breaks ties: both are integers, so the sum orders exactly
        key = (score * n + rank).masked_fill(~mask.unsqueeze(1), float("-inf"))  # [B, M, N]
        top = key.topk(self.k, dim=-1)  # [B, M, k]
        valid = torch.isfinite(top.values)
        return Retrieved(top.indices, valid, overlap.gather(2, top.indices) * valid)

    def retrieve(self, observations: TensorDict, items: torch.Tensor) -> Retrieved:
        """The ``k`` behaviours retrieved for each candidate item ``items`` ``[B, M]`` (slots of the observation)."""
        ids, mask = self._item_sequence(observations, "history")
        return self._retrieve(ids, mask, observations["history_time"].to(torch.float32), items.long())

    # -- prediction ---------------------------------------------------------------------------
    def _record(self, ids: torch.Tensor) -> torch.Tensor:
        """``e_item(i) + x_i W_c`` ``[..., d]`` of item ids ``[...]`` (0 for the padding id)."""
        # project the table once, then gather: a [..., F] gather per behaviour would dominate the cost
        return self.embed_items(ids) + self.content(self.item_features)[ids.long()]

    def _behaviours(self, observations: TensorDict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        ids, mask = self._item_sequence(observations, "history")  # [B, N], [B, N]
        b = self._record(ids)  # [B, N, d]
        if self.behavior_embedding is not None:
            types = observations["history_behavior"].long().masked_fill(~mask, int(Behavior.PAD))
            b = b + self.behavior_embedding(types.clamp(0, N_BEHAVIORS - 1))
        return ids, mask, observations["history_time"].to(torch.float32), b

    def _states(self, observations: TensorDict, targets: torch.Tensor) -> torch.Tensor:
        ids, mask, time, b = self._behaviours(observations)  # b [B, N, d]
        found = self._retrieve(ids, mask, time, targets)  # [B, M, k]
        t = self._record(targets)  # [B, M, d]
        retrieved = b.unsqueeze(1).expand(-1, targets.size(1), -1, -1).gather(
            2, found.positions.unsqueeze(-1).expand(-1, -1, -1, b.size(-1)))  # [B, M, k, d]
        scores = (retrieved * self.query(t).unsqueeze(2)).sum(-1)  # [B, M, k]
        alpha = masked_softmax(scores, found.mask)  # 0 at the slots left empty
        r = (alpha.unsqueeze(-1) * retrieved).sum(dim=2)  # [B, M, d]
        return torch.cat([r, t], dim=-1)  # [B, M, 2d]

    def default_query(self, observations: TensorDict) -> torch.Tensor:
        """The features path's query ``[B]``: the newest behaviour's item (the padding id if none)."""
        ids, mask = self._item_sequence(observations, "history")
        rank = self._recency_rank(observations["history_time"].to(torch.float32), mask)  # [B, N]
        newest = (rank == (mask.sum(dim=1, keepdim=True) - 1)) & mask  # [B, N], one slot per non-empty row
        return torch.where(newest.any(dim=1), ids.gather(1, newest.int().argmax(dim=1, keepdim=True)).squeeze(1),
                           torch.full_like(ids[:, 0], self.pad_item))

    def target_state(self, observations: TensorDict, items: torch.Tensor) -> torch.Tensor:
        """States ``s(A)`` ``[B, M, 2d]`` with the candidate items ``items`` ``[B, M]`` as queries."""
        parts = [self._states(observations, part.long()) for part in torch.split(items, TARGET_CHUNK, dim=1)]
        return torch.cat(parts, dim=1)

    def forward(self, observations: TensorDict) -> torch.Tensor:
        return self._states(observations, self.default_query(observations).unsqueeze(1)).squeeze(1)  # [B, 2d]
