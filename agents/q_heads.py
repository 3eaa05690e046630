"""Q-heads: what turns the state encoder's state into one Q-value per item, as plug-in classes.

:class:`agents.dqn.MaskedQNetwork` is ``head(encoder(obs), obs)``. The encoder is SB3's
features extractor (``policy_kwargs={"features_extractor_class": ...}``); the head is a
:class:`QHead` subclass, given the same way::

    agents.make("dqn", env, policy_kwargs={"q_head_class": HistoryQHead, "q_head_kwargs": {...}})

The contract of a head:

* ``__init__(self, inputs: QHeadInputs, **q_head_kwargs)``: :class:`QHeadInputs` holds what
  the Q-network knows (the state size, ``n_items``, the observation space, the encoder for its
  item tables, SB3's ``net_arch`` / ``activation_fn``, ...); ``q_head_kwargs`` are the head's
  own arguments. Build every random layer here, after SB3's per-item MLP
  (:attr:`QHeadInputs.per_item_mlp`), which the Q-network builds first for every head.
* ``forward(features, observation) -> (B, n_items)`` Q-values, ``features`` the encoder's state
  ``(B, features_dim)`` and ``observation`` the Dict of tensors it was computed from.
* optionally ``item_values(features, observation, items) -> (B, k)``, the values of ``(B, k)``
  item ids only (the TD update needs the taken action's); the default scores the catalogue
  and gathers.
* ``scenario_inputs``: keyword arguments that ``agents.make`` fills from the scenario when they
  are not given (``"item_categories"``, ``"item_content"`` or ``"embedding_model"``).

The string names that run configs, scripts and saved runs use (``q_head="history"``) are
aliases of the classes, resolved in one place: :data:`Q_HEADS`, :func:`resolve_q_head`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import nn
from torch.nn import functional as F

from recgym.scenario import fold_in


@dataclass
class QHeadInputs:
    """What :class:`agents.dqn.MaskedQNetwork` hands a head's constructor.

    :param observation_space: the Dict observation space.
    :param features_extractor: the network's state encoder (read its item tables at construction;
        it is the Q-network's module, so a head must not store it as an attribute).
    :param features_dim: size of the state ``s``.
    :param n_items: number of items (``Discrete(n_items)`` actions).
    :param net_arch: hidden layers of the head's MLPs (``policy_kwargs["net_arch"]``).
    :param activation_fn: activation between layers.
    :param normalize_images: SB3's preprocessing flag (for heads that preprocess observations).
    :param per_item_mlp: SB3's MLP from the state to one output per item, built before the head
        as SB3's ``QNetwork`` builds it; a head with per-item outputs adopts it, the others leave
        it. Building it first for every head keeps a seed's initial weights what they were before
        heads became classes.
    :param shared: a dict shared by the online and the target network's heads (caches of values
        that depend on the observation only).
    """

    observation_space: spaces.Dict
    features_extractor: BaseFeaturesExtractor
    features_dim: int
    n_items: int
    net_arch: list[int]
    activation_fn: type[nn.Module]
    normalize_images: bool
    per_item_mlp: nn.Sequential
    shared: dict[str, Any] = field(default_factory=dict)

    def mlp(self, out_dim: int) -> nn.Sequential:
        """A fresh MLP from the state to ``out_dim`` outputs through :attr:`net_arch`."""
        return nn.Sequential(*create_mlp(self.features_dim, out_dim, self.net_arch, self.activation_fn))


class QHead(nn.Module):
    """Base of the Q-heads: ``forward(features, observation) -> (B, n_items)`` (module docstring).

    :param inputs: what the Q-network knows (:class:`QHeadInputs`).
    """

    #: keyword arguments ``agents.make`` fills from the scenario when not given: name -> what
    #: (``"item_categories"``, ``"item_content"``, ``"embedding_model"``; agents/registry.py)
    scenario_inputs: ClassVar[dict[str, str]] = {}
    #: whether :meth:`forward` reads ``features``; when False the Q-network skips the encoder
    #: and passes ``None`` (a head that runs the encoder itself, e.g. per candidate)
    uses_state: ClassVar[bool] = True

    def __init__(self, inputs: QHeadInputs) -> None:
        super().__init__()
        self.n_items = int(inputs.n_items)

    def forward(self, features: th.Tensor | None, observation: PyTorchObs) -> th.Tensor:
        """``(B, n_items)`` Q-values of the state ``features`` ``(B, features_dim)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(features, observation)")

    def item_values(self, features: th.Tensor | None, observation: PyTorchObs, items: th.Tensor) -> th.Tensor:
        """``(B, k)`` Q-values of the ``(B, k)`` item ids ``items``; override when it can be cheaper."""
        return self(features, observation).gather(1, items.long())


