"""DQN over ``Discrete(n_items)`` with a state encoder and consumed-item masking.

V. Mnih et al. *Human-level control through deep reinforcement learning*.
Nature 2015 (the loss, the target network, ε-greedy exploration); the
"DQN" baseline of DRR (Liu et al. 2018) and DEERS (Zhao et al. 2018).

What recgym adds to stable-baselines3's DQN, and why:

* **State encoder.** The policy's features extractor is a state encoder from
  :mod:`state_encoders` (default DRR-ave), its item and user tables initialised
  from the simulator's PMF factors (as DRR's embeddings), then a Q-head
  (:mod:`agents.q_heads`) that gives one Q-value per item from the state: SB3's
  MLP with one output per item (default), a dot product with item embeddings or
  item descriptors, a similarity-to-the-history term, a target-aware encoder's
  per-candidate state, or the labelled hybrid that takes greedy-pmf's rating as
  an input. Heads are classes plugged in through ``policy_kwargs``
  (``q_head_class`` / ``q_head_kwargs``, as SB3's features extractors), their
  names (``q_head="history"``) aliases; see :class:`MaskedQNetwork`.
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

from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.dqn.policies import MultiInputPolicy, QNetwork
from torch import nn
from torch.nn import functional as F

from agents.arguments import DQNArguments, check_constructor_arguments
from agents.masking import as_batch, mask_consumed
from agents.optim import replay_schedule
from agents.per import annealed_beta
from agents.q_heads import Q_HEADS, LastFoldIn, LinearQHead, QHead, QHeadInputs, resolve_q_head
from agents.replay import init_with_replay
from agents.sampling import random_available, random_unconsumed

__all__ = ["DQN_NET_ARCH", "LastFoldIn", "MaskedDQN", "MaskedDQNPolicy",
           "MaskedQNetwork", "Q_HEADS", "head_arguments"]

#: Hidden layers of the MLP between the encoder's state and the Q head ([128]: 1,230
#: env steps/s at ML-100K size against 900 for [256], with the same test reward).
DQN_NET_ARCH = [128]


#: Names of the Q-network's parameters and buffers before the heads became classes (3fb2803 and
#: earlier); a saved run holding them is read into ``head.`` (MaskedQNetwork._read_legacy_layout).
_LEGACY_HEAD_ENTRIES = ("item_bias", "item_table", "item_phi", "prior_design", "history_descriptors",
                        "history_weights.weight", "history_weights.bias")


class MaskedQNetwork(QNetwork):
    """Per-item Q-values ``head(encoder(obs), obs)``, masked at action selection; ``q_values`` for chosen items.

    The encoder is SB3's features extractor (a state encoder), the head a
    :class:`agents.q_heads.QHead` (``LinearQHead``, the default; ``DotQHead``, ``FeaturesQHead``,
    ``HistoryQHead``, ``CrossQHead``, ``TargetQHead``, and the labelled hybrid ``PriorQHead``, which takes
    greedy-pmf's rating as an input; docs/agents.md). SB3's per-item MLP is built first, as SB3's
    ``QNetwork`` does, so that a seed gives the initial weights it gave before heads were classes.

    :param observation_space: the Dict observation space.
    :param action_space: ``Discrete(n_items)``.
    :param features_extractor: a state encoder.
    :param features_dim: size of the state ``s``.
    :param net_arch: hidden layers of the head's MLP.
    :param activation_fn: activation between layers.
    :param normalize_images: SB3's preprocessing flag.
    :param q_head_class: the head class (:func:`agents.q_heads.resolve_q_head` of the policy's arguments).
    :param q_head_kwargs: the head's own arguments (e.g. ``item_features``).
    :param shared: a dict shared with the other network's head (caches), see :class:`QHeadInputs`.
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
        q_head_class: type[QHead] = LinearQHead,
        q_head_kwargs: dict[str, Any] | None = None,
        shared: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor, features_dim, net_arch, activation_fn, normalize_images
        )
        per_item_mlp = self.q_net  # SB3's, built (and its initial weights drawn) before any head's
        del self.q_net
        self.q_head_class = resolve_q_head(q_head_class=q_head_class)
        self.q_head_kwargs = dict(q_head_kwargs or {})
        inputs = QHeadInputs(
            observation_space=observation_space, features_extractor=features_extractor, features_dim=features_dim,
            n_items=int(action_space.n), net_arch=list(self.net_arch), activation_fn=activation_fn,
            normalize_images=normalize_images, per_item_mlp=per_item_mlp,
            shared=shared if shared is not None else {},
        )
        try:
            self.head = self.q_head_class(inputs, **self.q_head_kwargs)
        except TypeError as error:
            raise TypeError(f"{self.q_head_class.__name__}(inputs, **q_head_kwargs) failed with q_head_kwargs "
                            f"{sorted(self.q_head_kwargs)}: {error}") from error
        self.register_load_state_dict_pre_hook(self._read_legacy_layout)

    @staticmethod
    def _read_legacy_layout(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # saved runs from before the heads were classes keep the head's entries on the network itself
        # ("q_net.0.weight" for the MLP, "item_bias", ...); they are the head's now ("head.mlp.0.weight")
        for key in [k for k in state_dict if k.startswith(prefix)]:
            name = key[len(prefix):]
            if name.startswith("q_net."):
                state_dict[prefix + "head.mlp." + name[len("q_net."):]] = state_dict.pop(key)
            elif name in _LEGACY_HEAD_ENTRIES:
                state_dict[prefix + "head." + name] = state_dict.pop(key)

    def legacy_parameter_order(self) -> list[int]:
        """Indices into ``parameters()`` in the order the network listed them before heads were classes.

        That order was: the head's own parameters (``item_table``, ``item_bias``), the encoder's,
        the MLP's, the history weights. A saved optimizer state is indexed by it.
        """
        def rank(name: str) -> int:
            if name.startswith("features_extractor."):
                return 1
            if name.startswith("head.mlp."):
                return 2
            if name.startswith("head.history_weights."):
                return 3
            return 0

        names = [n for n, _ in self.named_parameters()]
        return sorted(range(len(names)), key=lambda i: rank(names[i]))

    def q_values(self, obs: PyTorchObs, items: th.Tensor | None = None) -> th.Tensor:
        """``Q(s, ·)`` ``[B, n_items]``, or ``Q(s, a)`` for ``items`` ``[B, k]`` -> ``[B, k]``."""
        features = self.extract_features(obs, self.features_extractor) if self.head.uses_state else None
        if items is None:
            return self.head(features, obs)  # [B, n_items]
        return self.head.item_values(features, obs, items)  # [B, k]

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        return self.q_values(obs)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        q_values = mask_consumed(self.q_values(observation), observation["consumed"])  # [B, n_items]
        return q_values.argmax(dim=1).reshape(-1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["q_head_class"] = self.q_head_class
        data["q_head_kwargs"] = self.q_head_kwargs
        return data


def head_arguments(
    q_head: str | type[QHead] | None = None,
    q_head_class: type[QHead] | None = None,
    q_head_kwargs: dict[str, Any] | None = None,
    item_features: np.ndarray | None = None,
    prior_model: Any = None,
) -> tuple[type[QHead], dict[str, Any]]:
    """The head class and its arguments from a policy's ``policy_kwargs``.

    ``q_head`` (a name or a class) and ``q_head_class`` name the head; ``item_features`` and
    ``prior_model`` at the top of ``policy_kwargs`` are the arguments' names before heads were
    classes (saved runs hold them): they go to a head that declares them in
    ``scenario_inputs`` unless ``q_head_kwargs`` gives them, and are ignored by the others, as before.
    """
    head = resolve_q_head(q_head, q_head_class)
    kwargs = dict(q_head_kwargs or {})
    for name, value in (("item_features", item_features), ("prior_model", prior_model)):
        if value is not None and name in head.scenario_inputs and kwargs.get(name) is None:
            kwargs[name] = value
    return head, kwargs


class MaskedDQNPolicy(MultiInputPolicy):
    """DQN ``MultiInputPolicy`` (Dict observations) built from :class:`MaskedQNetwork` s.

    Subclasses change the Q-network by overriding :attr:`q_network_class`.

    :param q_head_class: a :class:`agents.q_heads.QHead` subclass (default ``LinearQHead``).
    :param q_head_kwargs: its arguments, as SB3's ``features_extractor_kwargs``.
    :param q_head: a head's name in :data:`agents.q_heads.Q_HEADS` (``"history"``, ...) or a class:
        the same as ``q_head_class``, kept for run configs and saved runs.
    :param item_features: :func:`head_arguments` (the argument's place before heads were classes).
    :param prior_model: likewise. Other arguments as SB3's ``MultiInputPolicy``.
    """

    q_network_class: ClassVar[type[BasePolicy]] = MaskedQNetwork

    def __init__(self, *args: Any, q_head: str | type[QHead] | None = None, q_head_class: type[QHead] | None = None,
                 q_head_kwargs: dict[str, Any] | None = None, item_features: np.ndarray | None = None,
                 prior_model: Any = None, **kwargs: Any) -> None:
        self.q_head_class, self.q_head_kwargs = head_arguments(q_head, q_head_class, q_head_kwargs,
                                                               item_features, prior_model)
        self.shared_head_state: dict[str, Any] = {}  # one for the online and the target network
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> QNetwork:
        # a fresh features extractor per network (online and target), as SB3 does
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        if issubclass(self.q_network_class, MaskedQNetwork):
            net_args["q_head_class"] = self.q_head_class
            net_args["q_head_kwargs"] = self.q_head_kwargs
            net_args["shared"] = self.shared_head_state
        return self.q_network_class(**net_args).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["q_head_class"] = self.q_head_class
        data["q_head_kwargs"] = self.q_head_kwargs
        return data

class MaskedDQN(DQN):
    """SB3 DQN with consumed-item masking, Double-DQN targets and optional PER.

    Takes every argument of :class:`stable_baselines3.DQN`, with the defaults and range checks of
    ``agents.make`` (:attr:`arguments`, :class:`agents.arguments.DQNArguments`; ``train_freq`` and
    ``gradient_steps`` from its ``replay_ratio``), plus:

    :param double_q: use the Double-DQN target (van Hasselt et al. 2016).
    :param prioritized_replay: sample with proportional PER (Schaul et al. 2016).
    :param per_alpha: α of PER.
    :param per_beta0: initial β of PER, annealed linearly to 1 over ``learn``.
    :param per_eps: ε of PER.
    :param n_steps: n of n-step returns (:class:`agents.nstep.NStepDictReplayBuffer`; 1, the
        default, is the one-step target); not combined with PER.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MultiInputPolicy": MaskedDQNPolicy}
    #: the figures of :meth:`compute_loss`'s ``parts`` that :meth:`train` averages into the logger (``train/<name>``)
    logged_loss_parts: ClassVar[tuple[str, ...]] = ()
    #: the model of the arguments: their defaults and allowed values
    arguments: ClassVar[type[DQNArguments]] = DQNArguments

    def __init__(
        self,
        policy: str | type[MaskedDQNPolicy] = MaskedDQNPolicy,
        env: Any = None,
        *,
        double_q: bool = DQNArguments.default("double_q"),
        prioritized_replay: bool = DQNArguments.default("prioritized_replay"),
        per_alpha: float = DQNArguments.default("per_alpha"),
        per_beta0: float = DQNArguments.default("per_beta0"),
        per_eps: float = DQNArguments.default("per_eps"),
        **kwargs: Any,
    ) -> None:
        # the model's defaults, as agents.make gives them (a given argument wins), then make's checks
        arguments = type(self).arguments
        kwargs = {**arguments.given_defaults("sb3"), **replay_schedule(env, arguments.default("replay_ratio")),
                  **kwargs}
        check_constructor_arguments(type(self), {"double_q": double_q, "prioritized_replay": prioritized_replay,
                                                 "per_alpha": per_alpha, "per_beta0": per_beta0,
                                                 "per_eps": per_eps, **kwargs})
        self.double_q = bool(double_q)
        init_with_replay(self, super().__init__, policy, env, kwargs, prioritized_replay=prioritized_replay,
                         per_alpha=per_alpha, per_beta0=per_beta0, per_eps=per_eps)

    def _setup_model(self) -> None:
        super()._setup_model()
        self.n_items = int(self.action_space.n)
        self._rng = np.random.default_rng(self.seed)
        # clip only what the optimizer trains (SB3 passes every policy parameter, the target net's included)
        params = list(self.q_net.parameters())
        if isinstance(self.q_net, MaskedQNetwork):
            # in the order the network listed them before heads were classes: the clipped norm sums
            # the parameters' norms in this order, and a seed should train as it did, bit for bit
            params = [params[i] for i in self.q_net.legacy_parameter_order()]
        self._trained_params = [p for p in params if p.requires_grad]

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

    def compute_loss(self, data: Any) -> tuple[th.Tensor, th.Tensor, dict[str, float]]:
        """The masked (Double-)DQN loss on one sampled batch: Huber on the TD error, as SB3, PER-weighted.

        :param data: replay samples (SB3 ``DictReplayBufferSamples``, the PER or the n-step variant).
        :returns: ``(loss, td_errors [B, 1], parts)``; ``parts`` holds the figures named in
            :attr:`logged_loss_parts` (none for DQN).
        """
        discounts = data.discounts if data.discounts is not None else self.gamma
        target = self.td_target(data.next_observations, data.rewards, data.dones, discounts)
        current = self.q_net.q_values(data.observations, data.actions.long())  # [B, 1]
        elementwise = F.smooth_l1_loss(current, target, reduction="none")  # Huber, as SB3
        loss = (data.weights * elementwise).mean() if self.prioritized_replay else elementwise.mean()
        return loss, (current - target).detach(), {}

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """Gradient steps on :meth:`compute_loss` (a subclass changes the loss, not the loop), PER priorities
        refreshed from each batch's TD errors."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        if self.prioritized_replay:
            self.replay_buffer.beta = annealed_beta(self.per_beta0, self._current_progress_remaining)

        losses: list[float] = []
        parts_logged: dict[str, list[float]] = {name: [] for name in self.logged_loss_parts}
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            loss, td_errors, parts = self.compute_loss(data)
            if self.prioritized_replay:
                self.replay_buffer.update_priorities(data.indices, td_errors)
            losses.append(loss.item())
            for name, values in parts_logged.items():
                values.append(parts[name])

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self._trained_params, self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))
        for name, values in parts_logged.items():
            self.logger.record(f"train/{name}", float(np.mean(values)))

    def set_parameters(self, load_path_or_dict: str | dict[str, Any], exact_match: bool = True,
                       device: th.device | str = "auto") -> None:
        """SB3's, plus runs saved before the Q-heads were classes: their optimizer state is reordered.

        The parameters' names are mapped by :class:`MaskedQNetwork`'s load hook; the optimizer's
        state is indexed by position, which was :meth:`MaskedQNetwork.legacy_parameter_order`.
        """
        params = load_path_or_dict
        if not isinstance(params, dict):
            _, params, _ = load_from_zip_file(params, device=device, load_data=False)
        policy = params.get("policy") or {}
        legacy = isinstance(self.q_net, MaskedQNetwork) and any(k.startswith("q_net.q_net.") for k in policy)
        if legacy and "policy.optimizer" in params:
            order = self.q_net.legacy_parameter_order()  # old position -> new position
            optimizer = dict(params["policy.optimizer"])
            optimizer["state"] = {order[i]: state for i, state in optimizer["state"].items()}
            params = {**params, "policy.optimizer": optimizer}
        super().set_parameters(params, exact_match=exact_match, device=device)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_rng", "_trained_params"]
