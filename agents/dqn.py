"""DQN over ``Discrete(n_items)`` with a state encoder and consumed-item masking.

V. Mnih et al. *Human-level control through deep reinforcement learning*.
Nature 2015 (the loss, the target network, ε-greedy exploration); the
"DQN" baseline of DRR (Liu et al. 2018) and DEERS (Zhao et al. 2018).

What recgym adds to stable-baselines3's DQN, and why:

* **State encoder.** The policy's features extractor is a state encoder from
  :mod:`state_encoders` (default DRR-ave), its item and user tables initialised
  from the simulator's PMF factors (as DRR's embeddings), then a head that
  gives one Q-value per item: SB3's MLP with one output per item (default), or
  ``Q(s, a) = e_a^T MLP(s) + c_a`` over a trainable item table initialised from
  PMF (``q_head="dot"``), or, for a target-aware encoder such as DIN,
  ``Q(s, a) = MLP(s(a)) + c_a`` with the candidate item as the encoder's query
  (``q_head="target"``); see :class:`MaskedQNetwork`.
* **Masking.** Items already in the episode (``obs["consumed"]``) can never be
  recommended again, so their Q-values are set to ``-inf`` before every argmax:
  at action selection (:class:`MaskedQNetwork`), in exploration (random
  *unconsumed* items) and in the TD target's ``max_a' Q(s', a')``. Without the
  target mask the bootstrap would value items the user can no longer get.
  SB3's DQN has no masking, hence the subclasses.
* **Double DQN** (van Hasselt et al., AAAI 2016) for the target, on by default:
  ``y = r + γ Q_target(s', argmax_a' Q(s', a'))``. With ~1,700 actions the plain
  ``max`` of noisy estimates overestimates strongly.
* **Per-row ε-greedy**: SB3 draws one coin for the whole batch of envs; here each
  env explores independently, with the agent's own seeded generator.
* Optional proportional PER (:mod:`agents.per`): the Huber loss is weighted by
  ``w_i`` and the priorities are set to the new ``|δ_i|``.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.dqn.policies import MultiInputPolicy, QNetwork
from torch import nn
from torch.nn import functional as F

from agents.arguments import check_constructor_arguments
from agents.common import as_batch, mask_consumed, random_available, random_unconsumed, replay_schedule
from agents.nstep import n_step_buffer_kwargs, take_n_steps
from agents.per import DEFAULT_ALPHA, DEFAULT_BETA0, DEFAULT_EPS, annealed_beta, use_prioritized_replay
from recgym.scenario import fold_in_users

#: Defaults for this domain, with their sources.
DQN_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-3,  # DRR reimplementations' critic learning rate
    "buffer_size": 100_000,  # DRR uses 1e6; 1e5 transitions (~80 MB of Dict observations) suffice here
    "batch_size": 64,  # DRR
    "learning_starts": 500,
    "gamma": 0.9,  # DRR: short-horizon recommendation episodes
    "exploration_fraction": 0.2,
    "exploration_initial_eps": 1.0,
    "exploration_final_eps": 0.05,  # SB3 / Nature DQN
    # environment steps (SB3 divides by n_envs): ~300 gradient steps at the default replay
    # ratio, as SB3's Atari setting (1,000 env steps at train_freq 4 = 250 updates). At 500
    # env steps (~30 updates) the target tracked the online net and the test reward on
    # ML-100K fell back towards random; at 5,000 it climbed steadily (docs/agents.md)
    "target_update_interval": 5_000,
    "train_freq": 1,  # every env.step call, i.e. n_envs transitions
    "max_grad_norm": 10.0,  # SB3
}
#: Gradient steps per transition when neither ``replay_ratio`` nor ``gradient_steps`` is given:
#: one batch of 64 per 4 transitions, i.e. each transition is replayed ~16 times (Nature DQN:
#: 32 per 4 steps, ~8 times). Tuned for sample efficiency on the training users (seed 100,
#: not a reported seed; docs/agents.md): on ML100K-Behavior-v1 with the DRR-ave state, 30k
#: steps, 45.1 against 31.4 reward per episode for the former 1/16 (chosen for throughput); on
#: ML100K-PMF with 100-step episodes, 20k steps, 0.435 against 0.417 reward per step.
DQN_REPLAY_RATIO = 1 / 4
#: Hidden layers of the MLP between the encoder's state and the Q head ([128]: 1,230
#: env steps/s at ML-100K size against 900 for [256], with the same test reward).
DQN_NET_ARCH = [128]


Q_HEADS = ("dot", "features", "history", "linear", "prior", "target")


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


class MaskedQNetwork(QNetwork):
    """Per-item Q-values over a state encoder, masked at action selection; ``q_values`` for chosen items.

    Three heads on top of the encoder's state ``s``:

    * ``"linear"`` (default): SB3's head, an MLP with one output per item.
    * ``"dot"``: ``Q(s, a) = e_a^T g(s) + c_a``, ``g`` an MLP to the embedding size
      ``d``, ``e_a`` a trainable item table initialised from the encoder's (PMF)
      item embeddings, ``c_a`` a per-item bias. One Q-value costs ``O(d)``, so the
      update touches only the taken action, and the full product is ~8x cheaper
      than the linear head at ML-100K size. It learns worse, though: PMF
      factors carry no item bias, and a scalar ``c_a`` moves slowly under Adam,
      while the linear head's 128 weights per item learn an item's value
      quickly (ML-100K, 20k steps: 0.37 against 0.55 average test reward).
    * ``"target"``: for target-aware encoders (those with a
      ``target_state(observations, items)`` method, e.g. ``din``), the state
      depends on the candidate: ``Q(s, a) = g(s(a)) + c_a``, ``s(a)`` the
      encoder's state with item ``a`` as its query, ``g`` an MLP to one value.
      Scoring the whole catalogue runs the encoder once per item, so it is
      much slower than the other heads on a CPU.
    * ``"history"`` (a recgym head, not from a paper): the linear head plus a term in
      the candidate's similarity to each of the N items the episode showed last,
      ``Q(s, a) = MLP(s)_a + sum_c sum_n w_{c,n}(s) m_n cos_c(a, h_n)``, with ``h_n``
      the n-th history item (``history_items``, skipped ones included), ``m_n`` its
      mask, and channels ``c``: cosine of the encoder's (PMF) item embeddings and,
      where the scenario has item topics (``item_features``: genre flags),
      cosine of those. ``w(s)`` is a linear map of the state to ``C x N`` weights.
      The simulated users tire of what resembles what they were just shown
      (boredom and satiation per topic, docs/simulators.md); with this term a
      value learned for "one more item like the last ones" applies to every
      candidate at once, where the per-item outputs would have to learn it for
      each item and each history separately. The candidate-to-history relevance
      is the same idea as DIN's target attention (Zhou et al., KDD 2018), here
      fixed cosines with learned weights.
    * ``"prior"`` (a recgym head): the embedding model's rating, folded in from the
      episode, as a feature of a small Q-function,
      ``Q(s, a) = alpha(s) p_a(s) + beta(s) + c_a + (the "history" term)``, with
      ``p_a(s)`` greedy-pmf's predicted rating of ``a`` in reward units for the user
      folded in from the ratings the observation shows (the same ridge regression as
      :func:`recgym.scenario.fold_in_users`, for every user, so training and test
      users are represented alike), ``alpha, beta`` an MLP of the state (``alpha``
      starts at 1, so the greedy ranking is where learning starts) and ``c_a`` a
      per-item bias. RL's part is what the rating model does not know: how
      much an item is worth beyond its rating (the history term, the biases). A
      residual on a model-based prior, as in residual policy learning (Silver et
      al., arXiv:1812.06298); ``prior_model`` is the fitted embedding model (the
      agents registry passes the scenario's, the one greedy-pmf uses).
    * ``"features"``: ``Q(s, a) = g(s)^T phi_a + c_a`` with fixed item descriptors
      ``phi_a = [e_a, x_a]``: the encoder's (PMF) item embedding and the item's
      content ``x_a`` (genres, words; ``item_features``). Values generalise across
      items that share a descriptor, so what is learned about one item of a genre
      moves every item of it: the shape of a user's satiation per genre (the
      Behavior-v1 users, docs/simulators.md) is a few directions of ``g(s)``
      instead of one output row per item. The same linear-in-features Q as
      Li et al.'s LinUCB arms (WWW 2010) and Ie et al.'s SlateQ item features
      (IJCAI 2019), with the state side learned.

    :param observation_space: the Dict observation space.
    :param action_space: ``Discrete(n_items)``.
    :param features_extractor: a state encoder.
    :param features_dim: size of the state ``s``.
    :param net_arch: hidden layers of the MLP.
    :param activation_fn: activation between layers.
    :param normalize_images: unused (SB3 signature).
    :param q_head: ``"dot"``, ``"features"``, ``"linear"`` or ``"target"``.
    :param item_features: ``(n_items, F)`` content of the items, for ``q_head="features"``
        (the agents registry passes the scenario's).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        q_head: str = "linear",
        item_features: np.ndarray | None = None,
        prior_model: Any = None,
        fold_in_memo: LastFoldIn | None = None,
    ) -> None:
        if q_head not in Q_HEADS:
            raise ValueError(f"unknown q_head {q_head!r}; choose one of {list(Q_HEADS)}")
        super().__init__(
            observation_space, action_space, features_extractor, features_dim, net_arch, activation_fn, normalize_images
        )
        self.q_head = q_head
        self.item_features = item_features
        self.prior_model = prior_model
        self.fold_in_memo = fold_in_memo if fold_in_memo is not None else LastFoldIn()
        if q_head == "prior":
            self._make_history_term(observation_space, features_extractor, features_dim, int(action_space.n),
                                    item_features)
            self._make_prior(prior_model, int(action_space.n))
            self.q_net = nn.Sequential(*create_mlp(features_dim, 2, self.net_arch, activation_fn))  # alpha, beta
            nn.init.zeros_(self.q_net[-1].weight)
            with th.no_grad():
                self.q_net[-1].bias.copy_(th.tensor([1.0, 0.0]))
            self.item_bias = nn.Parameter(th.zeros(int(action_space.n)))  # c_a
        elif q_head == "features":
            self._make_features_head(features_extractor, features_dim, int(action_space.n), item_features,
                                     activation_fn)
        elif q_head == "history":
            self._make_history_term(observation_space, features_extractor, features_dim, int(action_space.n),
                                    item_features)
        elif q_head == "dot":
            if not hasattr(features_extractor, "item_embedding_table"):
                raise ValueError("q_head='dot' needs a state encoder with item embeddings; use q_head='linear'")
            table = features_extractor.item_embedding_table().detach().clone()  # [n_items, d]
            self.q_net = nn.Sequential(*create_mlp(features_dim, table.shape[1], self.net_arch, activation_fn))  # g
            self.item_table = nn.Parameter(table)  # e_a
            self.item_bias = nn.Parameter(th.zeros(table.shape[0]))  # c_a
        elif q_head == "target":
            if not callable(getattr(features_extractor, "target_state", None)):
                raise ValueError(
                    f"q_head='target' needs a target-aware state encoder (with target_state(), e.g. 'din'), "
                    f"got {type(features_extractor).__name__}; use q_head='linear' or 'dot'"
                )
            self.q_net = nn.Sequential(*create_mlp(features_dim, 1, self.net_arch, activation_fn))  # g
            self.item_bias = nn.Parameter(th.zeros(int(action_space.n)))  # c_a

    def _make_features_head(self, features_extractor: BaseFeaturesExtractor, features_dim: int, n_items: int,
                            item_features: np.ndarray | None, activation_fn: type[nn.Module]) -> None:
        if item_features is None:
            raise ValueError("q_head='features' needs item_features, an (n_items, F) array of item content "
                             "(agents.make passes the scenario's; give policy_kwargs={'item_features': ...})")
        content = th.as_tensor(np.asarray(item_features, dtype=np.float32))
        if content.ndim != 2 or content.shape[0] < n_items or not th.isfinite(content).all():
            raise ValueError(f"item_features must be a finite (n_items={n_items}, F) array, got shape "
                             f"{tuple(content.shape)}")
        blocks = [content[:n_items]]
        if hasattr(features_extractor, "item_embedding_table"):
            table = features_extractor.item_embedding_table().detach()[:n_items]  # [n_items, d]
            blocks.insert(0, table / table.std().clamp_min(1e-8))
        phi = th.cat(blocks, dim=1)  # [n_items, D]
        self.register_buffer("item_phi", phi)
        self.q_net = nn.Sequential(*create_mlp(features_dim, phi.shape[1], self.net_arch, activation_fn))  # g
        self.item_bias = nn.Parameter(th.zeros(n_items))  # c_a

    def _make_history_term(self, observation_space: spaces.Space, features_extractor: BaseFeaturesExtractor,
                           features_dim: int, n_items: int, item_features: np.ndarray | None) -> None:
        if "history_items" not in observation_space.spaces:
            raise ValueError(f"q_head={self.q_head!r} needs 'history_items' in the observation; use q_head='linear'")
        channels = []
        if hasattr(features_extractor, "item_embedding_table"):
            channels.append(features_extractor.item_embedding_table().detach()[:n_items].float())
        if item_features is not None:
            topics = th.as_tensor(np.asarray(item_features, dtype=np.float32))
            if topics.ndim != 2 or topics.shape[0] < n_items or not th.isfinite(topics).all():
                raise ValueError(f"item_features must be a finite (n_items={n_items}, F) array, got shape "
                                 f"{tuple(topics.shape)}")
            channels.append(topics[:n_items])
        if not channels:
            raise ValueError(f"q_head={self.q_head!r} needs item embeddings (an encoder with item_embedding_table) "
                             "or item_features to compare the candidates with the history")
        width = max(c.shape[1] for c in channels)
        table = th.zeros(len(channels), n_items + 1, width)  # row n_items: the padding id, similarity 0
        for i, c in enumerate(channels):
            table[i, :n_items, : c.shape[1]] = F.normalize(c, dim=1)  # rows of zeros stay zero
        self.register_buffer("history_descriptors", table)  # [C, n_items + 1, W], unit rows
        self.history_length = int(observation_space["history_items"].shape[0])
        self.history_weights = nn.Linear(features_dim, len(channels) * self.history_length)  # w(s)
        nn.init.zeros_(self.history_weights.weight)  # starts as the linear head
        nn.init.zeros_(self.history_weights.bias)

    def _make_prior(self, prior_model: Any, n_items: int) -> None:
        if not all(hasattr(prior_model, k) for k in ("item_embeddings", "item_bias", "global_mean", "scale")):
            raise ValueError("q_head='prior' needs prior_model, a fitted embedding model such as the scenario's "
                             f"PMFSimulator (agents.make passes it), got {type(prior_model).__name__}")
        if prior_model.n_items < n_items:
            raise ValueError(f"prior_model has {prior_model.n_items} items, the action space {n_items}")
        factors = th.as_tensor(np.asarray(prior_model.item_embeddings, dtype=np.float64))[:n_items]
        bias = th.as_tensor(np.asarray(prior_model.item_bias, dtype=np.float64))[:n_items]
        self.register_buffer("prior_design", th.cat([factors, bias[:, None]], dim=1))  # [V_j, c_j]

    def _prior(self, obs: PyTorchObs, items: th.Tensor | None) -> th.Tensor:
        """``p_a(s)``: the folded-in user's predicted rating, in reward units, ``[B, n_items]`` (or ``[B, k]``).

        The user is :func:`recgym.scenario.fold_in_users` of the ratings the observation shows (no gradient
        flows into the prior: it is a fixed feature). The whole catalogue's answer goes through
        :attr:`fold_in_memo`, which the target network shares.
        """
        if items is None:
            return self.fold_in_memo.get(obs, lambda: self._fold_in_ratings(obs, None))
        return self._fold_in_ratings(obs, items)

    def _fold_in_ratings(self, obs: PyTorchObs, items: th.Tensor | None) -> th.Tensor:
        model, scale = self.prior_model, self.prior_model.scale
        numpy_obs = {k: obs[k].detach().cpu().numpy() for k in ("history_items", "history_feedback", "history_mask")}
        ratings = numpy_obs["history_feedback"].astype(np.float64) * scale.half_range + scale.midpoint
        factors, user_bias = fold_in_users(model, numpy_obs["history_items"], ratings, numpy_obs["history_mask"])
        # the fold-in runs in numpy; its answer joins the design matrix on the network's device
        device = self.prior_design.device
        user = th.as_tensor(np.concatenate([factors, np.ones((factors.shape[0], 1))], axis=1),
                            device=device)  # [U_i, 1]
        design = self.prior_design if items is None else self.prior_design[items.long()]
        rating = design @ user.T if items is None else (design * user.unsqueeze(1)).sum(-1)
        if items is None:
            rating = rating.T  # [B, I]
        offset = th.as_tensor(user_bias + model.global_mean - scale.midpoint,
                              device=device).unsqueeze(1)  # b_i + mu - midpoint
        return ((rating + offset) / scale.half_range).float()

    def _history_term(self, obs: PyTorchObs, features: th.Tensor, items: th.Tensor | None) -> th.Tensor:
        """``sum_c sum_n w_{c,n}(s) m_n cos_c(a, h_n)`` ``[B, n_items]`` (or ``[B, k]`` for ``items``)."""
        table = self.history_descriptors  # [C, I + 1, W]
        n_items = table.shape[1] - 1
        ids = obs["history_items"].long().clamp(0, n_items)  # [B, N]
        mask = obs["history_mask"].to(features.dtype)  # [B, N]
        ids = th.where(mask > 0, ids, th.full_like(ids, n_items))
        weights = self.history_weights(features).view(features.shape[0], table.shape[0], -1) * mask.unsqueeze(1)
        history = table[:, ids]  # [C, B, N, W]
        # sum_n w_{c,n} h_n first: [C, B, W], then one product with the candidates
        pooled = (weights.permute(1, 0, 2).unsqueeze(-1) * history).sum(dim=2)
        if items is None:
            return th.einsum("cbw,ciw->bi", pooled, table[:, :n_items])  # [B, I]
        candidates = table[:, items.long()]  # [C, B, k, W]
        return (candidates * pooled.unsqueeze(2)).sum(dim=(0, 3))  # [B, k]

    def q_values(self, obs: PyTorchObs, items: th.Tensor | None = None) -> th.Tensor:
        """``Q(s, ·)`` ``[B, n_items]``, or ``Q(s, a)`` for ``items`` ``[B, k]`` -> ``[B, k]``."""
        if self.q_head == "target":
            return self._target_q_values(obs, items)
        features = self.extract_features(obs, self.features_extractor)  # [B, |s|]
        if self.q_head == "history":
            return self._linear_q_values(features, items) + self._history_term(obs, features, items)
        if self.q_head == "prior":
            scale, shift = self.q_net(features).unbind(dim=1)  # alpha(s), beta(s)
            bias = self.item_bias if items is None else self.item_bias[items.long()]
            return (scale.unsqueeze(1) * self._prior(obs, items) + shift.unsqueeze(1) + bias
                    + self._history_term(obs, features, items))
        if self.q_head == "features":
            out = self.q_net(features)  # [B, D]
            if items is None:
                return out @ self.item_phi.T + self.item_bias  # [B, n_items]
            items = items.long()
            return (self.item_phi[items] * out.unsqueeze(1)).sum(-1) + self.item_bias[items]  # [B, k]
        if self.q_head == "linear":
            return self._linear_q_values(features, items)
        out = self.q_net(features)  # [B, d]
        if items is None:
            return out @ self.item_table.T + self.item_bias  # [B, n_items]
        items = items.long()
        return (self.item_table[items] * out.unsqueeze(1)).sum(-1) + self.item_bias[items]  # [B, k]

    def _linear_q_values(self, features: th.Tensor, items: th.Tensor | None) -> th.Tensor:
        if items is None:
            return self.q_net(features)  # [B, n_items]
        # only the output rows of the chosen items: O(B k h) instead of O(B n_items h)
        hidden = self.q_net[:-1](features)  # [B, h]
        last = self.q_net[-1]
        items = items.long()
        return (last.weight[items] * hidden.unsqueeze(1)).sum(-1) + last.bias[items]  # [B, k]

    def _target_q_values(self, obs: PyTorchObs, items: th.Tensor | None) -> th.Tensor:
        processed = preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)
        batch = processed["consumed"].shape[0]
        if items is None:
            items = th.arange(self.item_bias.shape[0], device=self.item_bias.device).expand(batch, -1)  # [B, n_items]
        items = items.long()
        states = self.features_extractor.target_state(processed, items)  # [B, k, |s|]
        return self.q_net(states).squeeze(-1) + self.item_bias[items]  # [B, k]

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        return self.q_values(obs)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        q_values = mask_consumed(self.q_values(observation), observation["consumed"])  # [B, n_items]
        return q_values.argmax(dim=1).reshape(-1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["q_head"] = self.q_head
        data["item_features"] = self.item_features
        data["prior_model"] = self.prior_model
        return data


class MaskedDQNPolicy(MultiInputPolicy):
    """DQN ``MultiInputPolicy`` (Dict observations) built from :class:`MaskedQNetwork` s.

    Subclasses change the Q-network by overriding :attr:`q_network_class`.

    :param q_head: passed to the Q-network (see :class:`MaskedQNetwork`); other
        arguments as SB3's ``MultiInputPolicy``.
    """

    q_network_class: ClassVar[type[BasePolicy]] = MaskedQNetwork

    def __init__(self, *args: Any, q_head: str = "linear", item_features: np.ndarray | None = None,
                 prior_model: Any = None, **kwargs: Any) -> None:
        self.q_head = q_head
        self.item_features = item_features
        self.prior_model = prior_model
        self.fold_in_memo = LastFoldIn()  # one for the online and the target network
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> QNetwork:
        # a fresh features extractor per network (online and target), as SB3 does
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        if self.q_network_class is MaskedQNetwork:
            net_args["q_head"] = self.q_head
            net_args["item_features"] = self.item_features
            net_args["prior_model"] = self.prior_model
            net_args["fold_in_memo"] = self.fold_in_memo
        return self.q_network_class(**net_args).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["q_head"] = self.q_head
        data["item_features"] = self.item_features
        data["prior_model"] = self.prior_model
        return data


class MaskedDQN(DQN):
    """SB3 DQN with consumed-item masking, Double-DQN targets and optional PER.

    Takes every argument of :class:`stable_baselines3.DQN`, with recgym's defaults
    (:data:`DQN_DEFAULTS`, :data:`DQN_REPLAY_RATIO`) and ``agents.make``'s range checks
    (:mod:`agents.arguments`), plus:

    :param double_q: use the Double-DQN target (van Hasselt et al. 2016).
    :param prioritized_replay: sample with proportional PER (Schaul et al. 2016).
    :param per_alpha: α of PER.
    :param per_beta0: initial β of PER, annealed linearly to 1 over ``learn``.
    :param per_eps: ε of PER.
    :param n_steps: n of n-step returns (:class:`agents.nstep.NStepDictReplayBuffer`; 1, the
        default, is the one-step target); not combined with PER.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MultiInputPolicy": MaskedDQNPolicy}

    def __init__(
        self,
        policy: str | type[MaskedDQNPolicy] = MaskedDQNPolicy,
        env: Any = None,
        *,
        double_q: bool = True,
        prioritized_replay: bool = False,
        per_alpha: float = DEFAULT_ALPHA,
        per_beta0: float = DEFAULT_BETA0,
        per_eps: float = DEFAULT_EPS,
        **kwargs: Any,
    ) -> None:
        # recgym's defaults, as agents.make gives them (a given argument wins), then make's checks
        kwargs = {**DQN_DEFAULTS, **replay_schedule(env, DQN_REPLAY_RATIO), **kwargs}
        check_constructor_arguments(type(self), {"double_q": double_q, "prioritized_replay": prioritized_replay,
                                                 "per_alpha": per_alpha, "per_beta0": per_beta0,
                                                 "per_eps": per_eps, **kwargs})
        self.double_q = bool(double_q)
        self.prioritized_replay = bool(prioritized_replay)
        self.per_beta0 = float(per_beta0)
        self.n_step_returns = take_n_steps(kwargs, self.prioritized_replay)
        if self.prioritized_replay:
            use_prioritized_replay(kwargs, per_alpha, per_beta0, per_eps)
        init_setup = kwargs.pop("_init_setup_model", True)
        super().__init__(policy, env, _init_setup_model=False, **kwargs)
        self.replay_buffer_kwargs = n_step_buffer_kwargs(self.n_step_returns, self.gamma, self.replay_buffer_kwargs)
        if init_setup:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        self.n_items = int(self.action_space.n)
        self._rng = np.random.default_rng(self.seed)
        # clip only what the optimizer trains (SB3 passes every policy parameter, the target net's included)
        self._trained_params = [p for p in self.q_net.parameters() if p.requires_grad]

    # -- acting ----------------------------------------------------------------------------
    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Greedy unconsumed item; with ``deterministic=False``, each row explores with prob. ε.

        :param observation: one observation or a batch (Dict of arrays).
        :param deterministic: skip ε-exploration.
        :param action_masks: optional ``(B, n_items)`` bool available items (the environment's
            ``action_masks()``); the choice, exploration included, is then restricted to them.
        :returns: ``(actions, state)``: an item id (0-d) or ``(B,)`` item ids.
        """
        batch, single = as_batch(observation)
        n_rows = batch["consumed"].shape[0]
        masks = None if action_masks is None else np.asarray(action_masks, dtype=bool).reshape(n_rows, self.n_items)
        explore = np.zeros(n_rows, dtype=bool)
        if not deterministic and self.exploration_rate > 0:
            explore = self._rng.random(n_rows) < self.exploration_rate
        actions = np.empty(n_rows, dtype=np.int64)
        if explore.any():
            actions[explore] = (random_unconsumed(batch["consumed"][explore], self.n_items, self._rng)
                                if masks is None else random_available(masks[explore], self._rng))
        if not explore.all():
            rows = np.flatnonzero(~explore)
            sub = batch if rows.size == n_rows else {k: v[rows] for k, v in batch.items()}
            if masks is None:
                greedy, _ = self.policy.predict(sub, deterministic=True)
            else:
                scores = self.action_scores(sub)
                scores[~masks[rows]] = -np.inf
                greedy = scores.argmax(axis=1)
            actions[rows] = np.asarray(greedy).reshape(-1)
        return (actions[0] if single else actions), state

    def action_scores(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """``(B, n_items)`` Q-values of a batched observation, consumed items at ``-inf``."""
        obs_tensor, _ = self.policy.obs_to_tensor(observation)
        with th.no_grad():
            q = mask_consumed(self.q_net.q_values(obs_tensor), obs_tensor["consumed"])
        return q.cpu().numpy().astype(np.float64)

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        # warm-up: uniformly random *unconsumed* items, so the stored action is the item
        # the env actually recommends (SB3 samples the whole space; the env would
        # substitute a consumed item and the buffer would record the wrong action)
        assert self._last_obs is not None
        if self.num_timesteps < learning_starts:
            actions = random_unconsumed(self._last_obs["consumed"], self.n_items, self._rng)
        else:
            actions, _ = self.predict(self._last_obs, deterministic=False)
        actions = np.asarray(actions).reshape(n_envs)
        return actions, actions

    # -- learning --------------------------------------------------------------------------
    def td_target(self, next_observations: dict[str, th.Tensor], rewards: th.Tensor, dones: th.Tensor,
                  discounts: th.Tensor | float) -> th.Tensor:
        """``y = r + (1 - done) γ max_a' Q_target(s', a')`` over unconsumed ``a'`` ([B, 1]).

        With :attr:`double_q` the maximiser comes from the online network. A
        next state with every item consumed has no action: its value is 0.
        """
        with th.no_grad():
            next_q_target = mask_consumed(self.q_net_target(next_observations), next_observations["consumed"])
            if self.double_q:
                next_q_online = mask_consumed(self.q_net(next_observations), next_observations["consumed"])
                best = next_q_online.argmax(dim=1, keepdim=True)
                next_q = next_q_target.gather(1, best)
            else:
                next_q = next_q_target.max(dim=1, keepdim=True).values
            next_q = th.where(th.isfinite(next_q), next_q, th.zeros_like(next_q))
            return rewards + (1 - dones) * discounts * next_q

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's DQN update with masked (Double-)DQN targets and optional PER weights."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        if self.prioritized_replay:
            self.replay_buffer.beta = annealed_beta(self.per_beta0, self._current_progress_remaining)

        losses = []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if data.discounts is not None else self.gamma
            target = self.td_target(data.next_observations, data.rewards, data.dones, discounts)
            current = self.q_net.q_values(data.observations, data.actions.long())  # [B, 1]
            elementwise = F.smooth_l1_loss(current, target, reduction="none")  # Huber, as SB3
            if self.prioritized_replay:
                loss = (data.weights * elementwise).mean()
                self.replay_buffer.update_priorities(data.indices, (current - target).detach())
            else:
                loss = elementwise.mean()
            losses.append(loss.item())

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self._trained_params, self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_rng", "_trained_params"]
