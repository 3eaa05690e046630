"""DEERS: DQN with positive and negative feedback and a pairwise regularisation (Zhao et al., KDD 2018).

X. Zhao, L. Zhang, Z. Ding, L. Xia, J. Tang, D. Yin. *Recommendations with
Negative Feedback via Pairwise Deep Reinforcement Learning*. KDD 2018
(arXiv:1802.06501).

* **State** ``(s+, s-)``: the last N liked and the last N skipped items, each
  read by its own GRU (the ``"deers"`` state encoder, Sec. 2.2).
* **Q-network** ``Q(s+, s-, a) = MLP([s, e_a])`` over the candidate item's
  embedding (Sec. 2.2, Fig. 3). To score every item at once without a
  ``[B, n_items, |s| + d]`` input, the first layer is split,
  ``W [s, e_a] + b = (W_s s + b) + W_e e_a``: the state part is computed once per
  row, the item part once per item, and they are broadcast-added
  (``[B, 1, h] + [1, n_items, h]``) before the activation. Training needs
  ``Q(s, a)`` only for the action and its competitor, so only the TD target
  (no gradient) and action selection score the whole catalogue.
* **Loss** (Sec. 2.3, the pairwise objective):
  ``L = (y - Q(s, a))^2 - α (Q(s, a) - Q(s, a^C))^2``, ``y = r + γ max_a' Q'(s', a')``
  over unconsumed ``a'``. The competitor ``a^C`` shares a category with ``a``
  and received the opposite feedback from the same user.

What recgym simplifies, and why:

* **Competitors.** The paper takes ``a^C`` from the user's logged session, close
  in time to ``a``. Here ``a^C`` is drawn uniformly among the items that share a
  category with ``a`` (genres; k-means clusters of the PMF item factors without
  genres, :mod:`agents.categories`) and that the user *rated* with the opposite
  feedback in the log (``competitor_feedback="log"``: liked = rating above the
  scale's midpoint, as the environment's CLICK). Simulated recommendations have
  no timestamp to be close to. ``competitor_feedback="simulator"`` uses the
  simulator's expected reward for every item instead (a privileged signal:
  the agent reads the reward model). A transition without any competitor drops
  the pairwise term.
* **Bounded gap.** The pairwise term is unbounded below; ``|Q(s, a) - Q(s, a^C)|``
  is clamped at ``pairwise_clip`` (default ``2 / (1 - γ)``, the widest gap that
  rewards in [-1, 1] allow), so the term cannot run away once the gap leaves
  the range of attainable values. Inside that range the loss is the paper's.
  Note that the paper's term is symmetric: it widens the gap in whichever
  direction it points; the TD term orients it.
* α is not reported in the paper; the default is 0.1.
* Plain DQN targets (the paper's); ``double_q=True`` is available.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import nn

from agents.arguments import COMPETITOR_SOURCES, DEERSArguments, check_constructor_arguments
from agents.categories import item_categories
from agents.env_access import scenario_of
from agents.masking import mask_consumed
from recgym.scenario import Scenario
from agents.dqn import MaskedDQN, MaskedDQNPolicy

#: Hidden layers of MLP([s, e_a]) (the paper does not report sizes).
DEERS_NET_ARCH = [64]
#: Items per chunk when scoring the whole catalogue without gradients.
ITEM_CHUNK = 128


class DEERSQNetwork(BasePolicy):
    """``Q(s, a) = MLP([s, e_a])`` for every candidate item ``a`` (see the module docstring).

    :param observation_space: the Dict observation space.
    :param action_space: ``Discrete(n_items)``.
    :param features_extractor: a state encoder (needs ``item_embedding_table`` / ``embed_items``).
    :param features_dim: size of the state ``s``.
    :param net_arch: hidden layer sizes of the MLP (at least one).
    :param activation_fn: activation between layers.
    :param normalize_images: unused (SB3 signature).
    """

    action_space: spaces.Discrete

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        if not hasattr(features_extractor, "item_embedding_table"):
            raise ValueError("DEERS needs a state encoder with item embeddings (state_encoders.make(...))")
        self.net_arch = list(net_arch or DEERS_NET_ARCH)
        self.features_dim = features_dim
        self.activation_fn = activation_fn
        hidden = self.net_arch[0]
        embedding_dim = int(features_extractor.embedding_dim)
        self.state_layer = nn.Linear(features_dim, hidden)  # W_s s + b
        self.item_layer = nn.Linear(embedding_dim, hidden, bias=False)  # W_e e_a
        self.head = nn.Sequential(activation_fn(), *create_mlp(hidden, 1, self.net_arch[1:], activation_fn))

    def q_values(self, obs: PyTorchObs, items: th.Tensor | None = None) -> th.Tensor:
        """``Q(s, a)`` of every item ``[B, n_items]``, or of the given ``items`` ``[B, k]`` -> ``[B, k]``."""
        state = self.extract_features(obs, self.features_extractor)  # [B, |s|]
        state_part = self.state_layer(state).unsqueeze(1)  # [B, 1, h]
        if items is not None:
            item_part = self.item_layer(self.features_extractor.embed_items(items))  # [B, k, h]
            return self.head(state_part + item_part).squeeze(-1)  # [B, k]
        item_part = self.item_layer(self.features_extractor.item_embedding_table()).unsqueeze(0)  # [1, n, h]
        if th.is_grad_enabled():
            return self.head(state_part + item_part).squeeze(-1)  # [B, n]
        # without gradients (argmax, TD targets) go through the items in cache-sized chunks:
        # the [B, n, h] activations are memory-bound, chunks of 128 items run ~2x faster
        n_items = item_part.shape[1]
        out = state_part.new_empty(state_part.shape[0], n_items)  # [B, n]
        for start in range(0, n_items, ITEM_CHUNK):
            chunk = item_part[:, start : start + ITEM_CHUNK]  # [1, c, h]
            out[:, start : start + ITEM_CHUNK] = self.head(state_part + chunk).squeeze(-1)
        return out

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        return self.q_values(obs)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return mask_consumed(self.q_values(observation), observation["consumed"]).argmax(dim=1).reshape(-1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            features_dim=self.features_dim,
            activation_fn=self.activation_fn,
            features_extractor=self.features_extractor,
        )
        return data


class DEERSPolicy(MaskedDQNPolicy):
    """DQN policy (online + target network) built from :class:`DEERSQNetwork` s."""

    q_network_class: ClassVar[type[BasePolicy]] = DEERSQNetwork


class CompetitorSampler:
    """Draws DEERS's competitor ``a^C``: same category as ``a``, opposite feedback from the same user.

    :param categories: ``(n_items, n_categories)`` bool flags (:func:`agents.categories.item_categories`).
    :param feedback: ``(n_users, n_items)`` int8: +1 liked, -1 not liked, 0 unknown.
    :param seed: seed of the draws.
    """

    def __init__(self, categories: np.ndarray, feedback: np.ndarray, seed: int | None = 0) -> None:
        flags = np.asarray(categories, dtype=np.float32)
        if flags.ndim != 2 or feedback.ndim != 2 or flags.shape[0] != feedback.shape[1]:
            raise ValueError(
                f"categories (n_items, n_cat) and feedback (n_users, n_items) disagree: {flags.shape} vs {feedback.shape}"
            )
        #: (n_items, n_items) bool: the items share at least one category (an item is not its own competitor)
        self.same_category = (flags @ flags.T) > 0
        np.fill_diagonal(self.same_category, False)
        self.categories = flags > 0
        self.feedback = np.asarray(feedback, dtype=np.int8)
        self._rng = np.random.default_rng(seed)

    def candidates(self, users: np.ndarray, items: np.ndarray, liked: np.ndarray) -> np.ndarray:
        """``(B, n_items)`` bool: the admissible competitors of each ``(user, item, liked)``."""
        wanted = np.where(np.asarray(liked, dtype=bool), -1, 1).astype(np.int8)  # the opposite feedback
        return self.same_category[items] & (self.feedback[users] == wanted[:, None])

    def sample(self, users: np.ndarray, items: np.ndarray, liked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One uniformly drawn competitor per row, and whether the row has any.

        :param users: ``(B,)`` user ids.
        :param items: ``(B,)`` recommended items ``a``.
        :param liked: ``(B,)`` whether the user liked ``a`` (reward > 0).
        :returns: ``(competitors (B,), valid (B,))``; invalid rows hold ``a`` itself.
        """
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        cand = self.candidates(users, items, liked)
        scores = self._rng.random(cand.shape)
        scores[~cand] = -1.0
        competitors = scores.argmax(axis=1)
        valid = cand.any(axis=1)
        return np.where(valid, competitors, items), valid


