"""``RecommendationEnv``: one simulated user per episode, as a Gymnasium environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from recgym.data.rating_log import RatingLog
from recgym.envs.actions import ActionMapper
from recgym.envs.core import EpisodeBatch, SingleEpisode
from recgym.envs.episode_starts import EpisodeStarts
from recgym.envs.spaces import ObservationLayout
from recgym.envs.world import World, build_world
from simulators.base import Behavior, UserSimulator

DEFAULT_HISTORY_LENGTH = 5  # N = 5 positive items in DRR's state (Liu et al. 2018, section 4.1)
DEFAULT_MAX_STEPS = 20  # T: DRR's offline table ranks 20 positions


class RecommenderSetup:
    """What the single and the vector environment share: spaces, start states and the episode batch."""

    world: World

    def _setup(
        self,
        users,
        history_length: int,
        max_steps: int,
        action_mode: str,
        slate_size: int,
        reward_mode: str,
        batch_size: int | None,
        consumed_length: int | None = None,
        allow_repeats: bool = False,
    ) -> None:
        if consumed_length is None:
            consumed_length = int(history_length) + int(max_steps) * int(slate_size)
        for name, value in (
            ("history_length", history_length),
            ("max_steps", max_steps),
            ("slate_size", slate_size),
            ("consumed_length", consumed_length),
        ):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        sim = self.world.simulator
        self.simulator = sim
        self.log = self.world.log
        self.starts = EpisodeStarts.build(self.log, sim, int(history_length))
        requested_users = self.world.users(users)
        self.users = self.starts.eligible_users(requested_users)
        if self.users.size == 0:
            raise ValueError(
                f"no user in the chosen set ({users!r}) has an item left to recommend after the start items"
            )
        self.mapper = ActionMapper(sim.item_embeddings, action_mode, slate_size)
        self.layout = ObservationLayout(
            n_users=sim.n_users,
            n_items=sim.n_items,
            history_length=int(history_length),
            consumed_length=int(consumed_length),
        )
        self.observation_space = self.layout.space()
        self.action_space = self.mapper.space
        # the single env runs the scalar twin of the batched rules (batch_size None)
        if batch_size is None:
            self.episode = SingleEpisode(sim, self.starts, self.layout, self.mapper, int(max_steps), reward_mode, allow_repeats)
        else:
            self.batch = EpisodeBatch(
                sim, self.starts, self.layout, self.mapper, int(max_steps), batch_size, reward_mode, allow_repeats
            )
        self.max_steps = int(max_steps)
        self._allowed_users = np.zeros(sim.n_users, dtype=bool)
        self._allowed_users[self.users] = True

    # -- public read-only views ---------------------------------------------------------
    @property
    def item_embeddings(self) -> np.ndarray:
        """``(n_items, d)`` item embeddings in [-1, 1] that embedding actions are scored against."""
        return self.mapper.item_embeddings

    @property
    def n_items(self) -> int:
        return self.layout.n_items

    @property
    def n_users(self) -> int:
        return self.layout.n_users


class RecommendationEnv(RecommenderSetup, gym.Env):
    """Recommend items to a simulated user, one step at a time.

    One episode is one user, sampled from ``users`` at reset (or fixed with
    ``reset(options={"user": u})``). It starts from the user's first ``N``
    logged positive items, as in DRR. Each step the agent recommends one item
    (or a slate of ``slate_size``); the simulator answers with a rating, a
    behaviour (skip / click / purchase) and possibly leaves. Consumed items are
    never recommended again. The episode terminates when the user leaves or the
    candidates run out, and is truncated after ``max_steps`` steps.

    Observation: see :mod:`recgym.envs.spaces`. Actions: see :mod:`recgym.envs.actions`.

    :param dataset: dataset name (``"ml-100k"``, ``"ml-1m"``, ``"yahoo-r3"``,
        ``"jester"``, ``"jester-4"``, ``"synthetic"``) or a :class:`RatingLog`.
    :param simulator: ``"pmf"``, ``"replay"``, ``"behavior"`` or a fitted simulator.
    :param users: ``"train"`` (default), ``"test"``, ``"all"`` or a list of user ids.
    :param history_length: N, length of the history and of the positive/negative queues.
    :param max_steps: T, steps before truncation.
    :param action_mode: ``"discrete"`` (item id) or ``"embedding"`` (DRR's actor vector).
    :param slate_size: items recommended per step (reward = sum over the slate).
    :param reward_mode: ``"normalised"`` (default, [-1, 1]) or ``"rating"`` (raw rating).
    :param consumed_length: C, length of the ``consumed`` window in the observation
        (default ``history_length + max_steps * slate_size``: the whole episode). Set it
        to evaluate a trained agent on longer episodes with the same observation space.
    :param allow_repeats: allow recommending an item again in the episode (default False).
    :param data_dir: local data directory (default ``RECGYM_DATA_DIR``, then the cache).
    :param path: a data file for datasets that take one (Jester's Dataset 1 layout).
    :param dataset_kwargs: extra loader arguments.
    :param simulator_kwargs: simulator constructor arguments.
    :param test_fraction: fraction of users held out as test users (DRR: 0.2).
    :param split_seed: seed of the user split.
    :param cache: cache fitted simulators on disk and in memory.
    :param world: a prebuilt :class:`World` (overrides the data arguments).
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        dataset: str | RatingLog = "ml-100k",
        simulator: str | UserSimulator = "pmf",
        *,
        users: str | list[int] | np.ndarray = "train",
        history_length: int = DEFAULT_HISTORY_LENGTH,
        max_steps: int = DEFAULT_MAX_STEPS,
        action_mode: str = "discrete",
        slate_size: int = 1,
        reward_mode: str = "normalised",
        consumed_length: int | None = None,
        allow_repeats: bool = False,
        data_dir: str | Path | None = None,
        path: str | Path | None = None,
        dataset_kwargs: dict[str, Any] | None = None,
        simulator_kwargs: dict[str, Any] | None = None,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        cache: bool = True,
        world: World | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None")
        self.render_mode = render_mode
        self.world = world or build_world(
            dataset,
            simulator,
            data_dir=data_dir,
            path=path,
            dataset_kwargs=dataset_kwargs,
            simulator_kwargs=simulator_kwargs,
            test_fraction=test_fraction,
            split_seed=split_seed,
            use_cache=cache,
        )
        self._setup(
            users, history_length, max_steps, action_mode, slate_size, reward_mode,
            batch_size=None, consumed_length=consumed_length, allow_repeats=allow_repeats,
        )

    @classmethod
    def from_log(cls, log: RatingLog, simulator: str | UserSimulator = "pmf", **kwargs: Any) -> "RecommendationEnv":
        """An environment over a researcher's own :class:`RatingLog` (e.g. from ``load_csv``)."""
        return cls(dataset=log, simulator=simulator, **kwargs)

    # -- Gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        user = None if options is None else options.get("user")
        if user is None:
            user = int(self.users[self.np_random.integers(len(self.users))])
        else:
            if not isinstance(user, (int, np.integer)) or not 0 <= int(user) < self.n_users:
                raise ValueError(f"unknown user {user!r}: user ids run from 0 to {self.n_users - 1}")
            if not self._allowed_users[int(user)]:
                raise ValueError(
                    f"user {user} is not in this environment's user set (or has nothing left to recommend); "
                    "build the environment with users='all' or a list that contains it"
                )
            user = int(user)
        self.episode.reset(user, self.np_random)
        self._last: tuple | None = None
        return self.episode.observation(), {"user": user}

    def step(self, action):
        ep = self.episode
        if ep.done:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        items, requested, ratings, behaviors, reward, left, terminated, truncated = ep.step(action, self.np_random)
        self._last = (items, ratings, behaviors, reward, left)
        if self.mapper.slate_size == 1:
            info = {"item": items[0], "rating": ratings[0], "behavior": behaviors[0]}
        else:
            info = {"item": np.array(items), "rating": np.array(ratings), "behavior": np.array(behaviors, dtype=np.int8)}
        info["requested"] = requested
        info["left"] = left
        info["user"] = ep.user
        return ep.observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
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
