"""Offline RL from a transition log: behaviour cloning, discrete CQL and discrete BCQ, and the learnt policy.

Why recgym trains these itself rather than through d3rlpy: d3rlpy 2.8.1 (the
newest) requires ``gymnasium==1.0.0`` and ``gym>=0.26``, recgym requires
``gymnasium>=1.1,<2``, so pip refuses to install both (``ResolutionImpossible``;
docs/offline.md states the conflicts, and those of tianshou 2.0.1). The three
learners are small and follow their papers:

* ``bc``, behaviour cloning: a softmax classifier of the logged item given the
  state, cross-entropy over the available items; the policy plays its most
  probable available item. The baseline every offline RL method must beat.
* ``cql``, conservative Q-learning, CQL(H) on a double DQN (Kumar, Zhou, Tucker
  & Levine, *Conservative Q-Learning for Offline Reinforcement Learning*,
  NeurIPS 2020, eq. 4, the variant with the entropy regulariser; their
  discrete-action experiments add it to a Q-learner as here): the TD loss plus
  ``alpha * E_s[logsumexp_a Q(s, a) - Q(s, a_logged)]``, which pushes down the
  values of items the log did not choose.
* ``bcq``, discrete batch-constrained Q-learning (Fujimoto, Conti,
  Ghavamzadeh & Pineau, *Benchmarking Batch Deep Reinforcement Learning
  Algorithms*, 2019): a Q-network and a behaviour model ``G``
  trained together; the Q-target's and the policy's argmax run only over the
  items with ``G(a|s) / max_a' G(a'|s) > threshold``.

Every maximum, log-sum-exp and softmax runs over the **available** items (the
mask less the consumed items), the only ones the policy may choose in the
simulator. Networks are MLPs on :class:`~recgym.offline.dataset.OfflineDataset`'s
features with one output per item.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recgym.envs.config import EpisodeConfig
from recgym.envs.features import FeatureMap
from recgym.evaluation.transitions import available_items
from recgym.offline.dataset import OfflineDataset, dataset_feature_map
from recgym.scenario import Scenario

ALGORITHMS = ("bc", "cql", "bcq")
#: BCQ's imitation regulariser on the behaviour model's logits (Fujimoto et al. 2019's code)
BCQ_LOGIT_PENALTY = 1e-2


def mlp(n_in: int, n_out: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """A ReLU MLP ``n_in -> hidden... -> n_out``."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def _masked(values: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    return values.masked_fill(~available, float("-inf"))


def _allowed_by_behaviour(logits: torch.Tensor, available: torch.Tensor, threshold: float) -> torch.Tensor:
    """BCQ's constraint: available items whose behaviour probability is over ``threshold`` times the likeliest's."""
    log_probs = F.log_softmax(_masked(logits, available), dim=1)
    relative = (log_probs - log_probs.max(dim=1, keepdim=True).values).exp()
    return available & (relative > threshold)


class OfflinePolicy:
    """A policy learnt offline, as a stable-baselines3-style ``predict`` for recgym's protocols.

    It encodes the Dict observation with the dataset's feature map and plays the best **available** item
    (the action mask less the consumed items) by its scores: the logits (``bc``), the Q-values (``cql``),
    the Q-values over the behaviour-supported items (``bcq``). It is greedy whatever ``deterministic`` says.

    :param algorithm: ``"bc"``, ``"cql"`` or ``"bcq"``.
    :param features: the feature map the networks were trained on.
    :param network: the logits (``bc``) or Q-network.
    :param behaviour: ``bcq``'s behaviour model (None otherwise).
    :param threshold: ``bcq``'s threshold.
    """

    def __init__(self, algorithm: str, features: FeatureMap, network: nn.Module,
                 behaviour: nn.Module | None = None, threshold: float = 0.3) -> None:
        self.algorithm = algorithm
        self.features = features
        self.network = network.eval()
        self.behaviour = None if behaviour is None else behaviour.eval()
        self.threshold = float(threshold)
        self.n_items = int(features.n_items)

    def scores(self, observations: dict[str, np.ndarray], action_masks: np.ndarray | None = None) -> np.ndarray:
        """``(B, n_items)`` the policy's score of each item, ``-inf`` where it may not choose it."""
        b = np.asarray(observations["consumed"]).shape[0]
        masks = np.ones((b, self.n_items), dtype=bool) if action_masks is None else np.asarray(action_masks, bool)
        if masks.shape != (b, self.n_items):
            raise ValueError(f"action_masks must be (batch, n_items) = ({b}, {self.n_items}), got {masks.shape}")
        available = torch.as_tensor(available_items(observations, masks))
        with torch.no_grad():
            x = torch.as_tensor(self.features.encode(observations))
            values = self.network(x)
            if self.behaviour is not None:
                available = _allowed_by_behaviour(self.behaviour(x), available, self.threshold)
            return _masked(values, available).numpy()

    def predict(self, observation: dict[str, np.ndarray], state: Any = None, episode_start: Any = None,
                deterministic: bool = True, action_masks: np.ndarray | None = None) -> tuple[np.ndarray, None]:
        """The best available item per row (SB3's signature; ``action_masks`` from the environment)."""
        return self.scores(observation, action_masks).argmax(axis=1), None


