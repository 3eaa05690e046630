"""Supervised tasks a state encoder can be pretrained on: their split, head, loss and metrics.

Two tasks, as RecBole trains its user-behaviour models:

* :class:`NextItemTask`: predict the next item from the window before it.
  Chronological leave-one-out; every item scored by the dot product of a
  linear projection of the state with the encoder's own item table
  (``item_embedding_table()``); softmax cross-entropy over the whole catalogue;
  HR@10, NDCG@10 and MRR@10 of the target's rank among *all* items. Items the
  user has already rated are **not** excluded by default, as in RecBole's full
  ranking for sequential models (it masks the history only for general
  recommenders), so figures compare with RecBole's; ``exclude_seen=True``
  removes them from the ranking (the target itself is never removed).
* :class:`ClozeTask`: cloze-style masked item prediction (BERT4Rec, MB-STR):
  items at random positions of training windows are replaced by ``[MASK]``
  and predicted through the encoder's own head (``masked_item_states``:
  MB-STR's behaviour-aware head); tested like next item, on the last
  interaction of a target behaviour (MB-STR's protocol). :class:`NextItemTask`
  with ``target_behavior`` tests on the same targets.
* :class:`ClickThroughTask`: predict whether the user likes an item
  (``scale.is_liked``: rating >= 4, Jester > 0) from the window before it and
  the item. 80/10/10 split in time order; a target-aware head (the state, or
  ``encoder.target_state(observations, items)`` for encoders that have one such
  as DIN (items ``[B, M]`` -> states ``[B, M, F]``), concatenated with the target's embedding, then an MLP to a logit);
  binary cross-entropy; AUC and LogLoss.

A task knows nothing about the training loop (:mod:`recgym.pretrain.trainer`),
and the loop nothing about the task. A task computes where the encoder's
parameters are (:func:`recgym.devices.module_device`): the trainer puts the
encoder and head on its device, and the windows' tensors follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recgym.devices import module_device
from recgym.evaluation.metrics import hit_rate_at_k, ndcg_at_k
from recgym.pretrain.windows import (
    UserSequences,
    WindowBuilder,
    leave_one_out,
    time_ordered_split,
    training_cuts,
    window_ends,
)
from simulators.base import Behavior
from simulators.pmf import roc_auc
from state_encoders.base import StateEncoder

TensorDict = dict[str, torch.Tensor]

#: the cut-off of the next-item metrics (RecBole's ``topk: [10]``)
TOP_K = 10
#: hidden widths of the click-through head's MLP (ReLU between layers)
CTR_HIDDEN = (128, 64)
#: probabilities are clipped to [eps, 1 - eps] in LogLoss (sklearn's default)
LOGLOSS_EPS = 1e-15
#: share of the window's items the cloze task masks (MB-STR's official mask probability)
CLOZE_MASK_PROB = 0.2
#: interactions between the ends of two cloze training windows (the environment's default N, 5:
#: windows of that length tile each sequence; ``recgym pretrain`` passes its ``--history-length``)
CLOZE_STRIDE = 5


class Task(Protocol):
    """What the trainer needs from a task."""

    name: ClassVar[str]
    #: the validation metric early stopping maximises (or minimises, see ``monitor_mode``)
    monitor: ClassVar[str]
    monitor_mode: ClassVar[str]

    def split(self, sequences: UserSequences) -> dict[str, np.ndarray]: ...

    def make_head(self, encoder: StateEncoder, windows: WindowBuilder) -> nn.Module: ...

    def loss(self, encoder: StateEncoder, head: nn.Module, windows: WindowBuilder, targets: np.ndarray) -> torch.Tensor: ...

    def evaluate(self, encoder: StateEncoder, head: nn.Module, windows: WindowBuilder, targets: np.ndarray,
                 batch_size: int) -> dict[str, float]: ...


# -- next item --------------------------------------------------------------------------------


class NextItemHead(nn.Module):
    """Scores ``(W s) . e_j`` of every item ``j``: a linear projection of the state against the item table.

    :param features_dim: size of the encoder's state.
    :param embedding_dim: size of the encoder's item embeddings.
    :param project: False: no ``W``, the scores are ``s . e_j`` (RecBole's sequential models; the state
        must have the embeddings' size).
    """

    def __init__(self, features_dim: int, embedding_dim: int, project: bool = True) -> None:
        super().__init__()
        if not project and features_dim != embedding_dim:
            raise ValueError(f"scoring without a projection needs a state of the embeddings' size {embedding_dim}, "
                             f"got {features_dim}: keep project=True")
        self.projection = nn.Linear(features_dim, embedding_dim) if project else nn.Identity()

    def forward(self, encoder: StateEncoder, observations: TensorDict) -> torch.Tensor:
        state = encoder(observations)  # [B, F]
        return self.projection(state) @ encoder.item_embedding_table().T  # [B, n_items]


@dataclass
class NextItemTask:
    """Next-item prediction, chronological leave-one-out, full ranking (see the module docstring).

    :param exclude_seen: drop the items the user rated before the target from the ranking
        (default False, as RecBole's full ranking of sequential models).
    :param k: cut-off of HR, NDCG and MRR.
    :param target_behavior: test and validate on each user's last two interactions of this
        behaviour (a :class:`~simulators.base.Behavior` code; training still predicts every
        interaction before them); None (default): on the last two interactions.
    :param window_stride: None (default): one training example per interaction, the window
        before it (RecBole's prefix augmentation). An integer: training windows end every
        ``window_stride`` interactions (:func:`~recgym.pretrain.windows.window_ends`) and each
        position of a window predicts the item after it, as the SASRec and GRU4Rec papers
        train (sequential encoders only: they keep one output per position); a window's loss
        counts its newest ``window_stride`` labels only (all of them at ``N - 1`` and above), so
        each interaction but a user's first is a label once per epoch at any stride. ``N - 1``
        (consecutive windows share one item) is the cheapest; a smaller stride gives each label
        more history before it (at least ``N - window_stride`` items, where the user has them),
        at ``(N - 1) / window_stride`` times the cost; 1 is RecBole's prefix training.
    :param project: True (default): items scored by ``(W s) . e_j`` (:class:`NextItemHead`); False:
        ``s . e_j``, as RecBole's sequential models (the state must have the embeddings' size).
    """

    exclude_seen: bool = False
    k: int = TOP_K
    target_behavior: int | None = None
    window_stride: int | None = None
    project: bool = True

    name: ClassVar[str] = "next-item"
    monitor: ClassVar[str] = f"NDCG@{TOP_K}"
    monitor_mode: ClassVar[str] = "max"

    def split(self, sequences: UserSequences) -> dict[str, np.ndarray]:
        split = leave_one_out(sequences, target_behavior=self.target_behavior)
        if self.window_stride is not None:
            if self.target_behavior is None:  # the training part ends before the validation item
                cuts = sequences.starts + np.maximum(sequences.lengths - 2, 0)
            else:
                cuts = training_cuts(sequences, self.target_behavior)
            split["train"] = window_ends(sequences, cuts, self.window_stride)
        return split

    def make_head(self, encoder: StateEncoder, windows: WindowBuilder) -> nn.Module:
        if self.window_stride is not None and not callable(getattr(encoder, "sequence_states", None)):
            raise ValueError(
                f"next-item training on every position (window_stride) needs a sequential encoder with one output "
                f"per position (sequence_states: gru4rec, sasrec, ...); {encoder.name!r} has none: leave "
                "window_stride at None"
            )
        return NextItemHead(int(encoder.features_dim), int(encoder.embedding_dim), self.project)

    def loss(self, encoder: StateEncoder, head: nn.Module, windows: WindowBuilder, targets: np.ndarray) -> torch.Tensor:
        if self.window_stride is not None:
            return self._every_position_loss(encoder, head, windows, targets)
        device = module_device(encoder)
        logits = head(encoder, windows.tensors(targets, device))
        labels = torch.as_tensor(windows.sequences.items[targets], dtype=torch.long, device=device)
        return with_auxiliary_loss(encoder, F.cross_entropy(logits, labels))

    def _every_position_loss(self, encoder: Any, head: nn.Module, windows: WindowBuilder,
                             targets: np.ndarray) -> torch.Tensor:
        # the windows that end with each target
        observations = windows.tensors(targets, module_device(encoder), inclusive=True)
        states, mask = encoder.sequence_states(observations)  # [B, N, h], valid slots first
        ids = encoder.history(observations).ids  # [B, N] in the same order
        # position t predicts item t + 1; only the window's newest ``window_stride`` labels count (the older ones
        # are the newer labels of the window ending ``window_stride`` earlier), so each interaction is a label once
        # an epoch at any stride, and a stride below N - 1 gives every label a longer history (down to RecBole's
        # one prefix per label at stride 1)
        label_slot = torch.arange(1, mask.size(1), device=mask.device)  # [N - 1]
        newest = label_slot >= mask.sum(dim=1, keepdim=True) - self.window_stride  # [B, N - 1]
        has_next = mask[:, 1:] & newest  # [B, N - 1]
        logits = head.projection(states[:, :-1][has_next]) @ encoder.item_embedding_table().T  # [M, n_items]
        return F.cross_entropy(logits, ids[:, 1:][has_next])

    def evaluate(self, encoder: StateEncoder, head: nn.Module, windows: WindowBuilder, targets: np.ndarray,
                 batch_size: int) -> dict[str, float]:
        return next_item_metrics(encoder, head, windows, targets, batch_size, self.exclude_seen, self.k)


@torch.no_grad()
def next_item_metrics(encoder: StateEncoder, head: nn.Module, windows: WindowBuilder, targets: np.ndarray,
                      batch_size: int, exclude_seen: bool = False, k: int = TOP_K) -> dict[str, float]:
    """HR, NDCG and MRR at ``k`` of each target item's rank among all items, scored by ``head``."""
    ranks = []
    device = module_device(encoder)
    for chunk in np.array_split(targets, max(1, -(-targets.size // batch_size))):
        if chunk.size == 0:
            continue
        scores = head(encoder, windows.tensors(chunk, device))  # [B, n_items]
        if exclude_seen:
            seen = torch.as_tensor(seen_before(windows.sequences, chunk), device=device)
            scores = scores.masked_fill(seen, float("-inf"))
        items = torch.as_tensor(windows.sequences.items[chunk], device=device)
        ranks.append(target_ranks(scores, items).cpu().numpy())
    return ranking_metrics(np.concatenate(ranks) if ranks else np.zeros(0, np.int64), k)


# -- cloze ------------------------------------------------------------------------------------


class ItemScoreHead(nn.Module):
    """Scores ``s . e_j`` of every item ``j``: the state against the encoder's item table, no parameters.

    MB-STR's state is already its prediction ``y`` for the target behaviour (its own head's
    output), scored by dot product with the item embeddings as the paper does.
    """

    def forward(self, encoder: StateEncoder, observations: TensorDict) -> torch.Tensor:
        return encoder(observations) @ encoder.item_embedding_table().T  # [B, n_items]


@dataclass
class ClozeTask:
    """Cloze-style masked item prediction (MB-STR Sec. 3.4; BERT4Rec), tested on a target behaviour.

    Training: windows of each user's training part (the interactions before
    the validation target, every ``stride`` interactions, each window the
    ``N`` interactions up to its end); every valid item is replaced by
    ``[MASK]`` with probability ``mask_prob`` (keeping its behaviour) and
    predicted by softmax cross-entropy over all items from
    ``encoder.masked_item_states`` (the encoder's behaviour-aware head) against
    its item table. A batch in which no item was drawn masks each window's
    newest item instead, so every step has a loss.

    Testing: the user's last interaction of ``target_behavior`` (validation:
    the second-last) is ranked among all items by ``state . e_j`` (the state
    predicts the target behaviour at a ``[MASK]`` after the history), as
    :class:`NextItemTask` with the same ``target_behavior``.

    :param target_behavior: the behaviour tested (a :class:`~simulators.base.Behavior` code;
        default purchase); the encoder's own ``target_behavior`` must agree.
    :param mask_prob: probability that an item is masked (official 0.2).
    :param stride: interactions between the ends of two training windows.
    :param exclude_seen: drop the items the user interacted with before the target from the ranking.
    :param k: cut-off of HR, NDCG and MRR.
    """

    target_behavior: int = int(Behavior.PURCHASE)
    mask_prob: float = CLOZE_MASK_PROB
    stride: int = CLOZE_STRIDE
    exclude_seen: bool = False
    k: int = TOP_K

    name: ClassVar[str] = "cloze"
    monitor: ClassVar[str] = f"NDCG@{TOP_K}"
    monitor_mode: ClassVar[str] = "max"

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_prob <= 1.0:
            raise ValueError(f"mask_prob must be in (0, 1], got {self.mask_prob!r}")
        if self.target_behavior not in (int(Behavior.SKIP), int(Behavior.CLICK), int(Behavior.PURCHASE)):
            raise ValueError(f"target_behavior must be a Behavior code (1 skip, 2 click, 3 purchase), "
                             f"got {self.target_behavior!r}")

    def split(self, sequences: UserSequences) -> dict[str, np.ndarray]:
        held_out = leave_one_out(sequences, target_behavior=self.target_behavior)
        ends = window_ends(sequences, training_cuts(sequences, self.target_behavior), self.stride)
        return {"train": ends, "valid": held_out["valid"], "test": held_out["test"]}

    def make_head(self, encoder: StateEncoder, windows: WindowBuilder) -> nn.Module:
        if not callable(getattr(encoder, "masked_item_states", None)):
            raise ValueError(
                f"task 'cloze' needs an encoder that predicts masked items (masked_item_states, as mbstr); "
                f"{encoder.name or type(encoder).__name__!r} has none: use the next-item task for it"
            )
        if getattr(encoder, "n_behaviors", 1) > 1 and getattr(encoder, "target_behavior", None) != self.target_behavior:
            raise ValueError(
                f"the cloze task tests behaviour {self.target_behavior} but the encoder's state predicts "
                f"behaviour {encoder.target_behavior}: build it with target_behavior={self.target_behavior}"
            )
        if self.stride > windows.layout.history_length:
            raise ValueError(
                f"cloze stride {self.stride} is longer than the windows (history_length "
                f"{windows.layout.history_length}): some interactions would be in no window; use stride <= N"
            )
        return ItemScoreHead()

    def loss(self, encoder: StateEncoder, head: nn.Module, windows: WindowBuilder, targets: np.ndarray) -> torch.Tensor:
        observations = windows.tensors(targets, module_device(encoder), inclusive=True)
        valid = observations["history_mask"] > 0.5  # [B, N], right-aligned: slot N-1 is each window's end
        # drawn by the CPU's generator on every device: the same seed masks the same items on a GPU
        masked = (torch.rand(valid.shape) < self.mask_prob).to(valid.device) & valid
        if not bool(masked.any()):
            masked[:, -1] = True
        states = encoder.masked_item_states(observations, masked)  # [M, d]
        logits = states @ encoder.item_embedding_table().T  # [M, n_items]
        return F.cross_entropy(logits, observations["history_items"][masked].long())

    def evaluate(self, encoder: StateEncoder, head: nn.Module, windows: WindowBuilder, targets: np.ndarray,
                 batch_size: int) -> dict[str, float]:
        return next_item_metrics(encoder, head, windows, targets, batch_size, self.exclude_seen, self.k)


def with_auxiliary_loss(encoder: StateEncoder, loss: torch.Tensor) -> torch.Tensor:
    """``loss`` plus the encoder's own training term of this batch, if it has one (HPMN's regulariser)."""
    extra = encoder.pop_auxiliary_loss()
    return loss if extra is None else loss + extra


def seen_before(sequences: UserSequences, targets: np.ndarray) -> np.ndarray:
    """``(B, n_items)`` bool: items the target's user rated before it (the target item itself excluded)."""
    mask = np.zeros((targets.size, sequences.n_items), dtype=bool)
    for row, g in enumerate(targets):
        mask[row, sequences.items[sequences.starts[sequences.users[g]] : g]] = True
        mask[row, sequences.items[g]] = False
    return mask


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each target among all items: the number of items scored strictly higher.

    :param scores: ``[B, n_items]``.
    :param targets: ``[B]`` item ids.
    """
    target_score = scores.gather(1, targets.long().view(-1, 1))  # [B, 1]
    return (scores > target_score).sum(dim=1)


def ranking_metrics(ranks: np.ndarray, k: int = TOP_K) -> dict[str, float]:
    """HR@k, NDCG@k and MRR@k of one relevant item per row at 0-based ``ranks``.

    HR and NDCG come from :mod:`recgym.evaluation.metrics` (one relevant item,
    so NDCG@k = 1 / log2(rank + 2) inside the top k); MRR@k = 1 / (rank + 1)
    inside the top k, else 0.
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    if ranks.size == 0:
        return {f"HR@{k}": float("nan"), f"NDCG@{k}": float("nan"), f"MRR@{k}": float("nan")}
    relevance = (ranks[:, None] == np.arange(k)).astype(np.float64)  # [B, k] the target's position
    return {
        f"HR@{k}": hit_rate_at_k(relevance, k, n_relevant=1, reduce="mean"),
        f"NDCG@{k}": ndcg_at_k(relevance, k, n_relevant=1, reduce="mean"),
        f"MRR@{k}": float(np.mean(np.where(ranks < k, 1.0 / (ranks + 1.0), 0.0))),
    }


# -- click-through ------------------------------------------------------------------------------


class ClickThroughHead(nn.Module):
    """``MLP([state, e_item]) -> logit``; the state is ``encoder.target_state(obs, items)`` where it exists.

    :param state_dim: size of the (target-aware) state.
    :param embedding_dim: size of the item embeddings.
    :param hidden: hidden widths of the MLP.
    """

    def __init__(self, state_dim: int, embedding_dim: int, hidden: tuple[int, ...] = CTR_HIDDEN) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = state_dim + embedding_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, encoder: StateEncoder, observations: TensorDict, items: torch.Tensor) -> torch.Tensor:
        state = target_aware_state(encoder, observations, items)  # [B, F']
        return self.mlp(torch.cat([state, encoder.embed_items(items)], dim=-1)).squeeze(-1)  # [B]


def target_aware_state(encoder: StateEncoder, observations: TensorDict, items: torch.Tensor) -> torch.Tensor:
    """States ``[B, F']`` for target items ``[B]``.

    ``encoder.target_state(observations, candidates)`` for encoders that have it (DIN: the
    target is the attention's query; candidates ``[B, M]`` give states ``[B, M, F']``, here
    ``M = 1``), else ``encoder(observations)``.
    """
    target_state = getattr(encoder, "target_state", None)
    if callable(target_state):
        return target_state(observations, items.reshape(-1, 1)).squeeze(1)  # [B, 1, F'] -> [B, F']
    return encoder(observations)


@dataclass
class ClickThroughTask:
    """Whether the user likes the target item; time-ordered 80/10/10 (see the module docstring).

    :param fractions: train, validation and test shares of the targets in time order.
    """

    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)

    name: ClassVar[str] = "ctr"
    monitor: ClassVar[str] = "AUC"
    monitor_mode: ClassVar[str] = "max"

    def split(self, sequences: UserSequences) -> dict[str, np.ndarray]:
        return time_ordered_split(sequences, self.fractions)

    def make_head(self, encoder: StateEncoder, windows: WindowBuilder) -> nn.Module:
        state_dim = int(encoder.features_dim)
        if callable(getattr(encoder, "target_state", None)) and len(windows.sequences):
            # a target-aware state may have its own width: ask the encoder once (eval mode: batch norm
            # and dropout must not see a batch of one in training mode)
            probe, was_training = np.zeros(1, dtype=np.int64), encoder.training
            device = module_device(encoder)
            encoder.eval()
            with torch.no_grad():
                items = torch.as_tensor(windows.sequences.items[probe], device=device)
                state_dim = int(target_aware_state(encoder, windows.tensors(probe, device), items).shape[-1])
            encoder.train(was_training)
        return ClickThroughHead(state_dim, int(encoder.embedding_dim))

    def loss(self, encoder: StateEncoder, head: nn.Module, windows: WindowBuilder, targets: np.ndarray) -> torch.Tensor:
        seq, device = windows.sequences, module_device(encoder)
        logits = head(encoder, windows.tensors(targets, device), torch.as_tensor(seq.items[targets], device=device))
        labels = torch.as_tensor(seq.liked[targets], dtype=logits.dtype, device=device)
        return with_auxiliary_loss(encoder, F.binary_cross_entropy_with_logits(logits, labels))

    @torch.no_grad()
    def evaluate(self, encoder: StateEncoder, head: nn.Module, windows: WindowBuilder, targets: np.ndarray,
                 batch_size: int) -> dict[str, float]:
        seq, device = windows.sequences, module_device(encoder)
        logits = [head(encoder, windows.tensors(chunk, device), torch.as_tensor(seq.items[chunk], device=device))
                  .cpu().numpy() for chunk in np.array_split(targets, max(1, -(-targets.size // batch_size))) if chunk.size]
        scores = np.concatenate(logits) if logits else np.zeros(0)
        return click_metrics(scores, seq.liked[targets])


def click_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUC (:func:`simulators.pmf.roc_auc`) and LogLoss (mean binary cross-entropy of ``sigmoid(logits)``)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if logits.size == 0:
        return {"AUC": float("nan"), "LogLoss": float("nan")}
    p = np.clip(1.0 / (1.0 + np.exp(-logits)), LOGLOSS_EPS, 1.0 - LOGLOSS_EPS)
    return {"AUC": roc_auc(logits, labels), "LogLoss": float(-np.mean(np.where(labels, np.log(p), np.log1p(-p))))}


TASKS: dict[str, Any] = {NextItemTask.name: NextItemTask, ClozeTask.name: ClozeTask,
                         ClickThroughTask.name: ClickThroughTask}


def make_task(name: str, **kwargs: Any) -> Task:
    """The task called ``name`` (``"next-item"``, ``"cloze"`` or ``"ctr"``)."""
    try:
        return TASKS[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown pretraining task {name!r}; choose one of {', '.join(TASKS)}") from None