def feedback_table(scenario: Scenario, source: str = "log") -> np.ndarray:
    """``(n_users, n_items)`` int8 feedback: +1 liked, -1 not liked, 0 unknown.

    :param scenario: the scenario.
    :param source: ``"log"`` (the training users' logged ratings; liked = reward > 0,
        the env's CLICK; test users' ratings are never read) or ``"simulator"``
        (the sign of the simulator's expected reward for every pair).
    """
    n_users, n_items = scenario.n_users, scenario.n_items
    if source == "log":
        log = scenario.training_log()
        df = log.interactions
        table = np.zeros((n_users, n_items), dtype=np.int8)
        liked = np.asarray(log.scale.is_liked(df["rating"].to_numpy()))
        table[df["user"].to_numpy(), df["item"].to_numpy()] = np.where(liked, 1, -1)
        return table
    if source == "simulator":
        sim = scenario.simulator
        items = np.arange(n_items)
        table = np.empty((n_users, n_items), dtype=np.int8)
        rng = np.random.default_rng(0)
        for start in range(0, n_users, 256):  # chunks keep the float matrix small
            users = np.arange(start, min(start + 256, n_users))
            state = sim.initial_state(users, rng)
            reward = sim.expected_reward(state, users, np.broadcast_to(items, (users.size, n_items)))
            table[users] = np.where(reward > 0, 1, -1)
        return table
    raise ValueError(f"unknown competitor_feedback {source!r}; choose one of {list(COMPETITOR_SOURCES)}")