def train_offline(algorithm: str, data: OfflineDataset, scenario: Scenario, config: EpisodeConfig,
                  steps: int = 1000, batch_size: int = 64, learning_rate: float = 3e-4, gamma: float = 0.9,
                  hidden: tuple[int, ...] = (256, 256), cql_alpha: float = 1.0, bcq_threshold: float = 0.3,
                  target_update_interval: int = 100, seed: int = 0) -> OfflinePolicy:
    """Train ``algorithm`` on ``data`` and return the learnt :class:`OfflinePolicy`.

    :param algorithm: ``"bc"`` (behaviour cloning), ``"cql"`` (discrete CQL(H)) or ``"bcq"`` (discrete BCQ).
    :param data: the log as :meth:`OfflineDataset.from_log` made it.
    :param scenario: the scenario the log was recorded on (its feature map encodes the policy's observations).
    :param config: the episode configuration the log was recorded with.
    :param steps: gradient steps.
    :param batch_size: decisions per gradient step (drawn uniformly with replacement).
    :param learning_rate: Adam's learning rate.
    :param gamma: the discount of the Q-learners (recgym's DQN's 0.9: short episodes).
    :param hidden: the MLPs' hidden widths.
    :param cql_alpha: the weight of CQL's conservative term.
    :param bcq_threshold: BCQ's ``tau`` in [0, 1): 0 is Q-learning over every available item, near 1 behaviour cloning.
    :param target_update_interval: gradient steps between copies of the Q-network into its target.
    :param seed: seed of the networks' initialisation and of the minibatches.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown offline RL algorithm {algorithm!r}: choose one of {', '.join(ALGORITHMS)}")
    for name, value in (("steps", steps), ("batch_size", batch_size), ("target_update_interval",
                                                                       target_update_interval)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
    if not 0.0 <= bcq_threshold < 1.0:
        raise ValueError(f"bcq_threshold must be in [0, 1), got {bcq_threshold!r}")
    if cql_alpha < 0:
        raise ValueError(f"cql_alpha must be >= 0, got {cql_alpha!r}")
    features = dataset_feature_map(data, scenario, config)
    rng = np.random.default_rng(seed)
    tensors = {name: torch.as_tensor(getattr(data, name)) for name in
               ("features", "next_features", "actions", "rewards", "dones", "available", "next_available")}
    with torch.random.fork_rng(devices=[]):  # the caller's global torch seed is left as it was
        torch.manual_seed(seed)
        network = mlp(data.features.shape[1], data.n_items, hidden)
        behaviour = mlp(data.features.shape[1], data.n_items, hidden) if algorithm == "bcq" else None
        target = None if algorithm == "bc" else mlp(data.features.shape[1], data.n_items, hidden)
    if target is not None:
        target.load_state_dict(network.state_dict())
        target.requires_grad_(False)
    params = list(network.parameters()) + ([] if behaviour is None else list(behaviour.parameters()))
    optimiser = torch.optim.Adam(params, lr=learning_rate)
    for step in range(int(steps)):
        rows = torch.as_tensor(rng.integers(len(data), size=int(batch_size)))
        batch = {name: t[rows] for name, t in tensors.items()}
        x, a, available = batch["features"], batch["actions"], batch["available"]
        if algorithm == "bc":
            loss = F.cross_entropy(_masked(network(x), available), a)
        else:
            q = network(x)
            q_logged = q.gather(1, a[:, None]).squeeze(1)
            with torch.no_grad():
                next_x, next_available = batch["next_features"], batch["next_available"]
                if behaviour is not None:
                    next_available = _allowed_by_behaviour(behaviour(next_x), next_available, bcq_threshold)
                # double DQN: the online network chooses the next item, the target network values it
                next_a = _masked(network(next_x), next_available).argmax(dim=1, keepdim=True)
                next_q = target(next_x).gather(1, next_a).squeeze(1)
                y = batch["rewards"] + gamma * (~batch["dones"]).float() * next_q
            loss = F.smooth_l1_loss(q_logged, y)
            if algorithm == "cql":
                loss = loss + cql_alpha * (torch.logsumexp(_masked(q, available), dim=1) - q_logged).mean()
            else:
                logits = behaviour(x)
                loss = loss + F.cross_entropy(_masked(logits, available), a) \
                    + BCQ_LOGIT_PENALTY * logits.pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if target is not None and (step + 1) % int(target_update_interval) == 0:
            target.load_state_dict(network.state_dict())
    return OfflinePolicy(algorithm, features, network, behaviour, bcq_threshold)
