"""The base class of state encoders and the masking helpers they share.

A state encoder maps one recgym observation (the flat ``spaces.Dict`` of
:mod:`recgym.envs.spaces`) to a state vector ``s`` of size ``features_dim``.
It is a stable-baselines3 ``BaseFeaturesExtractor``, so it plugs into any SB3
policy through ``policy_kwargs=dict(features_extractor_class=...,
features_extractor_kwargs=...)``; agents that score items by dot product use
:meth:`StateEncoder.item_embedding_table` and :meth:`StateEncoder.embed_items`.

Conventions every encoder follows:

* SB3 hands each ``Box`` entry over as a float tensor; ids are cast back with
  ``.long()`` (they are below 2^24, so float32 holds them exactly).
* The mask decides: ids at masked slots are replaced by the padding id
  ``n_items`` (whose embedding row is zero and never receives a gradient,
  ``padding_idx``) *and* every model multiplies masked terms by zero, so
  nothing written at a padded slot can change the output.
* An empty history (all-zero mask) gives a finite, well-defined state.
* Models with per-position parameters (DRR-p/u/ave weights, DEERS's GRUs) first
  re-align the valid slots with :func:`align_valid`, so position ``l`` always
  means the same thing (the l-th most recent item) whatever side the
  environment pads on.

Shapes in comments: ``B`` batch, ``N`` window length, ``d`` embedding size.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from recgym.envs.spaces import ObservationLayout
from recgym.scenario import fold_in

#: embedding size used by DRR reimplementations (PMF factors of width 50; some use 100).
DEFAULT_EMBEDDING_DIM = 50
#: standard deviation of learned-from-scratch embeddings (small, so that the
#: element-wise products of DRR start near zero and dot-product scores near 0).
EMBEDDING_INIT_STD = 0.1

TensorDict = dict[str, torch.Tensor]


# -- shared helpers ---------------------------------------------------------------


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` ``[B, N, d]`` over the valid slots of ``mask`` ``[B, N]``.

    An all-zero mask gives a zero vector (not NaN).
    """
    weights = mask.to(x.dtype).unsqueeze(-1)  # [B, N, 1]
    total = (x * weights).sum(dim=1)  # [B, d]
    count = weights.sum(dim=1).clamp_min(1.0)  # [B, 1]
    return total / count


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax of ``logits`` over the valid entries of ``mask`` along ``dim``.

    Masked entries get exactly 0 and the valid ones sum to 1; a row with no
    valid entry is all zeros (not NaN), and so is its gradient.
    """
    mask = mask.bool()
    filled = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
    weights = torch.softmax(filled, dim=dim) * mask.to(logits.dtype)
    return weights / weights.sum(dim=dim, keepdim=True).clamp_min(torch.finfo(logits.dtype).tiny)


def gather_last_valid(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x[b, lengths[b] - 1]`` for left-aligned sequences ``x`` ``[B, N, h]``.

    Rows with ``lengths == 0`` get a zero vector (an empty queue's initial state).
    """
    index = (lengths.long() - 1).clamp_min(0)  # [B]
    index = index.view(-1, 1, 1).expand(-1, 1, x.size(-1))  # [B, 1, h]
    last = x.gather(1, index).squeeze(1)  # [B, h]
    return last * (lengths > 0).to(x.dtype).unsqueeze(-1)


