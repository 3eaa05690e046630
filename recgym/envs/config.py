"""One frozen, validated definition of an episode, and the one place environment keywords are resolved.

Every environment takes a :class:`~recgym.scenario.Scenario` plus an
:class:`EpisodeConfig`. ``gymnasium.make`` / ``make_vec`` and the runner pass
flat keywords instead; :func:`resolve_env_kwargs` splits them into the
scenario's (:class:`~recgym.scenario.ScenarioSpec`) and the episode's, builds
(or reuses) the scenario, and refuses unknown names. The single environment,
the vector environment and the runner all call it, so the keywords are
defined once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from recgym.scenario import SCENARIO_KEYWORDS, Scenario, ScenarioSpec

ACTION_MODES = ("discrete", "embedding")
REWARD_MODES = ("normalised", "rating")
#: what happens when a discrete action names an item that is not available (see :class:`EpisodeConfig`)
UNAVAILABLE_RULES = ("penalise", "error")
#: what an observation is: recgym's dict of histories (for its encoders) or a float32 feature vector (any client)
OBSERVATION_MODES = ("dict", "features")

DEFAULT_HISTORY_LENGTH = 5  # N = 5 positive items in DRR's state (Liu et al. 2018, section 4.1)
DEFAULT_MAX_STEPS = 20  # T: DRR's offline table ranks 20 positions
#: an upper bound on T that keeps per-episode arrays small (an episode of a million steps is a mistake)
MAX_STEPS_LIMIT = 1_000_000


def _positive_int(name: str, value: Any, upper: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if upper is not None and value > upper:
        raise ValueError(f"{name} must be at most {upper:,}, got {value!r}")
    return int(value)


def _user_selection(users: Any) -> str | tuple[int, ...]:
    if isinstance(users, str):
        if users not in ("train", "test", "all"):
            raise ValueError(f"users must be 'train', 'test', 'all' or a list of user ids, got {users!r}")
        return users
    if users is None or isinstance(users, (bytes, dict, set)):
        raise ValueError(f"users must be 'train', 'test', 'all' or a list of user ids, got {users!r}")
    try:
        ids = list(np.asarray(users).reshape(-1).tolist()) if isinstance(users, np.ndarray) else list(users)
    except TypeError:
        raise ValueError(f"users must be 'train', 'test', 'all' or a list of user ids, got {users!r}") from None
    bad = [u for u in ids if isinstance(u, bool) or not isinstance(u, (int, np.integer))]
    if bad or not ids:
        raise ValueError(
            f"users must be a non-empty list of integer user ids (or 'train' / 'test' / 'all'); "
            f"got {'an empty list' if not ids else f'non-integer ids {bad[:5]!r}'}"
        )
    return tuple(int(u) for u in ids)


@dataclass(frozen=True)
class EpisodeConfig:
    """What one episode is: the single definition of the environment's episode keywords.

    :param history_length: N, length of the history and of the positive/negative queues.
    :param max_steps: T, steps before truncation.
    :param action_mode: ``"discrete"`` (item id, DQN) or ``"embedding"`` (DRR's actor vector).
    :param slate_size: items recommended per step (reward = sum over the slate).
    :param users: ``"train"`` (default), ``"test"``, ``"all"`` or a tuple of user ids.
    :param reward_mode: ``"normalised"`` (default, [-1, 1]) or ``"rating"`` (the raw rating).
    :param consumed_length: C, length of the ``consumed`` window in the observation (default
        ``history_length + max_steps * slate_size``: the whole episode, capped at the catalogue).
    :param allow_repeats: allow recommending an item again in the episode (EasyRL4Rec's FB mode).
    :param unavailable: what a discrete action naming an unavailable item (already consumed, or
        outside the user's candidates) does. ``"penalise"`` (default): nothing new is shown, the user
        skips with the lowest reward of the scale, and the step counts; ``"error"``: the step raises
        :class:`~recgym.envs.actions.InvalidActionError` (the offline protocol's setting). There is no
        substitution: the item scored is the item the policy chose. ``env.action_masks()`` tells a
        policy which items are available.
    :param observation: ``"dict"`` (default): the ``spaces.Dict`` of histories that recgym's encoders read
        (:mod:`recgym.envs.spaces`); ``"features"``: a float32 ``Box`` of fixed length for generic clients
        (an MLP), see :mod:`recgym.envs.features`.
    :param candidates: K, or None (default). With K, each step the environment draws K available items
        at random (a candidate slate the ``"features"`` observation describes) and the action is
        ``Discrete(K)``: the index of the candidate to recommend. Every action is then available, so
        clients that cannot mask still play by the default rules. Needs ``observation="features"``,
        ``action_mode="discrete"`` and ``slate_size=1``.
    """

    history_length: int = DEFAULT_HISTORY_LENGTH
    max_steps: int = DEFAULT_MAX_STEPS
    action_mode: str = "discrete"
    slate_size: int = 1
    users: Any = "train"
    reward_mode: str = "normalised"
    consumed_length: int | None = None
    allow_repeats: bool = False
    unavailable: str = "penalise"
    observation: str = "dict"
    candidates: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "history_length", _positive_int("history_length", self.history_length, 10_000))
        set_(self, "max_steps", _positive_int("max_steps", self.max_steps, MAX_STEPS_LIMIT))
        set_(self, "slate_size", _positive_int("slate_size", self.slate_size, 10_000))
        if self.consumed_length is not None:
            set_(self, "consumed_length", _positive_int("consumed_length", self.consumed_length, MAX_STEPS_LIMIT))
        if self.action_mode not in ACTION_MODES:
            raise ValueError(f"unknown action_mode {self.action_mode!r}; choose one of {list(ACTION_MODES)}")
        if self.reward_mode not in REWARD_MODES:
            raise ValueError(f"unknown reward_mode {self.reward_mode!r}; choose one of {list(REWARD_MODES)}")
        if self.unavailable not in UNAVAILABLE_RULES:
            raise ValueError(f"unknown unavailable rule {self.unavailable!r}; choose one of {list(UNAVAILABLE_RULES)}")
        if not isinstance(self.allow_repeats, (bool, np.bool_)):
            raise ValueError(f"allow_repeats must be True or False, got {self.allow_repeats!r}")
        set_(self, "users", _user_selection(self.users))
        if self.observation not in OBSERVATION_MODES:
            raise ValueError(f"unknown observation {self.observation!r}; choose one of {list(OBSERVATION_MODES)}")
        if self.candidates is not None:
            set_(self, "candidates", _positive_int("candidates", self.candidates, 10_000))
            if self.observation != "features" or self.action_mode != "discrete" or self.slate_size != 1:
                raise ValueError(
                    f"candidates={self.candidates} needs observation='features', action_mode='discrete' and "
                    f"slate_size=1 (got observation={self.observation!r}, action_mode={self.action_mode!r}, "
                    f"slate_size={self.slate_size}): only the feature observation describes the candidates; "
                    "drop candidates for the other settings"
                )

    def replace(self, **changes: Any) -> "EpisodeConfig":
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def window(self, n_items: int) -> int:
        """C: the ``consumed`` window length for a catalogue of ``n_items`` items."""
        if self.consumed_length is not None:
            return self.consumed_length
        # a window longer than the catalogue plus the start items holds nothing more
        return min(self.history_length + self.max_steps * self.slate_size, n_items + self.history_length)


#: the keyword names of :class:`EpisodeConfig`
EPISODE_KEYWORDS = tuple(f.name for f in dataclasses.fields(EpisodeConfig))


def resolve_env_kwargs(
    scenario: Scenario | None = None, config: EpisodeConfig | None = None, **kwargs: Any
) -> tuple[Scenario, EpisodeConfig]:
    """Turn an environment's arguments into a scenario and an episode configuration.

    :param scenario: a built scenario; the data keywords (``dataset``, ``simulator``, ...) must
        then be absent, or equal the scenario's own (``gymnasium.make`` passes an id's registered
        ``dataset`` and ``simulator``).
    :param config: an episode configuration; episode keywords given as well override its fields.
    :param kwargs: keywords of :class:`~recgym.scenario.ScenarioSpec` and :class:`EpisodeConfig`.
    :raises ValueError: for unknown keywords (all listed at once) and invalid values.
    """
    unknown = sorted(set(kwargs) - set(SCENARIO_KEYWORDS) - set(EPISODE_KEYWORDS))
    if unknown:
        raise ValueError(
            f"unknown environment keyword(s) {unknown}; episode keywords: {', '.join(EPISODE_KEYWORDS)}; "
            f"data keywords: {', '.join(SCENARIO_KEYWORDS)}"
        )
    data = {k: kwargs[k] for k in SCENARIO_KEYWORDS if k in kwargs}
    episode = {k: kwargs[k] for k in EPISODE_KEYWORDS if k in kwargs}
    if scenario is None:
        scenario = ScenarioSpec(**data).build()
    else:
        if not isinstance(scenario, Scenario):
            raise ValueError(f"scenario must be a recgym Scenario (make_scenario(...)), got {type(scenario).__name__}")
        spec = scenario.spec
        clash = sorted(k for k, v in data.items() if spec is None or getattr(spec, k) != v)
        if clash:
            raise ValueError(
                f"a scenario was given, so the data keywords {clash} cannot change it; build another scenario "
                "with recgym.make_scenario(...) instead"
            )
    if config is None:
        config = EpisodeConfig(**episode)
    elif not isinstance(config, EpisodeConfig):
        raise ValueError(f"config must be an EpisodeConfig, got {type(config).__name__}")
    elif episode:
        config = config.replace(**episode)
    return scenario, config
