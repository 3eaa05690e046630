"""Non-RL reference policies with the agents' interface (``learn``, ``predict``, ``save``, ``load``).

DRR compares against popularity and PMF; Lee et al. (SIGIR 2022) find that a
greedy reward model matches or beats RL agents on these datasets, so a
myopic PMF policy and an oracle that maximises the simulator's one-step reward
make the gap (or its absence) visible. LinUCB (Li et al., WWW 2010) is the
standard contextual bandit: sequential but myopic.

All of them output item ids (action mode ``"discrete"``), never an item in
``obs["consumed"]`` (nor, when ``predict`` gets ``action_masks``, an unavailable
item), and work on single observations or batches.

=================  ==========================================================================
``random``         uniform among unconsumed items
``popularity``     most-rated item among the *training* users' logged ratings
``greedy-pmf``     highest rating predicted by the scenario's embedding model (training users only;
                   a test user is folded in from the episode's history)
``greedy-pmf-topics``  greedy-pmf's rating minus a penalty for topics shown in the last few steps
``oracle-greedy``  highest expected one-step reward under the live simulator (cheats by design)
``oracle-greedy-topics``  oracle-greedy's expected reward minus greedy-pmf-topics' penalty (cheats by design)
``linucb``         disjoint LinUCB over the mean liked-item embedding, learned online
=================  ==========================================================================
"""

from __future__ import annotations

import json
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from agents.arguments import (AgentArguments, LinUCBArguments, OracleTopicRuleArguments, TopicRuleArguments,
                              check_constructor_arguments)
from agents.categories import item_categories
from agents.env_access import call_env_method, check_action_mode, scenario_of
from agents.masking import Observation, as_batch, consumed_mask_numpy
from agents.stepping import iterate_steps
from recgym.scenario import Scenario, fold_in_users

#: File inside a baseline's zip that names the agent (``agents.load`` reads it).
BASELINE_META = "agent.json"
BASELINE_ARRAYS = "arrays.npz"
#: LinUCB's exploration weight α and ridge, and the topic rules' penalty and window: their models'
#: defaults (agents/arguments.py has them with their sources)
LINUCB_ALPHA = LinUCBArguments.default("alpha")
LINUCB_RIDGE = LinUCBArguments.default("ridge")
TOPIC_PENALTY = TopicRuleArguments.default("penalty")
TOPIC_WINDOW = TopicRuleArguments.default("window")
ORACLE_TOPIC_PENALTY = OracleTopicRuleArguments.default("penalty")


def zip_path(path: str | Path) -> Path:
    """``path`` with ``.zip`` appended when it has no suffix (as SB3 saves)."""
    path = Path(path)
    return path if path.suffix else path.with_suffix(".zip")


