"""The arguments of every agent: one pydantic model per agent, the source of its defaults and of its checks.

Each registered agent names its model (:attr:`agents.registry.AgentSpec.arguments`): a field per
argument, with its default, the values it allows (a :class:`Rule`) and a description. ``agents.make``,
the agent classes built directly (``MaskedDQN(...)``, ``DRR(...)``, ``DEERS(...)``,
``LinUCBAgent(...)``) and the command line (``TrainConfig``) all read their defaults from it and
check against it, so a bad setting stops a run at once with a message naming it, not as a
``TypeError`` from deep inside stable-baselines3, or a ``ZeroDivisionError`` after the first 500
steps of training:

>>> validate_agent_kwargs("dqn", {"batch_size": 0}, None, {})  # doctest: +SKIP
ValueError: invalid settings for agent 'dqn': batch_size=0: must be a positive integer (default 64). Valid agent arguments: ...

Values are checked, never converted: what reaches the agent is what was given (``1`` stays an
``int``), so a run trains as it did before the models existed. The state encoders' arguments are
their constructors' (:func:`encoder_arguments`), checked by name against :data:`ENCODER_RULES`.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from numbers import Integral, Real
from os import PathLike
from typing import Annotated, Any, Callable

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError

import state_encoders
from agents.per import DEFAULT_ALPHA, DEFAULT_BETA0, DEFAULT_EPS

#: the encoder's arguments ``agents.make`` provides (the observation space)
ENCODER_RESERVED = frozenset({"self", "observation_space"})
#: what ``encoder_kwargs`` may hold besides the constructor's arguments: pretrained weights to load
#: (a folder written by ``recgym pretrain``) and whether to keep them fixed (agents/registry.py, state_encoders/weights.py)
ENCODER_LOADER_ARGUMENTS = {"weights": None, "freeze": False}
#: exploration noises of the actor-critic agents (agents/drr.py:make_action_noise)
NOISE_KINDS = ("ou", "gaussian", "none")
#: where DEERS's competitor items' feedback comes from (agents/deers.py:feedback_table)
COMPETITOR_SOURCES = ("log", "simulator")


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))


@dataclass(frozen=True)
class Rule:
    """The values an argument allows: ``allowed`` says them in words, ``test`` decides.

    As a pydantic validator it returns the value unchanged (checked, not converted) or raises
    ``ValueError("must be <allowed>")``.
    """

    allowed: str
    test: Callable[[Any], bool]

    def __call__(self, value: Any) -> Any:
        if not self.test(value):
            raise ValueError(f"must be {self.allowed}")
        return value


def _interval(low: float, high: float, low_open: bool = False) -> Rule:
    def test(value: Any) -> bool:
        return _is_real(value) and (low < value if low_open else low <= value) and value <= high

    return Rule(f"a number in {'(' if low_open else '['}{low:g}, {high:g}]", test)


def _one_of(choices: tuple[str, ...]) -> Rule:
    return Rule(f"one of {', '.join(choices)}", lambda value: value in choices)


def _weights_test(value: Any) -> bool:
    # a folder's own problems (missing, not written by `recgym pretrain`) are reported by _pretrained_problems
    return value is None or isinstance(value, (str, PathLike))


POSITIVE_INT = Rule("a positive integer", lambda v: _is_int(v) and v > 0)
NON_NEGATIVE_INT = Rule("an integer >= 0", lambda v: _is_int(v) and v >= 0)
OPTIONAL_POSITIVE_INT = Rule("a positive integer (or null for the default)", lambda v: v is None or (_is_int(v) and v > 0))
LEARNING_RATE = Rule("a finite number > 0", lambda v: callable(v) or (_is_real(v) and v > 0))  # or an SB3 schedule
POSITIVE_REAL = Rule("a finite number > 0", lambda v: _is_real(v) and v > 0)
OPTIONAL_POSITIVE_REAL = Rule("a finite number > 0 (or null for the default)", lambda v: v is None or (_is_real(v) and v > 0))
NON_NEGATIVE_REAL = Rule("a finite number >= 0", lambda v: _is_real(v) and v >= 0)
UNIT_INTERVAL = _interval(0.0, 1.0)  # gamma 0: myopic, the right discount where the simulator is stateless
TAU = _interval(0.0, 1.0, low_open=True)
BOOLEAN = Rule("true or false", lambda v: isinstance(v, bool))
MAPPING = Rule("a mapping of names to values", lambda v: v is None or isinstance(v, dict))
TRAIN_FREQ = Rule(
    "a positive integer or [N, 'step' | 'episode'] (or null: from replay_ratio)",
    lambda v: v is None or (_is_int(v) and v > 0) or (
        isinstance(v, (list, tuple)) and len(v) == 2 and _is_int(v[0]) and v[0] > 0 and v[1] in ("step", "episode")),
)
GRADIENT_STEPS = Rule("a positive integer or -1 (or null: from replay_ratio)",
                      lambda v: v is None or (_is_int(v) and (v > 0 or v == -1)))
NOISE = _one_of(NOISE_KINDS)
COMPETITOR_FEEDBACK = _one_of(COMPETITOR_SOURCES)
WEIGHTS_FOLDER = Rule("the path of a folder written by `recgym pretrain`", _weights_test)
HIDDEN_WIDTHS = Rule(  # DRR-att takes one width; DIN and HPMN a sequence of widths, one per hidden layer
    "a positive integer (DRR-att) or a non-empty list of positive integers (DIN, HPMN)",
    lambda v: (_is_int(v) and v > 0) or (isinstance(v, (list, tuple)) and bool(v) and all(_is_int(w) and w > 0 for w in v)),
)


def _checked(rule: Rule) -> PlainValidator:
    return PlainValidator(rule)


PositiveInt = Annotated[int, _checked(POSITIVE_INT)]
NonNegativeInt = Annotated[int, _checked(NON_NEGATIVE_INT)]
OptionalPositiveInt = Annotated["int | None", _checked(OPTIONAL_POSITIVE_INT)]
LearningRate = Annotated[Any, _checked(LEARNING_RATE)]
PositiveReal = Annotated[float, _checked(POSITIVE_REAL)]
OptionalPositiveReal = Annotated["float | None", _checked(OPTIONAL_POSITIVE_REAL)]
NonNegativeReal = Annotated[float, _checked(NON_NEGATIVE_REAL)]
UnitInterval = Annotated[float, _checked(UNIT_INTERVAL)]
Tau = Annotated[float, _checked(TAU)]
Boolean = Annotated[bool, _checked(BOOLEAN)]
Mapping = Annotated["dict[str, Any] | None", _checked(MAPPING)]
TrainFreq = Annotated[Any, _checked(TRAIN_FREQ)]
GradientSteps = Annotated["int | None", _checked(GRADIENT_STEPS)]
Noise = Annotated[str, _checked(NOISE)]
CompetitorFeedback = Annotated[str, _checked(COMPETITOR_FEEDBACK)]

#: who consumes an argument: the SB3 algorithm's constructor, the agent class's own keyword
#: arguments, or ``agents.make``'s builder (never the class)
SB3, CLASS, MAKE = "sb3", "class", "make"


def setting(default: Any, description: str, taken_by: str = SB3) -> Any:
    """A model field: ``default``, a one-line ``description``, and who takes it (:data:`SB3`, :data:`CLASS`, :data:`MAKE`)."""
    return Field(default, description=description, json_schema_extra={"taken_by": taken_by})


class AgentArguments(BaseModel):
    """The arguments an agent takes (``agent_kwargs``): one field each, with its default and allowed values.

    The base takes none (``random``, ``popularity``, ``greedy-pmf``, ``oracle-greedy``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of argument ``name``."""
        return cls.model_fields[name].default

    @classmethod
    def defaults(cls, taken_by: str | None = None) -> dict[str, Any]:
        """Every argument's default (``None``: "not set", the agent derives it), or those ``taken_by`` one consumer."""
        return {name: field.default for name, field in cls.model_fields.items()
                if taken_by is None or _taken_by(field) == taken_by}

    @classmethod
    def given_defaults(cls, taken_by: str | None = None) -> dict[str, Any]:
        """:meth:`defaults` without the ``None`` ones: the values an agent is built with when nothing is given."""
        return {k: v for k, v in cls.defaults(taken_by).items() if v is not None}

    @classmethod
    def allowed(cls, name: str) -> str:
        """The values argument ``name`` allows, in words ("any value" where it is not checked)."""
        for meta in cls.model_fields[name].metadata:
            rule = getattr(meta, "func", None)
            if isinstance(rule, Rule):
                return rule.allowed
        return "any value"

    @classmethod
    def problems(cls, values: dict[str, Any]) -> list[str]:
        """One line per bad argument in ``values``: an unknown name, or a value its rule refuses (with the fix)."""
        try:
            cls.model_validate(values)
        except ValidationError as error:
            lines = []
            for item in error.errors():
                name = str(item["loc"][0]) if item["loc"] else "?"
                if item["type"] == "extra_forbidden":
                    lines.append(f"{name}: unknown argument")
                    continue
                reason = str(item.get("ctx", {}).get("error", item["msg"]))
                default = cls.default(name)
                fix = "leave it out for the default" + ("" if default is None else f", {default!r}")
                lines.append(f"{name}={values.get(name, item.get('input'))!r}: {reason} ({fix})")
            return lines
        return []


def _taken_by(field: Any) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return str(extra.get("taken_by", SB3))


class LinUCBArguments(AgentArguments):
    """``linucb``: disjoint LinUCB (Li et al. 2010)."""

    alpha: NonNegativeReal = setting(0.5, "exploration weight α of p = θᵀx + α sqrt(xᵀA⁻¹x) (Li et al. 2010, Alg. 1)", CLASS)
    ridge: PositiveReal = setting(1.0, "A_a starts at ridge · I (Li et al.: the identity)", CLASS)


class TopicRuleArguments(AgentArguments):
    """``greedy-pmf-topics``: greedy-pmf minus a penalty for recently shown topics.

    The penalty was chosen on ML100K-Behavior-v1's training users, seed 100 (not a reported seed),
    100-step episodes: 0.25 / 0.5 / 1 with a window of 2 gave 177 / 179 / 178 per episode against 43
    for greedy-pmf; windows of 4 gave 174-176 (docs/agents.md).
    """

    penalty: NonNegativeReal = setting(0.5, "penalty (reward units) per recent showing of an item's topics", CLASS)
    window: PositiveInt = setting(2, "how many of the latest shown items count", CLASS)


class OracleTopicRuleArguments(TopicRuleArguments):
    """``oracle-greedy-topics``: the same rule on oracle-greedy.

    On the same tuning users (window 2) penalties 1 / 2 / 3 / 4 / 6 / 8 / 12 gave 173 / 189 / 194 /
    203 / 206 / 206 / 206 per episode, against oracle-greedy's 153 and the planner's 207.5 there.
    """

    penalty: NonNegativeReal = setting(6.0, "penalty in reward units (skip 0 / click 1 / purchase 5)", CLASS)


class PlannerArguments(AgentArguments):
    """``planner``: receding-horizon planning with the live simulator."""

    horizon: PositiveInt = setting(8, "H: steps looked ahead, the first included (SARDINE's boredom lasts 5)", CLASS)
    n_candidates: PositiveInt = setting(8, "candidate first items, in order of expected one-step reward", CLASS)
    n_diverse: NonNegativeInt = setting(8, "extra candidate first items picked for diversity from the shortlist", CLASS)
    shortlist: PositiveInt = setting(32, "items the continuation policy chooses from", CLASS)


class OffPolicyArguments(AgentArguments):
    """What recgym's SB3 off-policy agents share: SB3's arguments, the replay's, and ``agents.make``'s builder's."""

    learning_rate: LearningRate = setting(1e-3, "Adam learning rate (the critic's for DRR); DRR reimplementations")
    buffer_size: PositiveInt = setting(
        100_000, "replay capacity; DRR uses 1e6, 1e5 transitions (~80 MB of Dict observations) suffice here")
    learning_starts: NonNegativeInt = setting(500, "environment steps before the first update")
    batch_size: PositiveInt = setting(64, "transitions per gradient step (DRR)")
    tau: Tau = setting(1.0, "soft update coefficient of the target networks (1: hard copies)")
    gamma: UnitInterval = setting(0.9, "discount (DRR: short-horizon recommendation episodes; 0 is myopic)")
    train_freq: TrainFreq = setting(None, "env.step calls between updates (default: from replay_ratio)")
    gradient_steps: GradientSteps = setting(None, "gradient steps per update (default: from replay_ratio)")
    replay_buffer_class: Any = setting(None, "SB3's replay buffer class (default: chosen from the replay arguments)")
    replay_buffer_kwargs: Mapping = setting(None, "the replay buffer's own arguments")
    optimize_memory_usage: Boolean = setting(False, "SB3's memory-efficient replay buffer")
    n_steps: PositiveInt = setting(1, "n of n-step returns (1: one-step targets; not combined with PER)")
    tensorboard_log: Any = setting(None, "SB3's TensorBoard folder")
    policy_kwargs: Mapping = setting(None, "the policy's arguments (net_arch, q_head, ...), over agents.make's")
    verbose: NonNegativeInt = setting(0, "SB3's verbosity")
    prioritized_replay: Boolean = setting(False, "sample with proportional PER (Schaul et al. 2016)", CLASS)
    per_alpha: NonNegativeReal = setting(DEFAULT_ALPHA, "α of PER (Schaul et al. 2016, Table 3)", CLASS)
    per_beta0: UnitInterval = setting(DEFAULT_BETA0, "initial β of PER, annealed linearly to 1 (Schaul et al. 2016)",
                                      CLASS)
    per_eps: PositiveReal = setting(DEFAULT_EPS, "ε added to |δ|: no transition has zero probability", CLASS)
    encoder_kwargs: Mapping = setting(None, "the state encoder's arguments (also given on their own)", MAKE)
    freeze_embeddings: Boolean = setting(True, "keep the encoder's PMF item and user tables fixed", MAKE)
    normalize_embeddings: Boolean = setting(True, "scale the PMF tables the encoder starts from", MAKE)
    replay_ratio: PositiveReal = setting(0.25, "gradient steps per transition (sets train_freq and gradient_steps)",
                                         MAKE)


class DQNArguments(OffPolicyArguments):
    """``dqn``: DQN over item ids with a state encoder, consumed items masked (docs/agents.md has the sources).

    ``replay_ratio`` 1/4: one batch of 64 per 4 transitions, each replayed ~16 times (Nature DQN: 32
    per 4 steps, ~8 times); tuned for sample efficiency on the training users (seed 100): on
    ML100K-Behavior-v1 with the DRR-ave state, 30k steps, 45.1 against 31.4 reward per episode for
    the former 1/16; on ML100K-PMF with 100-step episodes, 20k steps, 0.435 against 0.417 per step.
    """

    target_update_interval: PositiveInt = setting(
        5_000, "environment steps between target copies: ~300 gradient steps at the default replay ratio, "
        "as SB3's Atari setting; at 500 the test reward on ML-100K fell towards random (docs/agents.md)")
    exploration_fraction: UnitInterval = setting(0.2, "fraction of training over which ε decays")
    exploration_initial_eps: UnitInterval = setting(1.0, "ε at the start of training")
    exploration_final_eps: UnitInterval = setting(0.05, "ε after the decay (SB3 / Nature DQN)")
    max_grad_norm: PositiveReal = setting(10.0, "gradient clipping norm (SB3)")
    stats_window_size: PositiveInt = setting(100, "episodes SB3 averages its logged statistics over")
    double_q: Boolean = setting(True, "Double-DQN target (van Hasselt et al. 2016): ~1,700 actions overestimate", CLASS)


class DEERSArguments(DQNArguments):
    """``deers``: DQN over GRU states of liked/skipped items with the pairwise loss (Zhao et al. 2018)."""

    double_q: Boolean = setting(False, "Double-DQN target (DEERS: plain DQN targets)", CLASS)
    pairwise_alpha: NonNegativeReal = setting(
        0.1, "α of the pairwise term (not reported by Zhao et al.; small, so the TD term dominates)", CLASS)
    pairwise_clip: OptionalPositiveReal = setting(None, "clamp of |Q(s, a) - Q(s, a^C)| (default 2 / (1 - γ))", CLASS)
    competitor_feedback: CompetitorFeedback = setting("log", "feedback of the competitor items: the log's or the "
                                                      "simulator's", CLASS)
    n_clusters: OptionalPositiveInt = setting(None, "k of the k-means categories when the log has no genres "
                                              "(default min(20, max(2, n_items // 20)))", CLASS)


class DRRArguments(OffPolicyArguments):
    """``drr``: DDPG with DRR's state module and prioritized replay (Liu et al. 2018)."""

    tau: Tau = setting(0.01, "soft update coefficient (DRR reimplementations; some use 1e-3)")
    action_noise: Any = setting(None, "an SB3 ActionNoise (default: from noise and noise_sigma)")
    actor_learning_rate: LearningRate = setting(1e-4, "the actor's Adam learning rate (DRR reimplementations)", CLASS)
    action_penalty: NonNegativeReal = setting(
        0.1, "λ of the actor's λ mean(z²) penalty on its pre-tanh outputs (not in DRR: keeps it out of saturation)",
        CLASS)
    prioritized_replay: Boolean = setting(True, "sample with proportional PER (DRR: yes)", CLASS)
    noise: Noise = setting("ou", "exploration noise: Ornstein-Uhlenbeck (DDPG, DRR), gaussian or none", MAKE)
    noise_sigma: NonNegativeReal = setting(0.2, "noise scale σ per coordinate (Lillicrap et al. 2016)", MAKE)
    replay_ratio: PositiveReal = setting(0.125, "gradient steps per transition: one update of 64 per 8 transitions",
                                         MAKE)


class DDPGArguments(DRRArguments):
    """``ddpg``: DDPG in item-embedding space without DRR's state module (DRR's DDPG baseline)."""

    prioritized_replay: Boolean = setting(False, "sample with proportional PER (DRR's DDPG baseline: no)", CLASS)


#: checks of the state encoders' arguments, by name (their values are their constructors' defaults)
ENCODER_RULES: dict[str, Rule] = {
    "n_clusters": OPTIONAL_POSITIVE_INT,
    "embedding_dim": OPTIONAL_POSITIVE_INT,
    "hidden_size": POSITIVE_INT,
    "attention_hidden": HIDDEN_WIDTHS,
    "weights": WEIGHTS_FOLDER,
    "freeze": BOOLEAN,
}


def _by_default(default: Any) -> Rule | None:
    """A type check from a constructor parameter's default, for the arguments :data:`ENCODER_RULES` does not name."""
    if isinstance(default, bool):
        return BOOLEAN
    if _is_int(default):
        return Rule("an integer", _is_int)
    if isinstance(default, float):
        return Rule("a finite number", _is_real)
    if isinstance(default, str):
        return Rule("a string", lambda v: isinstance(v, str))
    return None


def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword parameters of ``cls(...)``, following ``**kwargs`` up the base classes."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        signature = inspect.signature(klass.__init__)
        for p in signature.parameters.values():
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                params.setdefault(p.name, p)
        if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            break
    return params


def check_constructor_arguments(cls: type, values: dict[str, Any]) -> None:
    """Check an agent class's constructor arguments against its model (``cls.arguments``), as ``agents.make`` does.

    The agent classes call this, so an agent built directly (``MaskedDQN(...)``) is held to the
    ranges ``agents.make`` and the command line apply. Names the model does not hold are left to
    the constructor (it raises ``TypeError`` for them).

    :param cls: the agent class being built (its ``arguments`` is an :class:`AgentArguments` model).
    :param values: its keyword arguments.
    :raises ValueError: listing every bad value.
    """
    model: type[AgentArguments] = cls.arguments  # type: ignore[attr-defined]
    problems = model.problems({k: v for k, v in values.items() if k in model.model_fields})
    if problems:
        raise ValueError(f"invalid settings for {cls.__name__}: {'; '.join(problems)}")


def arguments_model(name: str) -> type[AgentArguments]:
    """The :class:`AgentArguments` model of registered agent ``name``."""
    from agents.registry import spec as agent_spec  # here: the agent classes import this module, the registry them

    return agent_spec(name).arguments


def agent_arguments(name: str) -> dict[str, Any]:
    """The settings agent ``name`` takes (``agent_kwargs``), with their defaults (None: derived by the agent).

    :param name: a registered agent.
    """
    return arguments_model(name).defaults()


def encoder_arguments(encoder: str) -> dict[str, Any]:
    """The settings state encoder ``encoder`` takes (``encoder_kwargs``), with their defaults.

    :param encoder: a registered state encoder.
    """
    params = constructor_parameters(state_encoders.encoder_class(encoder))
    return {**{k: p.default for k, p in params.items() if k not in ENCODER_RESERVED}, **ENCODER_LOADER_ARGUMENTS}


def _encoder_problems(values: dict[str, Any], valid: dict[str, Any]) -> list[str]:
    problems = []
    for key, value in values.items():
        if key not in valid:
            problems.append(f"{key}: unknown argument")
            continue
        rule = ENCODER_RULES.get(key) or _by_default(valid[key])
        if rule is not None and not rule.test(value):
            problems.append(f"{key}={value!r}: must be {rule.allowed}")
    return problems


def _pretrained_problems(encoder: str, settings: dict[str, Any]) -> list[str]:
    """The pretrained weights in ``settings`` must be a folder written for ``encoder``; ``freeze`` needs weights."""
    weights = settings.get("weights")
    if weights is None:
        return ["encoder_kwargs: freeze=true needs weights (a folder written by `recgym pretrain`)"] \
            if settings.get("freeze") is True else []
    if not WEIGHTS_FOLDER.test(weights):
        return []  # already reported
    from state_encoders.weights import PretrainedWeightsError, read_description

    try:
        saved = read_description(weights)["encoder"]
    except PretrainedWeightsError as err:
        return [f"encoder {encoder!r}: weights={weights!r}: {err}"]
    if saved != encoder:
        return [f"the pretrained weights in {weights} are for encoder {saved!r}, not {encoder!r}: "
                f"use --encoder {saved} or pretrain {encoder!r}"]
    return []


def validate_agent_kwargs(name: str, kwargs: dict, encoder: str | None, encoder_kwargs: dict) -> None:
    """Check the settings of agent ``name`` and of its state encoder before anything is built.

    :param name: a registered agent (``agents.available()``).
    :param kwargs: the agent's keyword arguments (``agent_kwargs`` of a run).
    :param encoder: the state encoder (None: the agent's default).
    :param encoder_kwargs: the encoder's keyword arguments (also accepted inside ``kwargs``).
    :raises ValueError: listing every bad argument, and the valid names.
    """
    from agents.registry import spec as agent_spec  # here: the agent classes import this module, the registry them

    spec = agent_spec(name)
    for label, value in (("agent_kwargs", kwargs), ("encoder_kwargs", encoder_kwargs)):
        if not isinstance(value, dict):
            raise ValueError(f"{label} of agent {name!r} must be a mapping of names to values, got {type(value).__name__}")
    model = spec.arguments
    problems = model.problems(kwargs)
    nested = kwargs.get("encoder_kwargs")
    if isinstance(nested, dict) and nested and encoder_kwargs:
        problems.append("encoder_kwargs: given both as an agent argument and on its own; give it once")
    encoder_settings = {**(nested if isinstance(nested, dict) else {}), **encoder_kwargs}
    encoder_valid: dict[str, Any] = {}
    if spec.uses_encoder:
        encoder = spec.default_encoder if encoder is None else encoder
        encoder_valid = encoder_arguments(encoder)
        problems += [f"encoder {encoder!r}: {p}" for p in _encoder_problems(encoder_settings, encoder_valid)]
        problems += _pretrained_problems(encoder, encoder_settings)
    elif encoder is not None or encoder_settings:
        problems.append(f"agent {name!r} is not a learning agent and takes no encoder nor encoder_kwargs")
    if problems:
        names = f"Valid agent arguments: {', '.join(sorted(model.model_fields)) or '(none)'}"
        if spec.uses_encoder:
            names += f"; valid encoder arguments ({encoder}): {', '.join(sorted(encoder_valid))}"
        raise ValueError(f"invalid settings for agent {name!r}: {'; '.join(problems)}. {names}")