class LinearQHead(QHead):
    """SB3's head (the default): an MLP of the state with one output per item, ``Q(s, a) = MLP(s)_a``."""

    def __init__(self, inputs: QHeadInputs) -> None:
        super().__init__(inputs)
        self.mlp = inputs.per_item_mlp

    def forward(self, features: th.Tensor | None, observation: PyTorchObs) -> th.Tensor:
        return self.mlp(features)  # [B, n_items]

    def item_values(self, features: th.Tensor | None, observation: PyTorchObs, items: th.Tensor) -> th.Tensor:
        # only the output rows of the chosen items: O(B k h) instead of O(B n_items h)
        hidden = self.mlp[:-1](features)  # [B, h]
        last = self.mlp[-1]
        items = items.long()
        return (last.weight[items] * hidden.unsqueeze(1)).sum(-1) + last.bias[items]  # [B, k]


class DotQHead(QHead):
    """``Q(s, a) = e_a^T g(s) + c_a``: ``g`` an MLP to the embedding size ``d``, ``e_a`` a trainable
    item table initialised from the encoder's (PMF) item embeddings, ``c_a`` a per-item bias.

    One Q-value costs ``O(d)``, and the full product is ~8x cheaper than the linear head at
    ML-100K size. It learns worse, though: PMF factors carry no item bias, and a scalar ``c_a``
    moves slowly under Adam (ML-100K, 20k steps: 0.37 against 0.55 average test reward).
    """

    def __init__(self, inputs: QHeadInputs) -> None:
        super().__init__(inputs)
        extractor = inputs.features_extractor
        if not hasattr(extractor, "item_embedding_table"):
            raise ValueError("q_head='dot' needs a state encoder with item embeddings; use q_head='linear'")
        table = extractor.item_embedding_table().detach().clone()  # [n_items, d]
        self.mlp = inputs.mlp(table.shape[1])  # g
        self.item_table = nn.Parameter(table)  # e_a
        self.item_bias = nn.Parameter(th.zeros(table.shape[0]))  # c_a

    def forward(self, features: th.Tensor | None, observation: PyTorchObs) -> th.Tensor:
        return self.mlp(features) @ self.item_table.T + self.item_bias  # [B, n_items]

    def item_values(self, features: th.Tensor | None, observation: PyTorchObs, items: th.Tensor) -> th.Tensor:
        out = self.mlp(features)  # [B, d]
        items = items.long()
        return (self.item_table[items] * out.unsqueeze(1)).sum(-1) + self.item_bias[items]  # [B, k]


def _item_array(item_features: Any, n_items: int) -> th.Tensor:
    """``item_features`` as a float32 ``(n_items, F)`` tensor (extra rows cut), or a clear error."""
    array = th.as_tensor(np.asarray(item_features, dtype=np.float32))
    if array.ndim != 2 or array.shape[0] < n_items or not th.isfinite(array).all():
        raise ValueError(f"item_features must be a finite (n_items={n_items}, F) array, got shape "
                         f"{tuple(array.shape)}")
    return array[:n_items]