class BaselineAgent:
    """Scores every item for each observation; the best unconsumed item is recommended.

    Subclasses implement :meth:`scores` and, if they have fitted state,
    :meth:`fit`, :meth:`state_arrays` and :meth:`load_arrays`.

    :param env: the environment (any form :func:`agents.env_access.scenario_of` accepts).
    :param seed: seed of the agent's random draws.
    :param scenario: the scenario (default: the environment's).
    """

    #: registry name (set by the registry).
    name: ClassVar[str] = ""
    #: True for agents that read the live environment (evaluation calls ``set_env`` on them).
    needs_live_env: ClassVar[bool] = False
    #: the model of the agent's arguments (agents/arguments.py): their defaults and allowed values; none here
    arguments: ClassVar[type[AgentArguments]] = AgentArguments

    def __init__(self, env: Any, seed: int = 0, scenario: Scenario | None = None) -> None:
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self.num_timesteps = 0
        self.scenario = scenario if scenario is not None else scenario_of(env)
        self.n_items = self.scenario.n_items
        self.set_env(env)

    def restart_random_choices(self) -> None:
        """Draw the agent's random choices (``random``'s items, LinUCB's tie-breaks) from its seed again.

        What a saved agent does when it is loaded: a protocol that scores the agent as its checkpoint holds
        it, in memory, calls this first (:meth:`recgym.experiments.train.TrainedRun.saved_policy`).
        """
        self._rng = np.random.default_rng(self.seed)

    def set_env(self, env: Any) -> None:
        """Point the agent at ``env`` (a discrete-action environment over the agent's scenario's items)."""
        check_action_mode(env, "discrete", self.name or type(self).__name__)
        self.env = env

    # -- the interface ----------------------------------------------------------------------
    def scores(self, obs: Observation) -> np.ndarray:
        """``(B, n_items)`` scores of a batched observation; higher is recommended first."""
        raise NotImplementedError

    def fit(self) -> None:
        """Fit whatever the baseline needs from the environment's log (no-op by default)."""

    @property
    def is_fitted(self) -> bool:
        return True

    def learn(self, total_timesteps: int = 0, callback: Any = None, progress_bar: bool = False,
              reset_num_timesteps: bool = True) -> "BaselineAgent":
        """Fit from the log (no environment steps); arguments mirror SB3's ``learn``, callbacks are not called."""
        self.fit()
        return self

    def predict(self, observation: Observation, state: Any = None, episode_start: Any = None,
                deterministic: bool = True, action_masks: np.ndarray | None = None) -> tuple[np.ndarray, None]:
        """The best-scored unconsumed (and, given ``action_masks``, available) item of each row.

        :param observation: one observation or a batch.
        :param deterministic: unused (each baseline is what it is; ``random`` is always random).
        :param action_masks: optional ``(B, n_items)`` bool available items (``env.action_masks()``).
        :returns: ``(actions, None)``: an item id (0-d array) or ``(B,)`` ids.
        """
        if not self.is_fitted:
            self.fit()
        batch, single = as_batch(observation)
        scores = np.array(self.scores(batch), dtype=np.float64)  # a copy: masking writes into it
        scores[consumed_mask_numpy(batch["consumed"], self.n_items)] = -np.inf
        if action_masks is not None:
            scores[~np.asarray(action_masks, dtype=bool).reshape(scores.shape)] = -np.inf
        actions = scores.argmax(axis=1)
        return (np.asarray(actions[0]) if single else actions), None

    # -- persistence ------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (JSON) besides ``env``."""
        return {"seed": self.seed}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Fitted arrays written by :meth:`save`."""
        return {}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_arrays` returned."""

    def save(self, path: str | Path) -> None:
        """Write the agent to a zip (``agent.json`` + ``arrays.npz``); ``.zip`` is appended without a suffix."""
        path = zip_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.is_fitted:
            self.fit()
        buffer = BytesIO()
        np.savez(buffer, **self.state_arrays())
        meta = {"agent_name": self.name, "params": self.get_params(), "num_timesteps": self.num_timesteps}
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(BASELINE_META, json.dumps(meta))
            archive.writestr(BASELINE_ARRAYS, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path, env: Any) -> "BaselineAgent":
        """Read an agent written by :meth:`save`, attached to ``env``."""
        path = zip_path(path)
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read(BASELINE_META))
            with np.load(BytesIO(archive.read(BASELINE_ARRAYS))) as data:
                arrays = {key: data[key] for key in data.files}
        agent = cls(env, **meta["params"])  # the scenario comes from env
        agent.num_timesteps = int(meta.get("num_timesteps", 0))
        agent.load_arrays(arrays)
        return agent


class RandomAgent(BaselineAgent):
    """Uniformly random among the unconsumed items (never repeats within an episode)."""

    def scores(self, obs: Observation) -> np.ndarray:
        return self._rng.random((obs["consumed"].shape[0], self.n_items))


class PopularityAgent(BaselineAgent):
    """The most-rated unconsumed item, counting the training users' logged ratings (DRR's "Popularity").

    Ties go to the smaller item id.
    """

    def __init__(self, env: Any, seed: int = 0, scenario: Scenario | None = None) -> None:
        self.counts: np.ndarray | None = None
        super().__init__(env, seed, scenario)

    @property
    def is_fitted(self) -> bool:
        return self.counts is not None

    def fit(self) -> None:
        train = self.scenario.training_log().interactions
        self.counts = np.bincount(train["item"].to_numpy(), minlength=self.n_items).astype(np.float64)

    def scores(self, obs: Observation) -> np.ndarray:
        return np.broadcast_to(self.counts, (obs["consumed"].shape[0], self.n_items))

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.counts = arrays["counts"]


