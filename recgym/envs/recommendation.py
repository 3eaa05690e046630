"""``RecommendationEnv``: one simulated user per episode, as a Gymnasium environment."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from gymnasium import spaces

from recgym.envs.actions import ActionMapper, InvalidActionError
from recgym.envs.config import DEFAULT_HISTORY_LENGTH, DEFAULT_MAX_STEPS, EpisodeConfig, resolve_env_kwargs
from recgym.envs.core import EpisodeBatch, SimulatorSnapshot, SingleEpisode
from recgym.envs.episode_starts import EpisodeStarts
from recgym.envs.features import FeatureMap, draw_candidates
from recgym.envs.spaces import ObservationLayout
from recgym.scenario import Scenario
from simulators.base import Behavior

__all__ = ["DEFAULT_HISTORY_LENGTH", "DEFAULT_MAX_STEPS", "RecommendationEnv", "RecommendationEnvBase"]

class RecommendationEnvBase:
    """What the single and the vector environment share: scenario, episode rules, spaces, start states."""

    scenario: Scenario
    config: EpisodeConfig
    _spec: Any = None

    @property
    def spec(self) -> Any:
        """Gymnasium's ``EnvSpec`` of the id this environment was made from (None when built directly).

        Its ``max_episode_steps`` is the environment's own ``max_steps``: the episode is
        truncated inside the environment, so the ids register no Gymnasium ``TimeLimit``
        (which could disagree with a ``max_steps`` given to ``make``), and the spec says
        the limit that applies.
        """
        return self._spec

    @spec.setter
    def spec(self, value: Any) -> None:
        if value is not None and getattr(value, "max_episode_steps", 0) is None:
            value = dataclasses.replace(value, max_episode_steps=self.config.max_steps)
        self._spec = value

    def _setup(self, scenario: Scenario, config: EpisodeConfig, batch_size: int | None) -> None:
        self.scenario, self.config = scenario, config
        sim = scenario.simulator
        self.simulator = sim
        self.log = scenario.log
        self.starts = EpisodeStarts.build(self.log, sim, config.history_length)
        requested_users = scenario.users(config.users)
        self.users = self.starts.eligible_users(requested_users, min_items=config.slate_size)
        if self.users.size == 0:
            raise ValueError(
                f"no user in the chosen set ({config.users!r}) has {config.slate_size} item(s) left to recommend "
                "after the start items: choose other users or a smaller slate_size"
            )
        self.mapper = ActionMapper(scenario.action_item_vectors, config.action_mode, config.slate_size)
        self.layout = ObservationLayout(
            n_users=sim.n_users,
            n_items=sim.n_items,
            history_length=config.history_length,
            consumed_length=config.window(sim.n_items),
        )
        self.observation_space = self.layout.space()
        self.action_space = self.mapper.space
        self.features = FeatureMap(scenario, config) if config.observation == "features" else None
        if self.features is not None:
            self.observation_space = self.features.space
        if config.candidates is not None:
            self.action_space = spaces.Discrete(config.candidates)
        self._unsupported_render_mode: str | None = None
        # the single env runs the scalar twin of the batched rules (batch_size None)
        if batch_size is None:
            self.episode = SingleEpisode(sim, self.starts, self.layout, self.mapper, config)
        else:
            self.batch = EpisodeBatch(sim, self.starts, self.layout, self.mapper, config, batch_size)
        self.max_steps = config.max_steps
        self._allowed_users = np.zeros(sim.n_users, dtype=bool)
        self._allowed_users[self.users] = True

    def _check_render_mode(self, render_mode: str | None) -> str | None:
        # Stock clients pass a mode nobody asked for (SB3's make_vec_env: "rgb_array"), so an unsupported
        # mode is only remembered here; render() warns when it is actually called in it.
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            self._unsupported_render_mode = render_mode
            return None
        return render_mode

    def _warn_unsupported_render_mode(self) -> None:
        if self._unsupported_render_mode is not None:
            warnings.warn(
                f"render_mode {self._unsupported_render_mode!r} is not supported by recgym (supported: "
                f"{self.metadata['render_modes'] or 'none'}); render() returns None",
                stacklevel=3,
            )

    def _candidate_indices(self, actions: Any, batch: int) -> np.ndarray:
        """``(batch,)`` validated candidate indices of a ``Discrete(K)`` action (``candidates=K``)."""
        k = self.config.candidates
        try:
            a = np.asarray(actions)
        except (ValueError, TypeError):
            a = np.asarray(None)
        if a.size != batch or a.dtype.kind not in "iuf" or not np.isfinite(a).all() or (a != np.round(a)).any():
            raise InvalidActionError(
                f"action {actions!r} is not {'a candidate index' if batch == 1 else f'{batch} candidate indices'} "
                f"of Discrete({k}) (candidates={k}: the action picks one of the K items the observation describes)"
            )
        a = a.reshape(batch).astype(np.int64)
        if (a < 0).any() or (a >= k).any():
            raise InvalidActionError(
                f"action {actions!r} is outside Discrete({k}): candidate indices run from 0 to {k - 1}"
            )
        return a

    def _require_reset(self, started: bool, what: str) -> None:
        if not started:
            raise RuntimeError(f"{what}() called before reset(): call env.reset() first, then {what}()")

    # -- public read-only views ---------------------------------------------------------
    @property
    def item_embeddings(self) -> np.ndarray:
        """``(n_items, D)`` item action vectors in [-1, 1] that embedding actions are scored against."""
        return self.mapper.item_embeddings

    @property
    def n_items(self) -> int:
        return self.layout.n_items

    @property
    def n_users(self) -> int:
        return self.layout.n_users


class RecommendationEnv(RecommendationEnvBase, gym.Env):
    """Recommend items to a simulated user, one step at a time.

    One episode is one user, sampled from ``users`` at reset (or fixed with
    ``reset(options={"user": u})``). It starts from the user's first ``N``
    logged positive items, as in DRR. Each step the agent recommends one item
    (or a slate of ``slate_size``); the simulator answers with a rating, a
    behaviour (skip / click / purchase) and possibly leaves. An item already
    consumed in the episode (or outside the user's candidates) is not available:
    :meth:`action_masks` lists the available ones, and naming another is
    penalised or refused (``EpisodeConfig.unavailable``). The episode terminates when the user leaves or the
    candidates run out, and is truncated after ``max_steps`` steps.

    Observation: see :mod:`recgym.envs.spaces` (``observation="features"``: :mod:`recgym.envs.features`).
    Actions: see :mod:`recgym.envs.actions` (``candidates=K``: the index of one of K drawn items).

    :param scenario: a :class:`~recgym.scenario.Scenario` (``recgym.make_scenario(...)``); when
        omitted it is built from the data keywords (``dataset``, ``simulator``, ``data_dir``,
        ``embedding_fit``, ``split_seed``, ...: :class:`~recgym.scenario.ScenarioSpec`).
    :param config: an :class:`~recgym.envs.config.EpisodeConfig`; episode keywords
        (``history_length``, ``max_steps``, ``action_mode``, ``slate_size``, ``users``,
        ``reward_mode``, ``consumed_length``, ``allow_repeats``, ``unavailable``, ``observation``,
        ``candidates``) may be given directly instead, as ``gymnasium.make`` does.
    :param render_mode: ``"ansi"`` or None.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        scenario: Scenario | None = None,
        config: EpisodeConfig | None = None,
        *,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        scenario, config = resolve_env_kwargs(scenario, config, **kwargs)
        self._setup(scenario, config, batch_size=None)
        self.render_mode = self._check_render_mode(render_mode)
        self._started = False
        self._slate: np.ndarray | None = None

    @classmethod
    def from_log(cls, log: Any, simulator: Any = "pmf", **kwargs: Any) -> "RecommendationEnv":
        """An environment over a researcher's own :class:`~recgym.data.RatingLog` (e.g. from ``load_csv``)."""
        return cls(dataset=log, simulator=simulator, **kwargs)

    # -- Gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        user = None if options is None else options.get("user")
        if user is None:
            user = int(self.users[self.np_random.integers(len(self.users))])
        else:
            # a bool is an int to Python: True would silently be user 1 (users=[True] is refused alike)
            if isinstance(user, (bool, np.bool_)) or not isinstance(user, (int, np.integer)) \
                    or not 0 <= int(user) < self.n_users:
                raise ValueError(f"unknown user {user!r}: user ids run from 0 to {self.n_users - 1}")
            if not self._allowed_users[int(user)]:
                raise ValueError(
                    f"user {user} is not in this environment's user set (or has nothing left to recommend); "
                    "build the environment with users='all' or a list that contains it"
                )
            user = int(user)
        self.episode.reset(user, self.np_random)
        self._started = True
        self._last: tuple | None = None
        return self._observation(), {"user": user}

    def _observation(self) -> Any:
        obs = self.episode.observation()
        if self.features is None:
            return obs
        if self.config.candidates is not None:
            self._slate = draw_candidates(self.episode.blocked[None], self.config.candidates, self.np_random)
        return self.features.encode({key: value[None] for key, value in obs.items()}, self._slate)[0]

    def step(self, action):
        ep = self.episode
        if ep.done:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        candidate = None
        if self.config.candidates is not None:
            candidate = int(self._candidate_indices(action, 1)[0])
            action = int(self._slate[0, candidate])
        items, requested, ratings, behaviors, reward, left, terminated, truncated = ep.step(action, self.np_random)
        self._last = (items, ratings, behaviors, reward, left)
        if self.mapper.slate_size == 1:
            info = {"item": items[0], "rating": ratings[0], "behavior": behaviors[0]}
        else:
            info = {"item": np.array(items), "rating": np.array(ratings), "behavior": np.array(behaviors, dtype=np.int8)}
        info["requested"] = requested
        info["unavailable"] = ep.last_unavailable[0] if self.mapper.slate_size == 1 else np.array(ep.last_unavailable)
        info["left"] = left
        info["user"] = ep.user
        if candidate is not None:
            info["candidate"] = candidate
        return self._observation(), reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """``(n_items,)`` bool: the items this episode may recommend now (not consumed, in the user's candidates).

        With ``candidates=K``: ``(K,)``, all True (every candidate is available).
        """
        self._require_reset(self._started, "action_masks")
        if self.config.candidates is not None:
            return np.ones(self.config.candidates, dtype=bool)
        return self.episode.action_masks()[0]

    def expected_rewards(self) -> np.ndarray:
        """``(n_items,)`` the simulator's expected one-step reward of every item now (read-only; for oracles)."""
        self._require_reset(self._started, "expected_rewards")
        return self.episode.expected_rewards()[0]

    def simulator_state(self) -> SimulatorSnapshot:
        """A copy of the episode's simulator state, user and available items (read-only; for planners).

        A batch of one (leading dimension 1), so that its ``state`` and ``users``
        go straight to the simulator's ``expected_transition``; see
        :class:`~recgym.envs.core.SimulatorSnapshot`.
        """
        self._require_reset(self._started, "simulator_state")
        return self.episode.simulator_state()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            self._warn_unsupported_render_mode()
            return None
        ep = self.episode
        if self._last is None:
            return f"user {ep.user}: start items {[i for i in ep.hist_items if i != self.layout.pad_item]}"
        items, ratings, behaviors, reward, left = self._last
        names = [Behavior(int(b)).name.lower() for b in behaviors]
        return (
            f"user {ep.user} step {ep.steps}: items {items} rated {[round(r, 2) for r in ratings]} {names} "
            f"reward {reward:.3f}" + (" (left)" if left else "")
        )