class DEERS(MaskedDQN):
    """DEERS on SB3's DQN machinery: :class:`DEERSQNetwork` and the pairwise loss.

    Takes every argument of :class:`agents.dqn.MaskedDQN`, plus:

    :param pairwise_alpha: α of the pairwise term (0 gives plain DQN with DEERS's network).
    :param pairwise_clip: clamp of ``|Q(s, a) - Q(s, a^C)|`` (default ``2 / (1 - γ)``).
    :param competitor_feedback: ``"log"`` or ``"simulator"`` (see :func:`feedback_table`).
    :param n_clusters: k of the k-means categories when the dataset has no genres.
    :param scenario: the scenario whose log and simulator give the competitor items (``agents.make``
        passes it; default: ``env``'s, read through :func:`agents.env_access.scenario_of`).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MultiInputPolicy": DEERSPolicy}
    logged_loss_parts: ClassVar[tuple[str, ...]] = ("pairwise",)
    #: the model of the arguments: their defaults and allowed values
    arguments: ClassVar[type[DEERSArguments]] = DEERSArguments

    def __init__(
        self,
        policy: str | type[DEERSPolicy] = DEERSPolicy,
        env: Any = None,
        *,
        pairwise_alpha: float = DEERSArguments.default("pairwise_alpha"),
        pairwise_clip: float | None = DEERSArguments.default("pairwise_clip"),
        competitor_feedback: str = DEERSArguments.default("competitor_feedback"),
        n_clusters: int | None = DEERSArguments.default("n_clusters"),
        double_q: bool = DEERSArguments.default("double_q"),
        scenario: Scenario | None = None,
        **kwargs: Any,
    ) -> None:
        if competitor_feedback not in COMPETITOR_SOURCES:
            raise ValueError(f"unknown competitor_feedback {competitor_feedback!r}; choose one of {list(COMPETITOR_SOURCES)}")
        # its own arguments; MaskedDQN checks the rest (agents.arguments, as agents.make does)
        check_constructor_arguments(type(self), {"pairwise_alpha": pairwise_alpha, "pairwise_clip": pairwise_clip,
                                                 "n_clusters": n_clusters})
        self.pairwise_alpha = float(pairwise_alpha)
        self.pairwise_clip = pairwise_clip
        self.competitor_feedback = competitor_feedback
        self.n_clusters = n_clusters
        #: the scenario whose log gives the competitor items (agents.make passes it; built directly, the env's)
        self.scenario = scenario
        super().__init__(policy, env, double_q=double_q, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        self.competitors: CompetitorSampler | None = None
        self.category_source = ""
        if self.env is not None:
            scenario = self.scenario if self.scenario is not None else scenario_of(self.env)
            flags, self.category_source = item_categories(
                scenario.log, scenario.item_embeddings, n_clusters=self.n_clusters, seed=self.seed or 0
            )
            self.competitors = CompetitorSampler(
                flags, feedback_table(scenario, self.competitor_feedback), seed=self.seed
            )

    @property
    def gap_clip(self) -> float:
        """The clamp of the pairwise gap actually used."""
        return float(self.pairwise_clip) if self.pairwise_clip is not None else 2.0 / (1.0 - self.gamma)

    def compute_loss(self, data: Any, pairwise_alpha: float | None = None) -> tuple[th.Tensor, th.Tensor, dict[str, float]]:
        """DEERS's loss on one sampled batch.

        :param data: replay samples (SB3 ``DictReplayBufferSamples`` or the PER variant).
        :param pairwise_alpha: override α (for ablations and tests).
        :returns: ``(loss, td_errors [B, 1], parts)`` with the mean TD and pairwise terms in ``parts``.
        """
        if self.competitors is None:
            raise RuntimeError("DEERS has no environment: pass env= (or load the model with an env) to train it")
        alpha = self.pairwise_alpha if pairwise_alpha is None else float(pairwise_alpha)
        discounts = data.discounts if data.discounts is not None else self.gamma
        target = self.td_target(data.next_observations, data.rewards, data.dones, discounts)  # [B, 1]

        actions = data.actions.long().reshape(-1)  # [B]
        users = data.observations["user"].long().reshape(-1).cpu().numpy()
        liked = (data.rewards.reshape(-1) > 0).cpu().numpy()
        competitors, valid = self.competitors.sample(users, actions.cpu().numpy(), liked)
        pair_items = th.stack([actions, th.as_tensor(competitors, device=actions.device)], dim=1)  # [B, 2]
        q = self.q_net.q_values(data.observations, pair_items)  # [B, 2]: Q(s, a), Q(s, a^C)
        q_action, q_competitor = q[:, :1], q[:, 1:]

        td = q_action - target  # [B, 1]
        gap = (q_action - q_competitor).clamp(-self.gap_clip, self.gap_clip)
        pairwise = gap**2 * th.as_tensor(valid, dtype=gap.dtype, device=gap.device).reshape(-1, 1)  # [B, 1]
        weights = data.weights if self.prioritized_replay else 1.0
        td_term = (weights * td**2).mean()
        pair_term = (weights * pairwise).mean()
        loss = td_term - alpha * pair_term
        return loss, td.detach(), {"td": td_term.item(), "pairwise": pair_term.item(), "valid": float(valid.mean())}

    def _excluded_save_params(self) -> list[str]:
        # rebuilt from the environment on load (the item x item table is large)
        return [*super()._excluded_save_params(), "competitors", "scenario"]
