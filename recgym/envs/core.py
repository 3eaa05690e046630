"""Episode dynamics for a batch of users, shared by the single and the vector environment.

:class:`EpisodeBatch` holds the state of ``B`` concurrent episodes in arrays
(histories, DRR's positive queue, DEERS's negative queue, consumed items, the
per-user simulator state) and advances all of them with array operations. The
single environment is the ``B = 1`` case, so both follow exactly the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recgym.envs.actions import ActionMapper, InvalidActionError
from recgym.envs.config import EpisodeConfig
from recgym.envs.episode_starts import EpisodeStarts
from recgym.envs.spaces import ObservationLayout
from simulators.base import Behavior, Feedback, UserSimulator, copy_state


@dataclass
class StepResult:
    """What one batched step produced (all arrays have leading dimension ``B``)."""

    items: np.ndarray  # [B, k] recommended items
    requested: np.ndarray  # [B] or [B, k] the discrete request, or [B, D] the embedding
    unavailable: np.ndarray  # [B, k] positions that named an unavailable item (penalised)
    feedback: Feedback
    reward: np.ndarray  # [B]
    terminated: np.ndarray  # [B] user left or candidates exhausted
    truncated: np.ndarray  # [B] reached max_steps


@dataclass(frozen=True)
class SimulatorSnapshot:
    """A copy of what the simulator knows about the running episodes, for planners that may see it.

    Everything is a copy: changing it, or passing ``state`` to the simulator's
    :meth:`~simulators.base.UserSimulator.expected_transition`, leaves the
    episodes alone.

    :param state: the per-row simulator state (``{}`` for stateless simulators), leading dimension ``B``.
    :param users: ``(B,)`` the user of each row.
    :param action_masks: ``(B, n_items)`` bool, the items each row may recommend now.
    :param steps_left: ``(B,)`` steps before the episode is truncated (``max_steps`` minus steps taken).
    :param allow_repeats: whether an item stays available after it was recommended.
    """

    state: dict[str, np.ndarray]
    users: np.ndarray
    action_masks: np.ndarray
    steps_left: np.ndarray
    allow_repeats: bool


class EpisodeBatch:
    """State and transition rule of ``batch_size`` concurrent episodes.

    :param simulator: a fitted :class:`~simulators.base.UserSimulator`.
    :param starts: precomputed start states (:class:`EpisodeStarts`).
    :param layout: observation sizes.
    :param mapper: the action-to-item mapping.
    :param config: the episode rules (T, reward mode, repeats, the unavailable-item rule).
    :param batch_size: B.
    """

    def __init__(
        self,
        simulator: UserSimulator,
        starts: EpisodeStarts,
        layout: ObservationLayout,
        mapper: ActionMapper,
        config: EpisodeConfig,
        batch_size: int = 1,
    ) -> None:
        self.sim = simulator
        self.starts = starts
        self.layout = layout
        self.mapper = mapper
        self.config = config
        self.max_steps = config.max_steps
        self.batch_size = b = int(batch_size)
        self.reward_mode = config.reward_mode
        self.allow_repeats = config.allow_repeats
        self._penalty = _penalty(simulator)
        n, c, pad = layout.history_length, layout.consumed_length, layout.pad_item
        self._start_blocked = ~starts.available
        self._start_n_available = starts.available.sum(axis=1)
        self._start_behavior = starts.behavior
        self._rows = np.arange(b)

        # Sequences are stored position-major, (N, B): shifting a queue is then a
        # contiguous memmove, while (B, N) with N ~ 5 makes numpy copy 4 elements at a
        # time. All integer fields share one (F, B) matrix and the float fields another,
        # so an observation is two copies sliced into views (cheap for the single env).
        self._ints = np.full((1 + 3 * n + c, b), pad, dtype=np.int64)
        self._floats = np.zeros((2 * n, b), dtype=np.float32)
        self.users = self._ints[0]
        self.hist_items = self._ints[1 : 1 + n]
        self.pos_items = self._ints[1 + n : 1 + 2 * n]
        self.neg_items = self._ints[1 + 2 * n : 1 + 3 * n]
        self.consumed = self._ints[1 + 3 * n :]
        self.hist_feedback = self._floats[:n]
        self.hist_time = self._floats[n:]
        self.hist_behavior = np.zeros((n, b), dtype=np.int8)
        self.users[:] = 0
        self.blocked = np.ones((b, layout.n_items), dtype=bool)
        self.n_available = np.zeros(b, dtype=np.int64)
        self.steps = np.zeros(b, dtype=np.int64)
        self.done = np.ones(b, dtype=bool)
        self.sim_state: dict[str, np.ndarray] = {}
        self._shift_buffer = np.empty((n, b), dtype=np.int64)

    # -- reset -----------------------------------------------------------------------------
    def reset_rows(self, rows: np.ndarray, users: np.ndarray, rng: np.random.Generator) -> None:
        """Start new episodes for ``users`` at batch positions ``rows``."""
        s, pad = self.starts, self.layout.pad_item
        start_items = s.items[users].T  # [N, b]
        self.users[rows] = users
        self.hist_items[:, rows] = start_items
        self.hist_feedback[:, rows] = s.feedback[users].T
        self.hist_behavior[:, rows] = self._start_behavior[users].T
        self.hist_time[:, rows] = s.time[users].T
        self.pos_items[:, rows] = start_items
        self.neg_items[:, rows] = pad
        # the consumed list is a sliding window, newest last, like the history
        self.consumed[:, rows] = pad
        keep = min(start_items.shape[0], self.consumed.shape[0])
        self.consumed[self.consumed.shape[0] - keep :, rows] = start_items[start_items.shape[0] - keep :]
        self.blocked[rows] = self._start_blocked[users]
        self.n_available[rows] = self._start_n_available[users]
        self.steps[rows] = 0
        self.done[rows] = False
        if not self.sim_state:
            self.sim_state = self.sim.initial_state(np.zeros(self.batch_size, dtype=np.int64), rng)
        if self.sim_state:
            self.sim.reset_state(self.sim_state, rows, users, rng)

    # -- step ------------------------------------------------------------------------------
    def step(self, actions: np.ndarray, rng: np.random.Generator) -> StepResult:
        """Advance every episode by one recommendation (all rows must be running)."""
        k = self.mapper.slate_size
        requested = self.mapper.validate(actions, self.batch_size)
        items = self.mapper.to_items(requested, self.blocked)  # [B, k]
        unavailable = self.mapper.unavailable(items, self.blocked)  # [B, k]
        asked = _check_unavailable(unavailable, items, self.users, self.config, self.sim, self.blocked)
        fb = self.sim.respond(self.sim_state, self.users, asked, rng)
        if unavailable.any():
            fb = _penalise(fb, unavailable, self._penalty)
        rewards = fb.rating if self.reward_mode == "rating" else fb.reward
        reward = rewards[:, 0].astype(np.float64) if k == 1 else rewards.sum(axis=1)

        feedback = self._feedback_value(fb.rating)
        for j in range(k):
            self._push_history(items[:, j], feedback[:, j], fb.behavior[:, j])
            liked = fb.behavior[:, j] != Behavior.SKIP
            self._push_queue(self.pos_items, liked, items[:, j])
            self._push_queue(self.neg_items, ~liked, items[:, j])
            self.consumed[:-1] = self.consumed[1:]
            self.consumed[-1] = items[:, j]
        if not self.allow_repeats:
            self.blocked[self._rows[:, None], items] = True
            self.n_available -= k - unavailable.sum(axis=1)
        self.steps += 1

        terminated = fb.left | (self.n_available < k)
        truncated = ~terminated & (self.steps >= self.max_steps)
        self.done = terminated | truncated
        return StepResult(items, requested, unavailable, fb, reward, terminated, truncated)

    def expected_rewards(self) -> np.ndarray:
        """``(B, n_items)`` the simulator's expected one-step reward of every item for the running episodes.

        Read-only (no randomness, no state change): what the ``oracle-greedy`` and
        ``planner`` baselines, which may see the simulator by design, maximise.
        Unavailable items are not masked here; combine with :meth:`action_masks`.
        """
        items = np.broadcast_to(np.arange(self.layout.n_items), (self.batch_size, self.layout.n_items))
        return np.asarray(self.sim.expected_reward(self.sim_state, self.users, items), dtype=np.float64)

    def action_masks(self) -> np.ndarray:
        """``(B, n_items)`` bool: the items each running episode may recommend now (a copy)."""
        return ~self.blocked

    def simulator_state(self) -> SimulatorSnapshot:
        """A copy of the simulator state, users and available items of the running episodes.

        Read-only, like :meth:`expected_rewards`: what the ``planner`` baseline rolls
        forward with the simulator's ``expected_transition``.
        """
        return SimulatorSnapshot(copy_state(self.sim_state), self.users.copy(), ~self.blocked,
                                 self.max_steps - self.steps, bool(self.allow_repeats))

    def _feedback_value(self, rating: np.ndarray) -> np.ndarray:
        # the history carries the normalised rating, whatever the reward mode, so encoders see [-1, 1]
        scale = self.sim.scale
        return ((np.minimum(np.maximum(rating, scale.low), scale.high) - scale.midpoint) / scale.half_range).astype(
            np.float32
        )

    def _push_history(self, items: np.ndarray, feedback: np.ndarray, behavior: np.ndarray) -> None:
        for arr, value in (
            (self.hist_items, items),
            (self.hist_feedback, feedback),
            (self.hist_behavior, behavior),
            (self.hist_time, self.steps),
        ):
            arr[:-1] = arr[1:]
            arr[-1] = value

    def _push_queue(self, queue: np.ndarray, which: np.ndarray, items: np.ndarray) -> None:
        # DRR's window slides only on positive feedback, DEERS's negative queue only on skips
        if which.all():
            queue[:-1] = queue[1:]
            queue[-1] = items
        elif which.any():
            # blend the shifted queue in on the selected columns: arithmetic beats masked copies here
            shifted = self._shift_buffer
            shifted[:-1] = queue[1:]
            shifted[-1] = items
            shifted -= queue
            shifted *= which
            queue += shifted

    # -- observation -----------------------------------------------------------------------
    def observation(self, row: int | None = None) -> dict[str, np.ndarray]:
        """Fresh observation arrays: of one row (single env) or of all rows ``(B, ...)``."""
        n, pad = self.layout.history_length, self.layout.pad_item
        if row is None:
            # copy in storage order, then view as (B, ...): a transposing copy is several times slower
            ints, floats, behavior = self._ints.copy().T, self._floats.copy().T, self.hist_behavior.copy().T
            users = ints[:, 0:1]
        else:
            ints, floats, behavior = self._ints[:, row].copy(), self._floats[:, row].copy(), self.hist_behavior[:, row].copy()
            users = ints[0:1]
        hist, pos, neg = ints[..., 1 : 1 + n], ints[..., 1 + n : 1 + 2 * n], ints[..., 1 + 2 * n : 1 + 3 * n]
        return {
            "user": users,
            "history_items": hist,
            "history_mask": (hist != pad).view(np.int8),
            "history_feedback": floats[..., :n],
            "history_behavior": behavior,
            "history_time": floats[..., n:],
            "positive_items": pos,
            "positive_mask": (pos != pad).view(np.int8),
            "negative_items": neg,
            "negative_mask": (neg != pad).view(np.int8),
            "consumed": ints[..., 1 + 3 * n :],
        }


class SingleEpisode:
    """The rules of :class:`EpisodeBatch` for one user, on Python lists and scalars.

    A single-environment step would otherwise be dominated by the fixed cost of
    some fifty numpy calls on arrays of five elements. The tests check that a
    ``SingleEpisode`` and an ``EpisodeBatch`` of one row produce the same
    observations, items and rewards from the same seed.

    Same parameters as :class:`EpisodeBatch` (without ``batch_size``).
    """

    def __init__(
        self,
        simulator: UserSimulator,
        starts: EpisodeStarts,
        layout: ObservationLayout,
        mapper: ActionMapper,
        config: EpisodeConfig,
    ) -> None:
        self.sim, self.starts, self.layout, self.mapper = simulator, starts, layout, mapper
        self.config = config
        self.max_steps = config.max_steps
        self.reward_mode = config.reward_mode
        self.allow_repeats = config.allow_repeats
        self._penalty = _penalty(simulator)
        self._start_blocked = ~starts.available
        self._start_n_available = starts.available.sum(axis=1)
        self._users = np.zeros(1, dtype=np.int64)
        self.sim_state: dict[str, np.ndarray] = {}
        self.done = True
        self.user = 0
        self.steps = 0

    @property
    def users(self) -> np.ndarray:
        return self._users

    def reset(self, user: int, rng: np.random.Generator) -> None:
        s, n, c, pad = self.starts, self.layout.history_length, self.layout.consumed_length, self.layout.pad_item
        self.user = user
        self._users[0] = user
        items = s.items[user].tolist()
        self.hist_items = items
        self.hist_feedback = s.feedback[user].tolist()
        self.hist_behavior = s.behavior[user].tolist()
        self.hist_time = s.time[user].tolist()
        self.pos_items = list(items)
        self.neg_items = [pad] * n
        self.consumed = ([pad] * c + items)[-c:]
        self.blocked = self._start_blocked[user].copy()
        self.n_available = int(self._start_n_available[user])
        self.steps = 0
        self.done = False
        rows = np.zeros(1, dtype=np.int64)
        if not self.sim_state:
            self.sim_state = self.sim.initial_state(rows, rng)
        if self.sim_state:
            self.sim.reset_state(self.sim_state, rows, self._users.copy(), rng)

    def step(self, action, rng: np.random.Generator) -> tuple[list[int], Any, list[float], list[int], float, bool, bool, bool]:
        """One recommendation: returns items, requested, ratings, behaviours, reward, left, terminated, truncated."""
        mapper, k = self.mapper, self.mapper.slate_size
        if mapper.mode == "discrete" and k == 1:
            item = mapper.validate_scalar(action)
            requested: Any = item
            bad = bool(self.blocked[item])
            if bad and self.config.unavailable == "error":
                _check_unavailable(np.array([[True]]), np.array([[item]]), self._users, self.config, self.sim,
                                   self.blocked[None])
            asked = _stand_in(self.sim, self.user, item, self.blocked) if bad else item
            rating, reward, behavior, left = self.sim.respond_one(self.sim_state, self.user, asked, rng)
            if bad:
                rating, reward, behavior = self._penalty[0], self._penalty[1], int(Behavior.SKIP)
            items, ratings, behaviors, unavailable = [item], [rating], [behavior], [bad]
            total = rating if self.reward_mode == "rating" else reward
        else:
            requested = mapper.validate(np.asarray(action)[None], 1)
            chosen = mapper.to_items(requested, self.blocked[None])
            bad_mask = mapper.unavailable(chosen, self.blocked[None])
            asked = _check_unavailable(bad_mask, chosen, self._users, self.config, self.sim, self.blocked[None])
            fb = self.sim.respond(self.sim_state, self._users, asked, rng)
            if bad_mask.any():
                fb = _penalise(fb, bad_mask, self._penalty)
            items, ratings, behaviors = chosen[0].tolist(), fb.rating[0].tolist(), fb.behavior[0].tolist()
            unavailable = bad_mask[0].tolist()
            total = float((fb.rating if self.reward_mode == "rating" else fb.reward)[0].sum())
            left = bool(fb.left[0])
            requested = requested[0]
        scale = self.sim.scale
        step = float(self.steps)
        for item, rating, behavior in zip(items, ratings, behaviors):
            feedback = (min(max(rating, scale.low), scale.high) - scale.midpoint) / scale.half_range
            for seq, value in (
                (self.hist_items, item),
                (self.hist_feedback, feedback),
                (self.hist_behavior, behavior),
                (self.hist_time, step),
                (self.pos_items if behavior != Behavior.SKIP else self.neg_items, item),
                (self.consumed, item),
            ):
                del seq[0]
                seq.append(value)
            if not self.allow_repeats:
                self.blocked[item] = True
        if not self.allow_repeats:
            self.n_available -= k - sum(unavailable)
        self.steps += 1
        terminated = left or self.n_available < k
        truncated = not terminated and self.steps >= self.max_steps
        self.done = terminated or truncated
        self.last_unavailable = unavailable
        return items, requested, ratings, behaviors, float(total), left, terminated, truncated

    def expected_rewards(self) -> np.ndarray:
        """``(1, n_items)``: :meth:`EpisodeBatch.expected_rewards` of the running episode."""
        items = np.arange(self.layout.n_items)[None]
        return np.asarray(self.sim.expected_reward(self.sim_state, self._users, items), dtype=np.float64)

    def action_masks(self) -> np.ndarray:
        """``(1, n_items)`` bool: the items the running episode may recommend now (a copy)."""
        return ~self.blocked[None]

    def simulator_state(self) -> SimulatorSnapshot:
        """:meth:`EpisodeBatch.simulator_state` of the running episode (a batch of one)."""
        return SimulatorSnapshot(copy_state(self.sim_state), self._users.copy(), ~self.blocked[None],
                                 np.array([self.max_steps - self.steps]), bool(self.allow_repeats))

    def observation(self) -> dict[str, np.ndarray]:
        pad = self.layout.pad_item
        hist = np.array(self.hist_items, dtype=np.int64)
        pos = np.array(self.pos_items, dtype=np.int64)
        neg = np.array(self.neg_items, dtype=np.int64)
        return {
            "user": self._users.copy(),
            "history_items": hist,
            "history_mask": (hist != pad).view(np.int8),
            "history_feedback": np.array(self.hist_feedback, dtype=np.float32),
            "history_behavior": np.array(self.hist_behavior, dtype=np.int8),
            "history_time": np.array(self.hist_time, dtype=np.float32),
            "positive_items": pos,
            "positive_mask": (pos != pad).view(np.int8),
            "negative_items": neg,
            "negative_mask": (neg != pad).view(np.int8),
            "consumed": np.array(self.consumed, dtype=np.int64),
        }


# -- the unavailable-item rule ------------------------------------------------------------


def _penalty(simulator: UserSimulator) -> tuple[float, float]:
    """``(rating, reward)`` of a position that named an unavailable item: a skip at the scale's lowest rating."""
    return float(simulator.scale.low), float(simulator.skip_reward)