class FeaturesQHead(QHead):
    """``Q(s, a) = g(s)^T phi_a + c_a`` with fixed item descriptors ``phi_a = [e_a / std(e), x_a]``.

    ``e_a`` is the encoder's (PMF) item embedding, ``x_a`` the item's content (genres, words;
    ``item_features``). Values generalise across items that share a descriptor: the
    linear-in-features Q of Li et al.'s LinUCB arms (WWW 2010) and Ie et al.'s SlateQ item
    features (IJCAI 2019), with the state side learned.

    :param item_features: ``(n_items, F)`` item content (``agents.make`` passes the scenario's,
        :func:`state_encoders.features.item_content_features`).
    """

    scenario_inputs: ClassVar[dict[str, str]] = {"item_features": "item_content"}

    def __init__(self, inputs: QHeadInputs, item_features: np.ndarray | None = None) -> None:
        super().__init__(inputs)
        n_items = self.n_items
        if item_features is None:
            raise ValueError("q_head='features' needs item_features, an (n_items, F) array of item content "
                             "(agents.make passes the scenario's; give policy_kwargs={'q_head_kwargs': "
                             "{'item_features': ...}})")
        blocks = [_item_array(item_features, n_items)]
        if hasattr(inputs.features_extractor, "item_embedding_table"):
            table = inputs.features_extractor.item_embedding_table().detach()[:n_items]  # [n_items, d]
            blocks.insert(0, table / table.std().clamp_min(1e-8))
        phi = th.cat(blocks, dim=1)  # [n_items, D]
        self.register_buffer("item_phi", phi)
        self.mlp = inputs.mlp(phi.shape[1])  # g
        self.item_bias = nn.Parameter(th.zeros(n_items))  # c_a

    def forward(self, features: th.Tensor | None, observation: PyTorchObs) -> th.Tensor:
        return self.mlp(features) @ self.item_phi.T + self.item_bias  # [B, n_items]

    def item_values(self, features: th.Tensor | None, observation: PyTorchObs, items: th.Tensor) -> th.Tensor:
        out = self.mlp(features)  # [B, D]
        items = items.long()
        return (self.item_phi[items] * out.unsqueeze(1)).sum(-1) + self.item_bias[items]  # [B, k]


class _HistoryTermHead(QHead):
    """A head with the term ``sum_c sum_n w_{c,n}(s) m_n cos_c(a, h_n)`` (:class:`HistoryQHead`)."""

    def _make_history_term(self, inputs: QHeadInputs, item_features: np.ndarray | None, name: str) -> None:
        n_items = self.n_items
        if "history_items" not in inputs.observation_space.spaces:
            raise ValueError(f"q_head={name!r} needs 'history_items' in the observation; use q_head='linear'")
        channels = []
        if hasattr(inputs.features_extractor, "item_embedding_table"):
            channels.append(inputs.features_extractor.item_embedding_table().detach()[:n_items].float())
        if item_features is not None:
            channels.append(_item_array(item_features, n_items))
        if not channels:
            raise ValueError(f"q_head={name!r} needs item embeddings (an encoder with item_embedding_table) "
                             "or item_features to compare the candidates with the history")
        width = max(c.shape[1] for c in channels)
        table = th.zeros(len(channels), n_items + 1, width)  # row n_items: the padding id, similarity 0
        for i, c in enumerate(channels):
            table[i, :n_items, : c.shape[1]] = F.normalize(c, dim=1)  # rows of zeros stay zero
        self.register_buffer("history_descriptors", table)  # [C, n_items + 1, W], unit rows
        self.history_length = int(inputs.observation_space["history_items"].shape[0])
        self.history_weights = nn.Linear(inputs.features_dim, len(channels) * self.history_length)  # w(s)
        nn.init.zeros_(self.history_weights.weight)  # starts without the term
        nn.init.zeros_(self.history_weights.bias)

    def history_term(self, observation: PyTorchObs, features: th.Tensor, items: th.Tensor | None) -> th.Tensor:
        """``sum_c sum_n w_{c,n}(s) m_n cos_c(a, h_n)`` ``[B, n_items]`` (or ``[B, k]`` for ``items``)."""
        table = self.history_descriptors  # [C, I + 1, W]
        n_items = table.shape[1] - 1
        ids = observation["history_items"].long().clamp(0, n_items)  # [B, N]
        mask = observation["history_mask"].to(features.dtype)  # [B, N]
        ids = th.where(mask > 0, ids, th.full_like(ids, n_items))
        weights = self.history_weights(features).view(features.shape[0], table.shape[0], -1) * mask.unsqueeze(1)
        history = table[:, ids]  # [C, B, N, W]
        # sum_n w_{c,n} h_n first: [C, B, W], then one product with the candidates
        pooled = (weights.permute(1, 0, 2).unsqueeze(-1) * history).sum(dim=2)
        if items is None:
            return th.einsum("cbw,ciw->bi", pooled, table[:, :n_items])  # [B, I]
        candidates = table[:, items.long()]  # [C, B, k, W]
        return (candidates * pooled.unsqueeze(2)).sum(dim=(0, 3))  # [B, k]


