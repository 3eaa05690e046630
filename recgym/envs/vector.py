"""A natively batched vector environment: B users stepped at once with array operations.

``gymnasium.make_vec(id, num_envs=B, vectorization_mode="vector_entry_point")``
returns :class:`RecommendationVectorEnv`. It is not B Python environments but
one :class:`~recgym.envs.core.EpisodeBatch` whose arrays have B rows, so a step
of 4096 users costs a handful of numpy calls.

Autoreset follows Gymnasium's ``SAME_STEP`` mode: a row whose episode ended is
reset within the same ``step`` call and returns the first observation of its
next episode; the observation that ended the episode is in
``infos["final_obs"]``. For speed ``final_obs`` is a dict of batched arrays
(valid on the rows where ``infos["_final_obs"]`` is True) rather than an object
array of per-row dicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recgym.envs.config import EpisodeConfig, resolve_env_kwargs
from recgym.envs.core import SimulatorSnapshot
from recgym.envs.features import draw_candidates
from recgym.envs.recommendation import RecommendationEnvBase
from recgym.scenario import Scenario


class RecommendationVectorEnv(RecommendationEnvBase, VectorEnv):
    """``num_envs`` concurrent users of one :class:`RecommendationEnv` configuration.

    Takes the same arguments as :class:`RecommendationEnv` (a scenario and an
    episode configuration, or their keywords), plus ``num_envs``.
    ``reset(options={"users": [...]})`` starts the given users (one per row)
    instead of sampling them. :meth:`action_masks` gives each row's available
    items, :meth:`expected_rewards` the simulator's expectation (for oracles),
    :meth:`simulator_state` a copy of the simulator's per-row state (for planners).
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        scenario: Scenario | None = None,
        config: EpisodeConfig | None = None,
        *,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        # gymnasium.make_vec passes a spec's max_episode_steps here; it is the episode's max_steps
        if max_episode_steps is not None:
            kwargs.setdefault("max_steps", max_episode_steps)
            if kwargs["max_steps"] != max_episode_steps:
                raise ValueError(
                    f"max_episode_steps={max_episode_steps} disagrees with max_steps={kwargs['max_steps']}: "
                    "the episode is truncated by max_steps; pass only that"
                )
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        scenario, config = resolve_env_kwargs(scenario, config, **kwargs)
        self.num_envs = int(num_envs)
        self._setup(scenario, config, batch_size=self.num_envs)
        self.single_observation_space = self.observation_space
        self.single_action_space = self.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = self._check_render_mode(render_mode)
        self._started = False
        self._slate: np.ndarray | None = None

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        if isinstance(seed, (list, tuple)):
            seed = seed[0] if seed else None
        super().reset(seed=seed)
        rows = np.arange(self.num_envs)
        users = None if options is None else options.get("users")
        if users is None:
            users = self._sample_users(self.num_envs)
        else:
            given = np.asarray(users)
            if given.size and given.dtype.kind not in "iu":  # not True as user 1, nor 1.7 as user 1
                raise ValueError(f"options['users'] must be integer user ids, got {users!r}")
            users = given.astype(np.int64).reshape(-1)
            if users.shape != (self.num_envs,):
                raise ValueError(f"options['users'] must list {self.num_envs} user ids, got {users.shape[0]}")
            if (users < 0).any() or (users >= self.n_users).any() or not self._allowed_users[users].all():
                raise ValueError(
                    f"options['users'] holds ids outside this environment's user set: {users[~self._allowed_users[np.clip(users, 0, self.n_users - 1)]][:5].tolist()}"
                )
        self.batch.reset_rows(rows, users, self.np_random)
        self._started = True
        return self._observation(rows), {"user": self.batch.users.copy()}

    def _observation(self, new_slate_rows: np.ndarray | None = None) -> Any:
        """The batched observation; with candidates, ``new_slate_rows`` draw a new slate (None: every row)."""
        obs = self.batch.observation()
        if self.features is None:
            return obs
        k = self.config.candidates
        if k is not None:
            if self._slate is None or new_slate_rows is None:
                self._slate = draw_candidates(self.batch.blocked, k, self.np_random)
            elif new_slate_rows.size:
                self._slate[new_slate_rows] = draw_candidates(self.batch.blocked[new_slate_rows], k, self.np_random)
        return self.features.encode(obs, self._slate)

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_items)`` bool: the items each row's episode may recommend now (a copy).

        With ``candidates=K``: ``(num_envs, K)``, all True (every candidate is available).
        """
        self._require_reset(self._started, "action_masks")
        if self.config.candidates is not None:
            return np.ones((self.num_envs, self.config.candidates), dtype=bool)
        return self.batch.action_masks()

    def expected_rewards(self) -> np.ndarray:
        """``(num_envs, n_items)`` the simulator's expected one-step reward of every item (read-only; for oracles)."""
        self._require_reset(self._started, "expected_rewards")
        return self.batch.expected_rewards()

    def simulator_state(self) -> SimulatorSnapshot:
        """A copy of every row's simulator state, user and available items (read-only; for planners).

        See :class:`~recgym.envs.core.SimulatorSnapshot`; roll it forward with
        ``env.simulator.expected_transition(snapshot.state, snapshot.users, items)``.
        """
        self._require_reset(self._started, "simulator_state")
        return self.batch.simulator_state()

    def _sample_users(self, count: int) -> np.ndarray:
        return self.users[self.np_random.integers(len(self.users), size=count)]

    def step(self, actions):
        if not self._started:
            raise RuntimeError("step() called before reset()")
        chosen = None
        if self.config.candidates is not None:
            chosen = self._candidate_indices(actions, self.num_envs)
            actions = self._slate[np.arange(self.num_envs), chosen]
        res = self.batch.step(actions, self.np_random)
        fb = res.feedback
        k = self.mapper.slate_size
        infos: dict[str, Any] = {
            "item": res.items[:, 0].copy() if k == 1 else res.items.copy(),
            "rating": fb.rating[:, 0].copy() if k == 1 else fb.rating.copy(),
            "behavior": fb.behavior[:, 0].copy() if k == 1 else fb.behavior.copy(),
            "unavailable": res.unavailable[:, 0].copy() if k == 1 else res.unavailable.copy(),
            "left": fb.left.copy(),
            "user": self.batch.users.copy(),
        }
        if chosen is not None:
            infos["candidate"] = chosen
        done = res.terminated | res.truncated
        if not done.any():
            return self._observation(), res.reward, res.terminated, res.truncated, infos
        rows = np.flatnonzero(done)
        infos["final_obs"] = self._observation()
        infos["_final_obs"] = done
        self.batch.reset_rows(rows, self._sample_users(rows.size), self.np_random)
        return self._observation(rows), res.reward, res.terminated, res.truncated, infos
