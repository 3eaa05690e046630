"""DRR's actor-critic (Liu et al. 2018) on stable-baselines3's DDPG, with prioritized replay.

F. Liu, R. Tang, X. Li, W. Zhang, Y. Ye, H. Chen, H. Guo, Y. Zhang. *Deep
Reinforcement Learning based Recommendation with Explicit User-Item
Interactions Modeling*. arXiv:1810.12027 (Sec. III-C "Training procedure",
Algorithm 1), on DDPG (Lillicrap et al., ICLR 2016).

* **Actor** ``a = π(s) ∈ [-1, 1]^d``: the state module (a state encoder, DRR-ave
  by default) then an MLP with a tanh output. The environment (action mode
  ``"embedding"``) scores every item by ``a · e_i`` with the PMF item
  embeddings scaled into ``[-1, 1]`` and recommends the best unconsumed one, so
  the one place where a vector becomes an item is the env's action mapper.
* **Critic** ``Q(s, a) = MLP([s, a])`` (DRR's critic takes the state and the
  action vector).
* **Updates** (Algorithm 1): critic loss ``Σ_i w_i (y_i - Q(s_i, a_i))^2`` with
  ``y_i = r_i + γ Q'(s'_i, π'(s'_i))``; actor by the deterministic policy
  gradient ``-mean Q(s, π(s))`` (plus a saturation penalty, below); soft target updates with ``τ``; transitions
  sampled by proportional PER (:mod:`agents.per`), priorities ``|δ_i|``.
* **Exploration**: Ornstein-Uhlenbeck noise on the actor output (DDPG, DRR
  reimplementations), one process per environment row, reset at episode end.

Encoders and gradients (see REFERENCES.md): SB3 gives the actor and the critic
*separate* features extractors by default (``share_features_extractor=False``),
and so does this agent: the actor's state module learns from the actor loss,
the critic's from the critic loss. With a shared extractor SB3 would feed the
critic the actor's features without gradient, so the state module would never
see the TD error. The price is a second copy of the (small) state module.

**Departure from DRR: a penalty against tanh saturation.** The environment
scores items by ``a · e_i``, so only the direction of ``a`` matters and nothing
in the critic's gradient bounds the actor's pre-tanh outputs ``z``: they grow
until tanh saturates, the actor's gradient vanishes and every user gets the
same corner of the cube. On ML-100K (16 envs, 20k steps) 97% of the action
coordinates ended at ±1, all 189 test users got the same first item, and the
test reward fell from 0.46 to 0.19-0.26. The actor loss therefore adds
``λ mean(z^2)`` (``action_penalty``, default 0.1): 1-2% saturated, 13-17
distinct first items, 0.44-0.49 without collapse. ``action_penalty=0`` gives
the paper's loss.

``ddpg`` in the registry is this class with the ``"mean"`` encoder and uniform
replay: DRR's "DDPG" baseline, i.e. the same actor-critic without the DRR
state-representation module.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3 import DDPG
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.td3.policies import MultiInputPolicy
from torch.nn import functional as F

from agents.arguments import NOISE_KINDS, DRRArguments, check_constructor_arguments
from agents.optim import replay_schedule
from agents.per import annealed_beta
from agents.replay import init_with_replay

#: Actor and critic MLPs on top of the state module.
DRR_NET_ARCH = {"pi": [256, 256], "qf": [256, 256]}
#: Ornstein-Uhlenbeck noise (Lillicrap et al. 2016: θ = 0.15, σ = 0.2).
OU_THETA = 0.15
OU_SIGMA = DRRArguments.default("noise_sigma")


def make_action_noise(kind: str, dim: int, sigma: float = OU_SIGMA, theta: float = OU_THETA) -> ActionNoise | None:
    """Exploration noise for a ``dim``-dimensional actor.

    :param kind: ``"ou"`` (Ornstein-Uhlenbeck, DDPG/DRR), ``"gaussian"`` or ``"none"``.
    :param dim: action dimension ``d``.
    :param sigma: noise scale σ (per coordinate, in the [-1, 1] action units).
    :param theta: mean reversion θ of the OU process.
    """
    if kind == "ou":
        return OrnsteinUhlenbeckActionNoise(np.zeros(dim), sigma * np.ones(dim), theta=theta)
    if kind == "gaussian":
        return NormalActionNoise(np.zeros(dim), sigma * np.ones(dim))
    if kind == "none":
        return None
    raise ValueError(f"unknown action noise {kind!r}; choose one of {list(NOISE_KINDS)}")


class DRR(DDPG):
    """DDPG with DRR's settings: separate actor/critic learning rates and optional proportional PER.

    Takes every argument of :class:`stable_baselines3.DDPG` (``learning_rate`` is
    the critic's), with the defaults and range checks of ``agents.make`` (:attr:`arguments`,
    :class:`agents.arguments.DRRArguments`; ``train_freq`` and ``gradient_steps`` from its
    ``replay_ratio``), plus:

    :param actor_learning_rate: the actor's Adam learning rate (DRR: 1e-4).
    :param action_penalty: λ of the actor's ``λ mean(z^2)`` penalty on its pre-tanh outputs
        ``z`` (0 gives DRR's loss; see the module docstring).
    :param prioritized_replay: sample with proportional PER (DRR: yes).
    :param per_alpha: α of PER.
    :param per_beta0: initial β of PER, annealed linearly to 1 over ``learn``.
    :param per_eps: ε of PER.
    :param n_steps: n of n-step returns (:class:`agents.nstep.NStepDictReplayBuffer`); needs
        ``prioritized_replay=False``.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MultiInputPolicy": MultiInputPolicy}
    #: the model of the arguments: their defaults and allowed values (``ddpg``'s differ in ``prioritized_replay``)
    arguments: ClassVar[type[DRRArguments]] = DRRArguments

    def __init__(
        self,
        policy: str | type[BasePolicy] = MultiInputPolicy,
        env: Any = None,
        *,
        actor_learning_rate: float = DRRArguments.default("actor_learning_rate"),
        action_penalty: float = DRRArguments.default("action_penalty"),
        prioritized_replay: bool = DRRArguments.default("prioritized_replay"),
        per_alpha: float = DRRArguments.default("per_alpha"),
        per_beta0: float = DRRArguments.default("per_beta0"),
        per_eps: float = DRRArguments.default("per_eps"),
        **kwargs: Any,
    ) -> None:
        # the model's defaults, as agents.make gives them (a given argument wins), then make's checks
        arguments = type(self).arguments
        kwargs = {**arguments.given_defaults("sb3"), **replay_schedule(env, arguments.default("replay_ratio")),
                  **kwargs}
        check_constructor_arguments(type(self), {"actor_learning_rate": actor_learning_rate,
                                                 "action_penalty": action_penalty,
                                                 "prioritized_replay": prioritized_replay, "per_alpha": per_alpha,
                                                 "per_beta0": per_beta0, "per_eps": per_eps, **kwargs})
        self.actor_learning_rate = float(actor_learning_rate)
        self.action_penalty = float(action_penalty)
        init_with_replay(self, super().__init__, policy, env, kwargs, prioritized_replay=prioritized_replay,
                         per_alpha=per_alpha, per_beta0=per_beta0, per_eps=per_eps)

    def _setup_model(self) -> None:
        super()._setup_model()
        self._set_learning_rates()
        # soft updates only over trained parameters: frozen PMF tables are equal in both copies
        self._soft_pairs = [
            _trainable_pairs(self.critic, self.critic_target),
            _trainable_pairs(self.actor, self.actor_target),
        ]

    def _set_learning_rates(self) -> None:
        # SB3 uses one learning rate for both networks; DRR's actor learns 10x slower
        critic_lr = self.lr_schedule(self._current_progress_remaining)
        for group in self.actor.optimizer.param_groups:
            group["lr"] = self.actor_learning_rate
        for group in self.critic.optimizer.param_groups:
            group["lr"] = critic_lr

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """DRR's Algorithm 1 update, ``gradient_steps`` times."""
        self.policy.set_training_mode(True)
        self._set_learning_rates()
        if self.prioritized_replay:
            self.replay_buffer.beta = annealed_beta(self.per_beta0, self._current_progress_remaining)

        actor_losses, critic_losses = [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if data.discounts is not None else self.gamma

            with th.no_grad():
                # DDPG target (no TD3 smoothing noise, one critic)
                next_actions = self.actor_target(data.next_observations)
                next_q = self.critic_target(data.next_observations, next_actions)[0]
                target = data.rewards + (1 - data.dones) * discounts * next_q  # [B, 1]

            # the critic's state once per step: with grad for its own loss, detached for the
            # actor's (SB3 recomputes it, without grad, after the critic's update)
            with th.set_grad_enabled(not self.critic.share_features_extractor):
                critic_state = self.critic.extract_features(data.observations, self.critic.features_extractor)
            q_network = self.critic.q_networks[0]
            current = q_network(th.cat([critic_state, data.actions], dim=1))  # [B, 1]
            if self.prioritized_replay:
                critic_loss = (data.weights * (current - target) ** 2).mean()
                self.replay_buffer.update_priorities(data.indices, (current - target).detach())
            else:
                critic_loss = F.mse_loss(current, target)
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            # deterministic policy gradient through the critic (its grads are cleared before its next step)
            pre_tanh = self.actor.mu[:-1](self.actor.extract_features(data.observations, self.actor.features_extractor))
            actor_loss = -q_network(th.cat([critic_state.detach(), th.tanh(pre_tanh)], dim=1)).mean()
            if self.action_penalty > 0:
                actor_loss = actor_loss + self.action_penalty * (pre_tanh**2).mean()
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            for online, target_params in self._soft_pairs:
                polyak_update(online, target_params, self.tau)
            polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
            polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/actor_loss", float(np.mean(actor_losses)))
        self.logger.record("train/critic_loss", float(np.mean(critic_losses)))

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_soft_pairs"]


def _trainable_pairs(online: th.nn.Module, target: th.nn.Module) -> tuple[list[th.Tensor], list[th.Tensor]]:
    """Parameters of ``online`` that require gradients and their counterparts in ``target``."""
    pairs = [(p, q) for p, q in zip(online.parameters(), target.parameters(), strict=True) if p.requires_grad]
    return [p for p, _ in pairs], [q for _, q in pairs]