class GreedyPMFAgent(BaselineAgent):
    """Myopic model-based policy: the highest rating predicted by the scenario's embedding model.

    Score of item ``j`` for user ``i``: ``mu + b_i + c_j + U_i^T V_j`` (Salakhutdinov &
    Mnih 2007 with biases, as :class:`simulators.pmf.PMFSimulator`), unclipped so
    that items above the top of the scale still rank. The model is the
    scenario's embedding model: by default fitted on the training users' ratings
    only, so a test user's ``[U_i, b_i]`` is folded in from what the episode has
    shown (the ratings in ``history_*``; :func:`recgym.scenario.fold_in_users`).
    Users the model was fitted on keep their fitted factors. In the all-data
    scenario (``embedding_fit="all"``, the DRR paper's setting) every user is
    known to the model: that figure is labelled as such.

    :param env: the environment.
    :param seed: unused (kept for a uniform interface).
    :param scenario: the scenario (default: the environment's).
    """

    @property
    def model(self) -> Any:
        return self.scenario.embedding_model

    def user_factors(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """``(U (B, d), b (B,))``: fitted factors, folded in for users the model never saw."""
        model = self.model
        users = obs["user"].reshape(-1).astype(np.int64)
        factors = model.user_embeddings[users].astype(np.float64)
        bias = model.user_bias[users].astype(np.float64)
        unseen = np.flatnonzero(~self.scenario.seen_users()[users])
        if unseen.size:
            scale = self.scenario.log.scale
            ratings = obs["history_feedback"][unseen].astype(np.float64) * scale.half_range + scale.midpoint
            factors[unseen], bias[unseen] = fold_in_users(
                model, obs["history_items"][unseen], ratings, obs["history_mask"][unseen]
            )
        return factors, bias

    def predicted_ratings(self, obs: Observation) -> np.ndarray:
        """``(B, n_items)`` unclipped predicted ratings ``mu + b_i + c_j + U_i^T V_j``."""
        factors, bias = self.user_factors(obs)
        model = self.model
        return (factors @ model.item_embeddings.T.astype(np.float64) + bias[:, None]
                + model.item_bias[None].astype(np.float64) + model.global_mean)

    def scores(self, obs: Observation) -> np.ndarray:
        return self.predicted_ratings(obs)


class RecentTopics:
    """How often each item's topics were shown in the last ``window`` steps, as a penalty per item.

    Topics are :func:`agents.categories.item_categories`: the log's genres, else k-means clusters of
    the embedding model's item factors. The penalty of item ``j`` is ``sum_t g_j[t] n_t``, ``g_j`` its
    topic flags normalised to sum 1, ``n_t`` how often topic ``t`` appears among the last ``window``
    items the episode showed (``history_items``, skipped ones included).

    :param scenario: the scenario (its log and embedding model give the topics).
    :param window: how many of the latest shown items count (>= 1).
    :param owner: the agent's name, for error messages.
    """

    def __init__(self, scenario: Scenario, window: int, owner: str) -> None:
        if isinstance(window, bool) or int(window) != window or window < 1:
            raise ValueError(f"{owner}: window must be an integer >= 1, got {window!r}")
        self.window = int(window)
        flags, _ = item_categories(scenario.log, np.asarray(scenario.embedding_model.item_embeddings))
        flags = flags.astype(np.float64)
        self.n_items = flags.shape[0]
        # one extra all-zero row: the padding id of history_items counts for no topic
        self.topics = np.vstack([flags, np.zeros((1, flags.shape[1]))])
        self.shares = flags / np.maximum(flags.sum(axis=1, keepdims=True), 1.0)  # (n_items, T)

    def counts(self, obs: Observation) -> np.ndarray:
        """``(B, T)`` how often each topic appears among the last ``window`` shown items."""
        items = obs["history_items"][:, -self.window:].astype(np.int64)
        mask = obs["history_mask"][:, -self.window:].astype(bool) & (items < self.n_items)
        return self.topics[np.where(mask, items, self.n_items)].sum(axis=1)

    def penalty(self, obs: Observation) -> np.ndarray:
        """``(B, n_items)``: ``sum_t g_j[t] n_t`` for every item ``j``."""
        return self.counts(obs) @ self.shares.T


class _TopicRule:
    """What the two topic rules share: the penalty weight ``lambda``, the :class:`RecentTopics`, their parameters."""

    seed: int
    scenario: Scenario

    def _use_topics(self, penalty: float, window: int, owner: str) -> None:
        check_constructor_arguments(type(self), {"penalty": penalty, "window": window})  # as agents.make
        self.penalty = float(penalty)
        self.recent = RecentTopics(self.scenario, window, owner)
        self.window = self.recent.window

    def get_params(self) -> dict[str, Any]:
        return {"seed": self.seed, "penalty": self.penalty, "window": self.window}


class TopicAwareGreedyAgent(_TopicRule, GreedyPMFAgent):
    """greedy-pmf with a hand-made rule against repeating topics: a myopic heuristic, not a learner.

    Score of item ``j``: ``r_hat(u, j) - lambda * h * sum_t g_j[t] n_t``, with ``r_hat``
    greedy-pmf's predicted rating, ``h`` the rating scale's half range (so
    ``lambda`` is in reward units) and ``sum_t g_j[t] n_t`` the :class:`RecentTopics`
    penalty of the last ``window`` items shown. It stands for what an agent
    could learn about users who tire of a topic (docs/simulators.md) without
    knowing them beyond what the episode shows, as greedy-pmf does.

    :param env: the environment.
    :param seed: unused (kept for a uniform interface).
    :param penalty: ``lambda`` (>= 0; 0 is greedy-pmf).
    :param window: how many of the latest shown items count (>= 1).
    :param scenario: the scenario (default: the environment's).
    """

    arguments: ClassVar[type[TopicRuleArguments]] = TopicRuleArguments

    def __init__(self, env: Any, seed: int = 0, penalty: float = TOPIC_PENALTY, window: int = TOPIC_WINDOW,
                 scenario: Scenario | None = None) -> None:
        super().__init__(env, seed, scenario)
        self._use_topics(penalty, window, "greedy-pmf-topics")

    def recent_topics(self, obs: Observation) -> np.ndarray:
        """``(B, T)`` how often each topic appears among the last ``window`` shown items."""
        return self.recent.counts(obs)

    def scores(self, obs: Observation) -> np.ndarray:
        penalty = self.penalty * self.scenario.log.scale.half_range
        return self.predicted_ratings(obs) - penalty * self.recent.penalty(obs)


class OracleGreedyAgent(BaselineAgent):
    """The simulator's own best one-step item: ``argmax_a E[r | user, a]`` over available items.

    Cheats by design: it reads the live environment's expected rewards
    (:meth:`~recgym.envs.RecommendationVectorEnv.expected_rewards`, which uses the
    simulator and each user's dynamic state) and its available items, which no
    real recommender can see. It is the upper bound of *myopic* play (an RL agent
    can only beat it by trading immediate reward for later reward). It acts on
    the observation of the environment it was given (``set_env``; the protocols
    bind it): the rows of the observation must be that environment's rows.
    """

    needs_live_env = True

    def live_expected_rewards(self, obs: Observation) -> np.ndarray:
        """``(B, n_items)`` the live environment's expected one-step rewards, for the rows of ``obs``."""
        expected = np.array(call_env_method(self.env, "expected_rewards"), dtype=np.float64).reshape(-1, self.n_items)
        if expected.shape[0] != obs["user"].reshape(-1).shape[0]:
            raise ValueError(
                f"{self.name or type(self).__name__} reads the live simulator: predict on the observation of the "
                "environment it was given (agent.set_env(env) to point it at another one)"
            )
        return expected

    def scores(self, obs: Observation) -> np.ndarray:
        expected = self.live_expected_rewards(obs)
        masks = np.asarray(call_env_method(self.env, "action_masks"), dtype=bool).reshape(expected.shape)
        expected[~masks] = -np.inf  # consumed, and outside each user's candidate set
        return expected


class TopicAwareOracleAgent(_TopicRule, OracleGreedyAgent):
    """oracle-greedy with greedy-pmf-topics' rule: a diagnostic that knows the user and does not plan.

    Score of item ``j``: ``E[r | user, j] - lambda * sum_t g_j[t] n_t``, the live simulator's expected
    one-step reward (as oracle-greedy, cheating by design) minus the :class:`RecentTopics` penalty of the
    last ``window`` items shown, ``lambda`` in reward units (skip / click / purchase rewards). Beside
    greedy-pmf-topics (the same rule on greedy-pmf's folded-in ratings) and the planner (the true user and
    planning) it splits the planner's lead into what knowing the user is worth and what looking ahead
    beyond the rule is worth (docs/results/long_term.md).

    :param env: the environment it reads (evaluation rebinds it with ``set_env``).
    :param seed: unused (kept for a uniform interface).
    :param penalty: ``lambda`` (>= 0; 0 is oracle-greedy).
    :param window: how many of the latest shown items count (>= 1).
    :param scenario: the scenario (default: the environment's).
    """

    arguments: ClassVar[type[OracleTopicRuleArguments]] = OracleTopicRuleArguments

    def __init__(self, env: Any, seed: int = 0, penalty: float = ORACLE_TOPIC_PENALTY, window: int = TOPIC_WINDOW,
                 scenario: Scenario | None = None) -> None:
        super().__init__(env, seed, scenario)
        self._use_topics(penalty, window, "oracle-greedy-topics")

    def scores(self, obs: Observation) -> np.ndarray:
        return super().scores(obs) - self.penalty * self.recent.penalty(obs)


class DisjointLinUCB:
    """Disjoint LinUCB (Li et al., WWW 2010, Algorithm 1): one ridge regression per arm.

    For each arm ``a``:

    * ``A_a = ridge I + Σ x x^T``, ``b_a = Σ r x``, ``θ_a = A_a^{-1} b_a`` (Alg. 1, lines 5-12),
    * ``p_a(x) = θ_a^T x + α sqrt(x^T A_a^{-1} x)`` (lines 9-11).

    ``A_a^{-1}`` is kept directly and updated by Sherman-Morrison,
    ``A^{-1} <- A^{-1} - (A^{-1} x)(A^{-1} x)^T / (1 + x^T A^{-1} x)``, so an update
    costs ``O(D^2)`` and no matrix is ever inverted. Scoring a batch against all
    arms is one matrix product: ``x^T A_a^{-1} x = vec(x x^T) · vec(A_a^{-1})``.

    :param n_arms: number of arms (items).
    :param dim: context dimension ``D``.
    :param alpha: exploration weight α.
    :param ridge: ``A_a`` starts at ``ridge * I`` (Li et al.: the identity).
    """

    def __init__(self, n_arms: int, dim: int, alpha: float = LINUCB_ALPHA, ridge: float = LINUCB_RIDGE) -> None:
        if alpha < 0 or ridge <= 0:
            raise ValueError(f"LinUCB needs alpha >= 0 and ridge > 0, got {alpha}, {ridge}")
        self.n_arms, self.dim = int(n_arms), int(dim)
        self.alpha, self.ridge = float(alpha), float(ridge)
        self.A_inv = np.tile(np.eye(self.dim) / self.ridge, (self.n_arms, 1, 1))  # [n, D, D]
        self.b = np.zeros((self.n_arms, self.dim))  # [n, D]
        self.theta = np.zeros((self.n_arms, self.dim))  # [n, D]

    def ucb(self, contexts: np.ndarray) -> np.ndarray:
        """``(B, n_arms)`` upper confidence bounds ``θ_a^T x + α sqrt(x^T A_a^{-1} x)``."""
        x = np.asarray(contexts, dtype=np.float64).reshape(-1, self.dim)
        mean = x @ self.theta.T  # [B, n]
        outer = (x[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1)  # [B, D*D]
        variance = outer @ self.A_inv.reshape(self.n_arms, -1).T  # [B, n]
        return mean + self.alpha * np.sqrt(np.maximum(variance, 0.0))

    def update(self, contexts: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        """Add observations ``(x_t, a_t, r_t)`` in order (an arm may repeat within a batch)."""
        contexts = np.asarray(contexts, dtype=np.float64).reshape(-1, self.dim)
        arms = np.asarray(arms, dtype=np.int64).reshape(-1)
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        for x, a, r in zip(contexts, arms, rewards):
            a_inv = self.A_inv[a]
            ax = a_inv @ x  # A^-1 x
            a_inv -= np.outer(ax, ax) / (1.0 + x @ ax)  # Sherman-Morrison for A + x x^T
            self.b[a] += r * x
            self.theta[a] = a_inv @ self.b[a]


class LinUCBAgent(BaselineAgent):
    """LinUCB over items (:class:`DisjointLinUCB`, one arm per item), learned online in ``learn``.

    Context ``x = [mean of the liked-item embeddings in obs["positive_items"], 1]``
    (the scenario's embedding-model item factors, scaled into [-1, 1];
    the constant lets each arm learn its mean reward; an empty window gives
    ``[0, 1]``). Ties (e.g. before any update) are broken at random.

    :param env: the environment ``learn`` runs on.
    :param seed: seed of tie-breaking and of the environment's resets.
    :param alpha: exploration weight α.
    :param ridge: ``A_a`` starts at ``ridge * I``.
    """

    #: the model of the arguments: their defaults and allowed values
    arguments: ClassVar[type[LinUCBArguments]] = LinUCBArguments

    def __init__(self, env: Any, seed: int = 0, alpha: float = LINUCB_ALPHA, ridge: float = LINUCB_RIDGE,
                 scenario: Scenario | None = None) -> None:
        check_constructor_arguments(type(self), {"alpha": alpha, "ridge": ridge})  # as agents.make (nan, inf)
        super().__init__(env, seed, scenario)
        emb = np.asarray(self.scenario.item_embeddings, dtype=np.float64)
        self.item_embeddings = emb / (np.abs(emb).max() or 1.0)
        self.bandit = DisjointLinUCB(self.n_items, self.item_embeddings.shape[1] + 1, alpha=alpha, ridge=ridge)

    def contexts(self, obs: Observation) -> np.ndarray:
        """``(B, D)`` contexts ``[mean liked-item embedding, 1]``."""
        items = obs["positive_items"].astype(np.int64)
        mask = obs["positive_mask"].astype(bool) & (items < self.n_items)
        emb = self.item_embeddings[np.where(mask, items, 0)] * mask[..., None]  # [B, N, d]
        mean = emb.sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return np.concatenate([mean, np.ones((mean.shape[0], 1))], axis=1)

    def scores(self, obs: Observation) -> np.ndarray:
        p = self.bandit.ucb(self.contexts(obs))
        return p + 1e-9 * self._rng.random(p.shape)  # random tie-breaking

    def learn(self, total_timesteps: int = 0, callback: Any = None, progress_bar: bool = False,
              reset_num_timesteps: bool = True) -> "LinUCBAgent":
        """Run the bandit online on the agent's environment for ``total_timesteps`` transitions.

        Each step recommends by :meth:`predict` and updates the chosen items'
        models with the observed rewards. ``callback`` is not called.
        """
        if reset_num_timesteps:
            self.num_timesteps = 0

        def act(obs: Observation) -> np.ndarray:
            return self.predict(obs)[0]

        for obs, actions, rewards in iterate_steps(self.env, act, total_timesteps, seed=self.seed):
            self.bandit.update(self.contexts(obs), actions, rewards)
            self.num_timesteps += len(rewards)
        return self

    def get_params(self) -> dict[str, Any]:
        return {"seed": self.seed, "alpha": self.bandit.alpha, "ridge": self.bandit.ridge}

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"A_inv": self.bandit.A_inv, "b": self.bandit.b, "theta": self.bandit.theta}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.bandit.A_inv = arrays["A_inv"].copy()
        self.bandit.b = arrays["b"].copy()
        self.bandit.theta = arrays["theta"].copy()