class HistoryQHead(LinearQHead, _HistoryTermHead):
    """The linear head plus a term in the candidate's similarity to the N items the episode showed last (recgym's).

    ``Q(s, a) = MLP(s)_a + sum_c sum_n w_{c,n}(s) m_n cos_c(a, h_n)``, ``h_n`` the n-th history
    item (``history_items``, skipped ones included), ``m_n`` its mask, channels ``c``: cosine of
    the encoder's (PMF) item embeddings and, with ``item_features`` (topic flags), cosine of
    those. ``w(s)`` is a linear map of the state to ``C x N`` weights, zero at the start (so the
    head starts as the linear one). A value learned for "one more item like the last ones"
    applies to every candidate at once; the candidate-to-history relevance of DIN's target
    attention (Zhou et al., KDD 2018), with fixed cosines and learned weights.

    :param item_features: ``(n_items, F)`` topic flags (``agents.make`` passes DEERS's item
        categories, :func:`agents.categories.item_categories`), or None for the embedding channel only.
    """

    scenario_inputs: ClassVar[dict[str, str]] = {"item_features": "item_categories"}

    def __init__(self, inputs: QHeadInputs, item_features: np.ndarray | None = None) -> None:
        super().__init__(inputs)
        self._make_history_term(inputs, item_features, "history")

    def forward(self, features: th.Tensor | None, observation: PyTorchObs) -> th.Tensor:
        return super().forward(features, observation) + self.history_term(observation, features, None)

    def item_values(self, features: th.Tensor | None, observation: PyTorchObs, items: th.Tensor) -> th.Tensor:
        return super().item_values(features, observation, items) + self.history_term(observation, features, items)


class LastFoldIn:
    """One-slot memo of the prior head's ``p_a(s)`` over the catalogue, shared by the online and target nets.

    A Double-DQN target scores the same next observations with both networks; the fold-in
    (a ridge regression per user, in numpy) depends only on the observation, so the second
    network reuses the first one's answer. The key is the identity of the observation's
    history tensors (they are held, so an id cannot be reused while cached).
    """

    _KEYS = ("history_items", "history_feedback", "history_mask")

    def __init__(self) -> None:
        self._key: tuple[th.Tensor, ...] | None = None
        self._value: th.Tensor | None = None

    def get(self, obs: PyTorchObs, compute: Callable[[], th.Tensor]) -> th.Tensor:
        """``compute()``, or its stored answer when ``obs`` holds the same tensors as last time."""
        key = tuple(obs[k] for k in self._KEYS)
        if self._key is None or any(a is not b for a, b in zip(key, self._key)):
            self._key, self._value = key, compute()
        return self._value


