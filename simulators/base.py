"""The contract every simulated user model follows.

A simulator is fitted from a :class:`~recgym.data.RatingLog` and then answers
recommendations for a *batch* of users at once, with numpy: the environment
hands it ``users`` of shape ``(B,)`` and ``items`` of shape ``(B, k)`` (``k`` is
the slate size, 1 for single-item recommendation) and gets back a
:class:`Feedback` of arrays. Simulators with per-user dynamics (boredom,
patience) keep them in a ``state`` dict of arrays with leading dimension ``B``
that the environment creates with :meth:`UserSimulator.initial_state` and
passes back on every call; the simulator updates it in place. Randomness comes
only from the ``rng`` argument (the environment's ``np_random``), so a seed
reproduces an episode exactly.

Two read-only views serve planners and oracles, which may see the simulator by
design: :meth:`UserSimulator.expected_reward` (the expected one-step reward of
any items) and :meth:`UserSimulator.expected_transition` (the expected reward,
the expected next state and the probability that the user stays, computed on
copies without drawing random numbers).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import IntEnum
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from recgym.data.rating_log import RatingLog, RatingScale


class Behavior(IntEnum):
    """Behaviour type of one interaction. ``PAD`` marks empty history slots."""

    PAD = 0
    SKIP = 1
    CLICK = 2
    PURCHASE = 3


N_BEHAVIORS = len(Behavior)


class Feedback(NamedTuple):
    """A batch of simulated responses.

    :param rating: ``(B, k)`` float64 rating on the dataset's scale.
    :param reward: ``(B, k)`` float64 reward (the normalised rating for rating
        simulators; see each simulator for its reward).
    :param behavior: ``(B, k)`` int8 :class:`Behavior` codes.
    :param left: ``(B,)`` bool, True where the user quits the session.
    """

    rating: np.ndarray
    reward: np.ndarray
    behavior: np.ndarray
    left: np.ndarray


class ExpectedStep(NamedTuple):
    """What :meth:`UserSimulator.expected_transition` predicts for one recommendation step.

    :param reward: ``(B, k)`` float64 expected reward of each recommended item.
    :param state: the expected next state: new arrays (leading dimension ``B``),
        never the ones passed in.
    :param stay: ``(B,)`` float64 probability that the user is still there after
        the step (1 for simulators whose users never leave).
    """

    reward: np.ndarray
    state: dict[str, np.ndarray]
    stay: np.ndarray


def copy_state(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A copy of a simulator state whose arrays can be changed without touching ``state``."""
    return {key: np.array(value, copy=True) for key, value in state.items()}


class NotFittedError(RuntimeError):
    """Raised when a simulator is used before :meth:`UserSimulator.fit`."""