def align_valid(
    ids: torch.Tensor, mask: torch.Tensor, side: Literal["left", "right"]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the valid slots of ``ids`` ``[B, N]`` to one side, keeping their order.

    ``side="right"``: the most recent valid item ends at position ``N - 1``
    (the layout DRR's position weights assume); ``side="left"``: valid items
    start at position 0 (what a GRU read up to ``lengths`` needs). Masks that
    are already aligned, or have holes, are both handled (stable sort).

    :return: ``(ids, mask)`` permuted the same way, ``[B, N]`` each.
    """
    order = valid_order(mask, side)  # [B, N]
    return ids.gather(1, order), mask.gather(1, order)


def valid_order(mask: torch.Tensor, side: Literal["left", "right"]) -> torch.Tensor:
    """The permutation ``[B, N]`` that :func:`align_valid` applies to a mask ``[B, N]``.

    Gather any other per-slot tensor with it (``x.gather(1, order)``) to keep
    it aligned with the ids, e.g. ``history_time`` or ``history_feedback``.
    """
    key = mask.to(torch.int8)
    return torch.sort(key, dim=1, descending=(side == "left"), stable=True).indices  # [B, N]


def pairwise_products(x: torch.Tensor) -> torch.Tensor:
    """All products ``x_a ⊗ x_b`` for ``a < b`` of ``x`` ``[B, N, d]`` -> ``[B, N(N-1)/2, d]``.

    Pairs are ordered lexicographically: (0,1), (0,2), ..., (N-2, N-1).
    """
    rows, cols = torch.triu_indices(x.size(1), x.size(1), offset=1, device=x.device)
    return x[:, rows] * x[:, cols]


class UserFoldIn(nn.Module):
    """A user's PMF factor folded in from the ratings the episode has shown (no id lookup, no leak).

    Given the item side of a fitted PMF (``mu + b_i + c_j + U_i . V_j``,
    :mod:`simulators.pmf`), the MAP estimate of ``[U_i, b_i]`` from observed
    ratings ``r_ij`` is the ridge regression of ``r_ij - mu - c_j`` on
    ``[V_j, 1]`` with penalties ``D = diag(reg I, bias_reg)`` (one ALS half-step,
    PMF eq. 4). With ``N`` observed items it is solved in its dual form
    ``x = D^-1 Y^T (Y D^-1 Y^T + I)^-1 r``: an ``N x N`` system per user.
    The estimate is :func:`recgym.scenario.fold_in`, recgym's one fold-in, run in float32 on
    the module's device.

    The factor is divided by ``output_scale`` (the spread of the fitted user
    factors), so it has the unit scale of the normalised embedding tables.

    :param n_items: number of items (padding ids ``>= n_items`` are masked).
    :param item_factors: ``(n_items, d)`` ``V``.
    :param item_bias: ``(n_items,)`` ``c``.
    :param global_mean: ``mu``.
    :param reg: ridge penalty on ``U``.
    :param bias_reg: ridge penalty on ``b``.
    :param rating_midpoint: the history's feedback ``f`` in [-1, 1] is the rating
        ``f * rating_half_range + rating_midpoint``.
    :param rating_half_range: see ``rating_midpoint``.
    :param output_scale: divisor of the folded-in factor.
    """

    def __init__(
        self,
        n_items: int,
        item_factors: np.ndarray,
        item_bias: np.ndarray,
        global_mean: float,
        reg: float,
        bias_reg: float,
        rating_midpoint: float,
        rating_half_range: float,
        output_scale: float = 1.0,
    ) -> None:
        super().__init__()
        factors = _as_matrix(item_factors, "user_fold_in item_factors", rows=n_items)
        bias = np.asarray(item_bias, dtype=np.float32).reshape(-1)
        if bias.shape != (n_items,):
            raise ValueError(f"user_fold_in item_bias must have shape ({n_items},), got {bias.shape}")
        if not (reg > 0 and bias_reg > 0 and rating_half_range > 0 and output_scale > 0):
            raise ValueError("user_fold_in needs reg, bias_reg, rating_half_range and output_scale > 0")
        self.dim = factors.shape[1]
        # a zero row at the padding id keeps masked slots harmless
        self.register_buffer("item_factors", torch.from_numpy(np.vstack([factors, np.zeros((1, self.dim), np.float32)])))
        self.register_buffer("item_bias", torch.from_numpy(np.r_[bias, np.float32(0)].astype(np.float32)))
        penalty = np.r_[np.full(self.dim, float(reg)), float(bias_reg)]
        self.register_buffer("inverse_penalty", torch.from_numpy((1.0 / penalty).astype(np.float32)))
        self.global_mean = float(global_mean)
        self.rating_midpoint = float(rating_midpoint)
        self.rating_half_range = float(rating_half_range)
        self.output_scale = float(output_scale)

    def forward(self, ids: torch.Tensor, feedback: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, d]`` folded-in factors from item ids ``[B, N]``, feedback ``[B, N]`` and mask ``[B, N]``."""
        ratings = feedback * self.rating_half_range + self.rating_midpoint  # [B, N]
        n_items = self.item_factors.shape[0] - 1  # the last row is the padding id's
        factors, _ = fold_in(self.item_factors[:n_items], self.item_bias, self.global_mean, self.inverse_penalty,
                             ids, ratings, mask)
        return factors / self.output_scale


# -- the base class ------------------------------------------------------------------


class StateEncoder(BaseFeaturesExtractor):
    """Base class: embeddings, observation checks and id/mask decoding.

    Subclasses declare the observation keys they read in ``required_keys``,
    whether they use the user embedding in ``uses_user``, build their layers and
    call :meth:`_set_features_dim` at the end of ``__init__``. A subclass's
    constructor takes the observation space, its own model-specific (typed,
    documented) arguments, and ``**base_kwargs``, which it forwards unchanged
    to this constructor: the arguments below are documented here only, and
    every encoder accepts them under the same keyword names (what SB3's
    ``features_extractor_kwargs`` and :func:`state_encoders.make` pass)::

        def __init__(self, observation_space: spaces.Dict, hidden_size: int = 64, **base_kwargs: Any) -> None:
            super().__init__(observation_space, **base_kwargs)

    :param observation_space: a recgym observation space (``ObservationLayout.space()``).
    :param embedding_dim: size ``d`` of item (and user) embeddings; defaults to
        the given arrays' width, else :data:`DEFAULT_EMBEDDING_DIM` (50, as DRR).
    :param item_embeddings: optional ``(n_items, d)`` array (e.g. the simulator's
        PMF item factors) copied into the item table; the padding row stays 0.
    :param user_embeddings: optional ``(n_users, d)`` array copied into the user
        table; ignored by encoders that have no user term (``uses_user=False``).
        A table indexed by user id suits only users whose factors were fitted
        without their held-out ratings (the DRR paper's all-data setting is the
        labelled exception); recgym's leak-free default is ``user_fold_in``.
    :param user_fold_in: optional arrays of a fitted PMF (see :class:`UserFoldIn`):
        the user term is then folded in from the observation's history instead
        of looked up by id, so a test user is represented only by what the
        episode has shown. Takes precedence over ``user_embeddings``.
    :param freeze_embeddings: if True the item and user tables are not trained.
    """

    #: registry name, set by :func:`state_encoders.register`.
    name: ClassVar[str] = ""
    #: observation keys the model reads (checked at construction).
    required_keys: ClassVar[tuple[str, ...]] = ()
    #: whether the model has a user-embedding term.
    uses_user: ClassVar[bool] = True

    def __init__(
        self,
        observation_space: spaces.Dict,
        *,
        embedding_dim: int | None = None,
        item_embeddings: np.ndarray | None = None,
        user_embeddings: np.ndarray | None = None,
        user_fold_in: dict[str, Any] | None = None,
        freeze_embeddings: bool = False,
    ) -> None:
        # features_dim is a placeholder until the subclass knows its size (the
        # same pattern as SB3's own CombinedExtractor).
        super().__init__(observation_space, features_dim=1)
        self._check_space(observation_space)
        layout = ObservationLayout.from_space(observation_space)
        self.n_users = layout.n_users
        self.n_items = layout.n_items
        self.pad_item = layout.pad_item

        if not self.uses_user:
            user_embeddings = user_fold_in = None
        if user_fold_in is not None:
            user_embeddings = None
        item_array = _as_matrix(item_embeddings, "item_embeddings", rows=self.n_items)
        user_array = _as_matrix(user_embeddings, "user_embeddings", rows=self.n_users)
        self.embedding_dim = _resolve_embedding_dim(embedding_dim, item_array, user_array)
        self.freeze_embeddings = bool(freeze_embeddings)

        # n_items + 1 rows: the last one is the padding item (zero, no gradient).
        self.item_embedding = nn.Embedding(self.n_items + 1, self.embedding_dim, padding_idx=self.pad_item)
        _init_table(self.item_embedding, item_array, padding_idx=self.pad_item)
        self.item_embedding.weight.requires_grad_(not self.freeze_embeddings)

        self.user_embedding: nn.Embedding | None = None
        self.user_fold_in: UserFoldIn | None = None
        if user_fold_in is not None:
            self.user_fold_in = UserFoldIn(n_items=self.n_items, **user_fold_in)
            if self.user_fold_in.dim != self.embedding_dim:
                raise ValueError(
                    f"user_fold_in factors have width {self.user_fold_in.dim} but the embeddings have "
                    f"{self.embedding_dim}: use the arrays of one embedding model"
                )
        elif self.uses_user:
            self.user_embedding = nn.Embedding(self.n_users, self.embedding_dim)
            _init_table(self.user_embedding, user_array, padding_idx=None)
            self.user_embedding.weight.requires_grad_(not self.freeze_embeddings)

    # -- what subclasses implement --------------------------------------------------
    def forward(self, observations: TensorDict) -> torch.Tensor:  # pragma: no cover - abstract
        """Encode a batch of observations into states ``[B, features_dim]``."""
        raise NotImplementedError

    def pop_auxiliary_loss(self) -> torch.Tensor | None:
        """An extra training loss from the latest forward pass in training mode, then forgotten (None: none).

        Supervised pretraining adds it to the task's loss (HPMN's memory covariance
        regulariser); most encoders have none.
        """
        return None

    # -- public helpers for agents -----------------------------------------------------
    def item_embedding_table(self) -> torch.Tensor:
        """Item embedding weights ``[n_items, d]`` (row ``i`` = item ``i``; padding row excluded).

        A view of the trained parameter, so gradients flow through dot-product scores.
        """
        return self.item_embedding.weight[: self.n_items]

    def embed_items(self, ids: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[..., d]`` of item ids ``[...]`` (float or integer; ``n_items`` gives 0)."""
        return self.item_embedding(ids.long())

    def embed_users(self, observations: TensorDict) -> torch.Tensor:
        """User embeddings ``[B, d]``: folded in from the history, or looked up by the ``user`` id.

        :param observations: the batch of observations (the fold-in reads
            ``history_items``, ``history_feedback`` and ``history_mask``; the
            table reads ``user``).
        """
        if self.user_fold_in is not None:
            ids, mask = self._item_sequence(observations, "history")
            return self.user_fold_in(ids, observations["history_feedback"], mask)
        if self.user_embedding is None:
            raise AttributeError(f"{type(self).__name__} has no user embedding (uses_user=False)")
        return self.user_embedding(observations["user"].long().reshape(-1))

    # -- for subclasses --------------------------------------------------------------
    def _set_features_dim(self, features_dim: int) -> None:
        if features_dim < 1:
            raise ValueError(f"features_dim must be >= 1, got {features_dim}")
        self._features_dim = int(features_dim)

    def _item_sequence(self, observations: TensorDict, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids ``[B, N]`` (long, padding id at masked slots) and mask ``[B, N]`` (bool) of a sequence.

        :param prefix: ``"history"``, ``"positive"`` or ``"negative"``.
        """
        mask = observations[f"{prefix}_mask"] > 0.5  # [B, N]
        ids = observations[f"{prefix}_items"].long()  # [B, N]
        ids = ids.masked_fill(~mask, self.pad_item)
        return ids, mask

    @classmethod
    def _check_space(cls, observation_space: spaces.Space) -> None:
        if not isinstance(observation_space, spaces.Dict):
            raise ValueError(
                f"{cls.__name__} needs a recgym Dict observation space "
                f"(ObservationLayout.space()), got {observation_space!r}"
            )
        missing = [key for key in cls.required_keys if key not in observation_space.spaces]
        if missing:
            raise ValueError(
                f"state encoder {cls.name or cls.__name__!r} needs observation keys {list(cls.required_keys)} "
                f"but the environment's observation space lacks {missing} (it has "
                f"{sorted(observation_space.spaces)}); use an environment that provides them "
                "or another encoder"
            )
        lengths = {observation_space[k].shape for k in cls.required_keys if k.endswith(("_items", "_mask"))}
        if len(lengths) > 1:
            raise ValueError(
                f"state encoder {cls.name or cls.__name__!r}: item and mask entries must share one "
                f"length N, got shapes {sorted(lengths)}"
            )


def _as_matrix(array: np.ndarray | None, what: str, rows: int) -> np.ndarray | None:
    if array is None:
        return None
    matrix = np.array(array, dtype=np.float32, copy=True)
    if matrix.ndim != 2 or matrix.shape[0] != rows:
        raise ValueError(f"{what} must have shape ({rows}, d) for this observation space, got {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return matrix


def _resolve_embedding_dim(
    embedding_dim: int | None, item_array: np.ndarray | None, user_array: np.ndarray | None
) -> int:
    given = {name: a.shape[1] for name, a in (("item_embeddings", item_array), ("user_embeddings", user_array))
             if a is not None}
    if embedding_dim is not None:
        given["embedding_dim"] = int(embedding_dim)
    if len(set(given.values())) > 1:
        raise ValueError(f"inconsistent embedding sizes: {given}; pass arrays of one width d")
    dim = next(iter(given.values()), DEFAULT_EMBEDDING_DIM)
    if dim < 1:
        raise ValueError(f"embedding_dim must be >= 1, got {dim}")
    return int(dim)


def _init_table(table: nn.Embedding, array: np.ndarray | None, padding_idx: int | None) -> None:
    with torch.no_grad():
        if array is None:
            nn.init.normal_(table.weight, mean=0.0, std=EMBEDDING_INIT_STD)
        else:
            table.weight[: array.shape[0]].copy_(torch.from_numpy(array))
        if padding_idx is not None:
            table.weight[padding_idx].zero_()