class FoldedInUser:
    """The user folded into a fitted embedding model from the ratings an observation shows, in torch.

    :func:`recgym.scenario.fold_in` on the model's item side, held as float64 tensors on the
    device of the first call (plain attributes, not buffers: a head's checkpoint keys stay its own).

    :param model: the fitted embedding model (``item_embeddings``, ``item_bias``, ``global_mean``,
        ``reg``, ``bias_reg``, ``scale``).
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self._tables: tuple[th.Tensor, ...] | None = None

    def __call__(self, observation: PyTorchObs, device: th.device) -> tuple[th.Tensor, th.Tensor]:
        """``(U [B, d], b [B])`` in float64 on ``device``."""
        model, scale = self.model, self.model.scale
        if self._tables is None or self._tables[0].device != device:
            self._tables = tuple(
                th.as_tensor(np.asarray(array, dtype=np.float64), device=device)
                for array in (model.item_embeddings, model.item_bias,
                              1.0 / np.r_[np.full(model.dim, model.reg), model.bias_reg]))
        ratings = observation["history_feedback"].to(device).double() * scale.half_range + scale.midpoint
        factors, item_bias, inverse_penalty = self._tables
        return fold_in(factors, item_bias, float(model.global_mean), inverse_penalty,
                       observation["history_items"], ratings, observation["history_mask"])


class PriorQHead(_HistoryTermHead):
    """A labelled hybrid: greedy-pmf's predicted rating is an *input* of this head, not learnt from the state.

    ``Q(s, a) = alpha(s) p_a(s) + beta(s) + c_a + (the history term of HistoryQHead)``, with
    ``p_a(s)`` greedy-pmf's predicted rating of ``a`` in reward units for the user folded in from
    the ratings the observation shows (:func:`recgym.scenario.fold_in`, for every user, so
    training and test users look alike), ``alpha, beta`` an MLP of the state (``alpha`` starts at
    1, so learning starts from the greedy ranking) and ``c_a`` per-item biases. RL's part is what
    the rating model does not know. A residual on a model-based prior, as in residual policy
    learning (Silver et al., arXiv:1812.06298). Because it is handed the rating model's answer,
    its results measure "greedy-pmf plus RL", never what an agent learns from the state.

    :param prior_model: the fitted embedding model (``item_embeddings``, ``item_bias``,
        ``global_mean``, ``scale``; ``agents.make`` passes the scenario's, the one greedy-pmf uses).
    :param item_features: topic flags of the history term (as :class:`HistoryQHead`).
    """

    scenario_inputs: ClassVar[dict[str, str]] = {"item_features": "item_categories", "prior_model": "embedding_model"}

    def __init__(self, inputs: QHeadInputs, prior_model: Any = None, item_features: np.ndarray | None = None) -> None:
        super().__init__(inputs)
        # the order of construction is the order of the random draws: history term, then the MLP
        self._make_history_term(inputs, item_features, "prior")
        self._make_prior(prior_model)
        self.prior_model = prior_model
        #: the fold-in memo, one for the online and the target network
        self.fold_in_memo: LastFoldIn = inputs.shared.setdefault("fold_in_memo", LastFoldIn())
        self.mlp = inputs.mlp(2)  # alpha, beta
        nn.init.zeros_(self.mlp[-1].weight)
        with th.no_grad():
            self.mlp[-1].bias.copy_(th.tensor([1.0, 0.0]))
        self.item_bias = nn.Parameter(th.zeros(self.n_items))  # c_a

    def _make_prior(self, prior_model: Any) -> None:
        if not all(hasattr(prior_model, k) for k in ("item_embeddings", "item_bias", "global_mean", "scale")):
            raise ValueError("q_head='prior' needs prior_model, a fitted embedding model such as the scenario's "
                             f"PMFSimulator (agents.make passes it), got {type(prior_model).__name__}")
        if prior_model.n_items < self.n_items:
            raise ValueError(f"prior_model has {prior_model.n_items} items, the action space {self.n_items}")
        factors = th.as_tensor(np.asarray(prior_model.item_embeddings, dtype=np.float64))[: self.n_items]
        bias = th.as_tensor(np.asarray(prior_model.item_bias, dtype=np.float64))[: self.n_items]
        self.register_buffer("prior_design", th.cat([factors, bias[:, None]], dim=1))  # [V_j, c_j]
        # over the whole model's items (the history may hold items past the action space)
        self.folded_in_user = FoldedInUser(prior_model)

    def prior(self, observation: PyTorchObs, items: th.Tensor | None) -> th.Tensor:
        """``p_a(s)``: the folded-in user's predicted rating, in reward units, ``[B, n_items]`` (or ``[B, k]``).

        No gradient flows into the prior: it is a fixed input. The whole catalogue's answer goes
        through :attr:`fold_in_memo`, which the target network's head shares.
        """
        if items is None:
            return self.fold_in_memo.get(observation, lambda: self.fold_in_ratings(observation, None))
        return self.fold_in_ratings(observation, items)

    def fold_in_ratings(self, observation: PyTorchObs, items: th.Tensor | None) -> th.Tensor:
        """:meth:`prior` computed afresh (no memo)."""
        model, scale = self.prior_model, self.prior_model.scale
        device = self.prior_design.device
        factors, user_bias = self.folded_in_user(observation, device)
        user = th.cat([factors, th.ones_like(user_bias).unsqueeze(1)], dim=1)  # [U_i, 1]
        design = self.prior_design if items is None else self.prior_design[items.long()]
        rating = design @ user.T if items is None else (design * user.unsqueeze(1)).sum(-1)
        if items is None:
            rating = rating.T  # [B, I]
        offset = (user_bias + model.global_mean - scale.midpoint).unsqueeze(1)  # b_i + mu - midpoint
        return ((rating + offset) / scale.half_range).float()

    def _values(self, features: th.Tensor, observation: PyTorchObs, items: th.Tensor | None) -> th.Tensor:
        scale, shift = self.mlp(features).unbind(dim=1)  # alpha(s), beta(s)
        bias = self.item_bias if items is None else self.item_bias[items.long()]
        return (scale.unsqueeze(1) * self.prior(observation, items) + shift.unsqueeze(1) + bias
                + self.history_term(observation, features, items))

    def forward(self, features: th.Tensor | None, observation: PyTorchObs) -> th.Tensor:
        return self._values(features, observation, None)

    def item_values(self, features: th.Tensor | None, observation: PyTorchObs, items: th.Tensor) -> th.Tensor:
        return self._values(features, observation, items)


class CrossQHead(QHead):
    """Learns the rating model's ranking and the topic rule from the state: ``f(s)^T phi_a + c_a + cross term``.

    ``Q(s, a) = (W_u u(s) + W_s s)^T phi_a + c_a + v(s) + sum_k w_k(s) m_k o(a, h_k)``:

    * ``phi_a = [V_a, c_a, g_a]``: the embedding model's item factors and item bias and the
      item's topic shares ``g_a`` (topic flags normalised to sum 1), fixed descriptors;
    * ``u(s) = [U, b, 1]``: the user folded into the embedding model from the ratings the
      observation shows (:func:`recgym.scenario.fold_in`, for every user, so training
      and test users look alike), ``s`` the encoder's state; ``W_u`` and ``W_s`` are learned
      linear maps, **zero at the start**: the head is not handed the model's rating, it learns
      the map from the user vector to the item descriptors from the reward;
    * ``o(a, h_k) = g_a^T t(h_k)``: the topic overlap of ``a`` with the k-th item the episode
      showed (``t`` its topic flags, ``m_k`` its mask), the cross features of the candidate
      with the recent history; ``w_k(s)`` a linear map of the state, zero at the start;
    * ``c_a`` per-item biases and ``v(s)`` (an MLP of the state plus a linear term in
      ``u(s)``) a value that does not depend on the item.

    ``greedy-pmf-topics`` is one setting of it: ``W_u u = [U, 1, 0] / h`` (``h`` the scale's
    half range) and ``w_k = -lambda`` on the rule's last ``window`` items (tests/test_q_heads.py
    checks that it then ranks items as the rule does). Linear in ``phi_a`` as the ``features``
    head, with the user side read from the fold-in rather than from the encoder alone.

    :param embedding_model: the fitted embedding model (``item_embeddings``, ``item_bias``,
        ``global_mean``, ``scale``, ``reg``, ``bias_reg``; ``agents.make`` passes the scenario's,
        fitted on the training users only). Its item side and its fold-in are used, never its
        predicted rating.
    :param item_features: ``(n_items, T)`` topic flags (``agents.make`` passes DEERS's item
        categories, :func:`agents.categories.item_categories`, the rule's topics).
    :param state_terms: with False, the encoder's state enters only ``v(s)``: ``f = W_u u(s)``
        (no ``W_s s``) and the ``w_k`` are learned constants, the rule's own form.
    """

    scenario_inputs: ClassVar[dict[str, str]] = {"embedding_model": "embedding_model",
                                                 "item_features": "item_categories"}

    def __init__(self, inputs: QHeadInputs, embedding_model: Any = None,
                 item_features: np.ndarray | None = None, state_terms: bool = True) -> None:
        super().__init__(inputs)
        n_items = self.n_items
        if not all(hasattr(embedding_model, k) for k in ("item_embeddings", "item_bias", "global_mean", "scale")):
            raise ValueError("q_head='cross' needs embedding_model, a fitted embedding model such as the scenario's "
                             f"PMFSimulator (agents.make passes it), got {type(embedding_model).__name__}")
        if embedding_model.n_items < n_items:
            raise ValueError(f"embedding_model has {embedding_model.n_items} items, the action space {n_items}")
        if item_features is None:
            raise ValueError("q_head='cross' needs item_features, (n_items, T) topic flags (agents.make passes "
                             "the scenario's item categories)")
        if "history_items" not in inputs.observation_space.spaces:
            raise ValueError("q_head='cross' needs 'history_items' in the observation; use q_head='linear'")
        self.embedding_model = embedding_model
        self.folded_in_user = FoldedInUser(embedding_model)
        flags = _item_array(item_features, n_items).double()  # [I, T]
        shares = flags / flags.sum(dim=1, keepdim=True).clamp_min(1.0)
        factors = th.as_tensor(np.asarray(embedding_model.item_embeddings, dtype=np.float64))[:n_items]
        bias = th.as_tensor(np.asarray(embedding_model.item_bias, dtype=np.float64))[:n_items]
        self.register_buffer("item_phi", th.cat([factors, bias[:, None], shares], dim=1).float())  # [I, D]
        # padding row n_items: no topic, so an empty history slot overlaps with nothing
        self.register_buffer("history_topics", th.cat([flags, th.zeros(1, flags.shape[1], dtype=flags.dtype)]).float())
        self.register_buffer("item_shares", shares.float())  # [I, T]
        self.user_dim = factors.shape[1] + 2  # [U, b, 1]
        self.history_length = int(inputs.observation_space["history_items"].shape[0])
        phi_dim = self.item_phi.shape[1]
        self.state_terms = bool(state_terms)
        #: how many of the state's coordinates W_s and w_k(s) read: all, or none (w_k its bias alone)
        self.state_inputs = int(inputs.features_dim) if self.state_terms else 0
        self.user_map = nn.Linear(self.user_dim, phi_dim, bias=False)  # W_u
        with warnings.catch_warnings():
            # with no state inputs the weights are empty and torch warns that initialising them does nothing
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors is a no-op")
            self.state_map = nn.Linear(self.state_inputs, phi_dim, bias=False)  # W_s
            self.cross_weights = nn.Linear(self.state_inputs, self.history_length)  # w_k(s)
        self.user_value = nn.Linear(self.user_dim, 1, bias=False)
        for layer in (self.user_map, self.state_map, self.cross_weights, self.user_value):
            nn.init.zeros_(layer.weight)  # learned from the reward, from nothing
        nn.init.zeros_(self.cross_weights.bias)
        self.value = inputs.mlp(1)  # v(s)
        self.item_bias = nn.Parameter(th.zeros(n_items))  # c_a
        #: the fold-in memo, one for the online and the target network
        self.fold_in_memo: LastFoldIn = inputs.shared.setdefault("fold_in_user_memo", LastFoldIn())

    def user_vector(self, observation: PyTorchObs) -> th.Tensor:
        """``u(s) = [U, b, 1]`` ``[B, d + 2]``: the user folded in from the ratings the observation shows."""
        def compute() -> th.Tensor:
            factors, bias = self.folded_in_user(observation, self.item_phi.device)
            return th.cat([factors, bias.unsqueeze(1), th.ones_like(bias).unsqueeze(1)], dim=1).float()

        return self.fold_in_memo.get(observation, compute)

    def cross_features(self, observation: PyTorchObs, items: th.Tensor | None) -> th.Tensor:
        """``o(a, h_k) m_k`` ``[B, I, N]`` (or ``[B, k, N]`` for ``items``): topic overlap with each shown item."""
        n_items = self.n_items
        ids = observation["history_items"].long().clamp(0, n_items)  # [B, N]
        mask = observation["history_mask"] > 0
        ids = th.where(mask, ids, th.full_like(ids, n_items))
        history = self.history_topics[ids]  # [B, N, T]
        if items is None:
            return th.einsum("it,bnt->bin", self.item_shares, history)
        return th.einsum("bkt,bnt->bkn", self.item_shares[items.long()], history)

    def _values(self, features: th.Tensor, observation: PyTorchObs, items: th.Tensor | None) -> th.Tensor:
        user = self.user_vector(observation)  # [B, d + 2]
        state = features[:, : self.state_inputs]  # [B, |s|] or [B, 0]
        taste = self.user_map(user) + self.state_map(state)  # f(s) [B, D]
        cross = self.cross_features(observation, items)  # [B, I or k, N]
        weights = self.cross_weights(state)  # [B, N]
        if items is None:
            preference = taste @ self.item_phi.T + self.item_bias  # [B, I]
        else:
            items = items.long()
            preference = (self.item_phi[items] * taste.unsqueeze(1)).sum(-1) + self.item_bias[items]
        value = self.value(features) + self.user_value(user)  # [B, 1]
        return preference + (cross * weights.unsqueeze(1)).sum(-1) + value

    def forward(self, features: th.Tensor | None, observation: PyTorchObs) -> th.Tensor:
        return self._values(features, observation, None)

    def item_values(self, features: th.Tensor | None, observation: PyTorchObs, items: th.Tensor) -> th.Tensor:
        return self._values(features, observation, items)


class TargetQHead(QHead):
    """For target-aware encoders (``target_state(observations, items)``, e.g. ``din``): ``Q(s, a) = g(s(a)) + c_a``.

    ``s(a)`` is the encoder's state with the candidate ``a`` as its query, ``g`` an MLP to one
    value. Scoring the whole catalogue runs the encoder once per item, so it is much slower than
    the other heads on a CPU.
    """

    uses_state: ClassVar[bool] = False

    def __init__(self, inputs: QHeadInputs) -> None:
        super().__init__(inputs)
        extractor = inputs.features_extractor
        if not callable(getattr(extractor, "target_state", None)):
            raise ValueError(
                f"q_head='target' needs a target-aware state encoder (with target_state(), e.g. 'din'), "
                f"got {type(extractor).__name__}; use q_head='linear' or 'dot'"
            )
        # a bound method, not the module: the encoder stays the Q-network's own (one copy of its parameters)
        self.target_state = extractor.target_state
        self.observation_space = inputs.observation_space
        self.normalize_images = inputs.normalize_images
        self.mlp = inputs.mlp(1)  # g
        self.item_bias = nn.Parameter(th.zeros(self.n_items))  # c_a

    def forward(self, features: th.Tensor | None, observation: PyTorchObs) -> th.Tensor:
        batch = observation["consumed"].shape[0]
        items = th.arange(self.n_items, device=self.item_bias.device).expand(batch, -1)  # [B, n_items]
        return self.item_values(features, observation, items)

    def item_values(self, features: th.Tensor | None, observation: PyTorchObs, items: th.Tensor) -> th.Tensor:
        processed = preprocess_obs(observation, self.observation_space, normalize_images=self.normalize_images)
        items = items.long()
        states = self.target_state(processed, items)  # [B, k, |s|]
        return self.mlp(states).squeeze(-1) + self.item_bias[items]  # [B, k]


#: The string names of the heads (run configs, scripts, saved runs): the one place they resolve.
Q_HEADS: dict[str, type[QHead]] = {
    "linear": LinearQHead,
    "dot": DotQHead,
    "features": FeaturesQHead,
    "history": HistoryQHead,
    "prior": PriorQHead,
    "target": TargetQHead,
    "cross": CrossQHead,
}


def resolve_q_head(q_head: str | type[QHead] | None = None, q_head_class: type[QHead] | None = None) -> type[QHead]:
    """The head class of ``policy_kwargs``: ``q_head_class``, or ``q_head`` (a name of :data:`Q_HEADS`
    or a class), or :class:`LinearQHead`.

    :raises ValueError: an unknown name, a class that is not a :class:`QHead`, or both arguments
        naming different heads.
    """
    resolved = []
    for given in (q_head, q_head_class):
        if given is None:
            continue
        if isinstance(given, str):
            if given not in Q_HEADS:
                raise ValueError(f"unknown q_head {given!r}; choose one of {list(Q_HEADS)} "
                                 "or give a QHead subclass as policy_kwargs['q_head_class']")
            given = Q_HEADS[given]
        if not (isinstance(given, type) and issubclass(given, QHead)):
            raise ValueError(f"a Q-head must be a subclass of agents.q_heads.QHead, got {given!r}")
        resolved.append(given)
    if len(resolved) == 2 and resolved[0] is not resolved[1]:
        raise ValueError(f"q_head={q_head!r} and q_head_class={q_head_class.__name__} disagree; give one of them")
    return resolved[0] if resolved else LinearQHead