class UserSimulator(ABC):
    """Base class of simulated users.

    Subclasses implement :meth:`fit`, :meth:`respond` and
    :meth:`expected_reward`, and set ``scale``, ``n_users``, ``n_items``,
    ``user_embeddings`` and ``item_embeddings`` when fitted.
    """

    #: short name used in environment ids (``"PMF"``, ``"Replay"``, ``"Behavior"``).
    name: str = "base"

    scale: RatingScale
    n_users: int
    n_items: int
    #: ``(n_users, d)`` float32 user factors (PMF), used to initialise encoders.
    user_embeddings: np.ndarray
    #: ``(n_items, d)`` float32 item factors (PMF): the item embedding space of
    #: DRR's actor and the distance used for "near-duplicate" items.
    item_embeddings: np.ndarray

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "item_embeddings", None) is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call .fit(log) first")

    @abstractmethod
    def fit(self, log: RatingLog) -> "UserSimulator":
        """Fit the user model on a log and return ``self``."""

    def initial_state(self, users: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Per-user dynamic state for a batch of new episodes (empty if stateless)."""
        return {}

    def reset_state(self, state: dict[str, np.ndarray], rows: np.ndarray, users: np.ndarray,
                    rng: np.random.Generator) -> None:
        """Re-initialise ``state`` in place at positions ``rows`` for new ``users``."""
        fresh = self.initial_state(users, rng)
        for key, value in fresh.items():
            state[key][rows] = value

    @abstractmethod
    def respond(
        self,
        state: dict[str, np.ndarray],
        users: np.ndarray,
        items: np.ndarray,
        rng: np.random.Generator,
    ) -> Feedback:
        """Answer recommendations ``items`` ``(B, k)`` made to ``users`` ``(B,)``."""

    def respond_one(
        self, state: dict[str, np.ndarray], user: int, item: int, rng: np.random.Generator
    ) -> tuple[float, float, int, bool]:
        """One user (row 0 of ``state``) and one item: ``(rating, reward, behavior, left)``.

        The single environment calls this every step. The default runs
        :meth:`respond` on a batch of one; simulators override it with scalar
        code that draws the same random numbers, so both paths agree.
        """
        fb = self.respond(state, np.array([user]), np.array([[item]]), rng)
        return float(fb.rating[0, 0]), float(fb.reward[0, 0]), int(fb.behavior[0, 0]), bool(fb.left[0])

    @abstractmethod
    def expected_reward(
        self, state: dict[str, np.ndarray], users: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """Expected one-step reward ``(B, m)`` of each of ``items`` ``(B, m)`` (no noise, no state change).

        This is what the ``oracle-greedy`` baseline maximises.
        """

    def expected_transition(
        self, state: dict[str, np.ndarray], users: np.ndarray, items: np.ndarray
    ) -> ExpectedStep:
        """The expected outcome of recommending ``items`` ``(B, k)`` to ``users`` ``(B,)`` in ``state``.

        Deterministic and read-only: no random numbers are drawn and ``state``
        is not changed; the returned state is a new dict of new arrays. The next
        state is the *expected* one (each state variable averaged over the
        possible feedback), so a planner can roll a user forward several steps
        without sampling (a mean-field rollout). ``reward`` equals
        :meth:`expected_reward` on the same arguments.

        The default suits stateless simulators (PMF, logged replay): the
        expected reward, an unchanged copy of the state and users who never
        leave. Simulators with dynamics override it.
        """
        items = np.asarray(items)
        reward = np.asarray(self.expected_reward(state, users, items), dtype=np.float64)
        return ExpectedStep(reward, copy_state(state), np.ones(items.shape[0]))

    def candidate_items(self, user: int) -> np.ndarray | None:
        """Items that may be recommended to ``user``; ``None`` means every item.

        Simulators that restrict candidates must be stateless: the environment
        never asks them about a non-candidate (see ``EpisodeConfig.unavailable``).
        """
        return None

    @property
    def skip_reward(self) -> float:
        """Reward of a skip at the scale's lowest rating: what a recommendation of an unavailable item earns."""
        return float(self.scale.to_reward(self.scale.low))

    # -- persistence -------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable) that define this simulator."""
        return {}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The fitted arrays that :meth:`save` writes."""
        raise NotImplementedError(f"{type(self).__name__} does not support saving")

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not support loading")

    def save(self, path: str | Path) -> None:
        """Write the fitted simulator to ``path`` (``.npz``), atomically."""
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        arrays = self.state_arrays()
        arrays["__scale__"] = np.array([self.scale.low, self.scale.high, float(self.scale.discrete)])
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, **params: Any) -> "UserSimulator":
        """Read a simulator written by :meth:`save` (constructor ``params`` as when saved)."""
        try:
            with np.load(Path(path)) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as err:
            raise ValueError(f"cannot read simulator file {path}: {err}; delete it to refit") from err
        sim = cls(**params)
        low, high, discrete = arrays.pop("__scale__")
        sim.scale = RatingScale(float(low), float(high), bool(discrete))
        sim.load_arrays(arrays)
        return sim