def _stand_in(simulator: UserSimulator, user: int, item: int, blocked: np.ndarray) -> int:
    """The item to ask the simulator about for a penalised position.

    A repeat is shown again, so the simulator answers it (its dynamics, boredom
    say, see the repeat). An item outside the user's candidate set cannot be
    answered (only a logged-replay user has one, and it is stateless), so any
    candidate stands in for the call and its answer is replaced by the penalty.
    """
    candidates = simulator.candidate_items(user)
    if candidates is None or item in set(np.asarray(candidates).tolist()):
        return item
    return int(candidates[0]) if len(candidates) else item


def _check_unavailable(
    unavailable: np.ndarray, items: np.ndarray, users: np.ndarray, config: EpisodeConfig,
    simulator: UserSimulator, blocked: np.ndarray,
) -> np.ndarray:
    """Apply the ``unavailable`` rule: raise under ``"error"``; else the items to ask the simulator about."""
    if not unavailable.any():
        return items
    rows, cols = np.nonzero(unavailable)
    if config.unavailable == "error":
        pairs = [(int(users[r]), int(items[r, c])) for r, c in zip(rows[:5], cols[:5])]
        raise InvalidActionError(
            f"{len(rows)} recommendation(s) name an unavailable item (user, item): {pairs}; "
            "this environment refuses them (unavailable='error'): choose among env.action_masks()"
        )
    asked = items.copy()
    for r, c in zip(rows, cols):
        asked[r, c] = _stand_in(simulator, int(users[r]), int(items[r, c]), blocked[r])
    return asked


def _penalise(fb: Feedback, unavailable: np.ndarray, penalty: tuple[float, float]) -> Feedback:
    """``fb`` with the unavailable positions answered by a skip at the lowest rating."""
    rating, reward, behavior = fb.rating.copy(), fb.reward.copy(), fb.behavior.copy()
    rating[unavailable] = penalty[0]
    reward[unavailable] = penalty[1]
    behavior[unavailable] = int(Behavior.SKIP)
    return Feedback(rating, reward, behavior, fb.left)
