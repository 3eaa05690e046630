"""Check an agent's and its state encoder's keyword arguments before anything is built.

A bad setting should stop a run at once with a message naming it, not as a
``TypeError`` from deep inside stable-baselines3, or a ``ZeroDivisionError``
after the first 500 steps of training. :func:`validate_agent_kwargs` checks
the names against the constructors' signatures (what ``agents.make`` passes
them to) and the values against basic types and ranges:

>>> validate_agent_kwargs("dqn", {"batch_size": 0}, None, {})  # doctest: +SKIP
ValueError: invalid settings for agent 'dqn': batch_size=0: must be a positive integer. Valid agent arguments: ...
"""

from __future__ import annotations

import inspect
import math
from os import PathLike
from numbers import Integral, Real
from typing import Any, Callable

import state_encoders

#: arguments the registry's builders of the learning agents take for themselves (agents/registry.py:_policy_kwargs)
BUILDER_ARGUMENTS = ("encoder_kwargs", "freeze_embeddings", "normalize_embeddings", "policy_kwargs", "replay_ratio")
#: the same for the actor-critic agents (agents/registry.py:_drr_builder)
ACTOR_CRITIC_ARGUMENTS = ("action_noise", "noise", "noise_sigma")
#: exploration noises of the actor-critic agents (agents/drr.py:make_action_noise)
NOISE_KINDS = ("ou", "gaussian", "none")
#: set by ``agents.make`` and the run itself: not settings
RESERVED = frozenset({"self", "policy", "env", "seed", "device", "_init_setup_model"})
#: the encoder's arguments ``agents.make`` provides (the observation space)
ENCODER_RESERVED = frozenset({"self", "observation_space"})
#: what ``encoder_kwargs`` may hold besides the constructor's arguments: pretrained weights to load
#: (a folder written by ``recgym pretrain``) and whether to keep them fixed (agents/registry.py, state_encoders/weights.py)
ENCODER_LOADER_ARGUMENTS = {"weights": None, "freeze": False}


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _positive_int(value: Any) -> str | None:
    return None if _is_int(value) and value > 0 else "must be a positive integer"


def _non_negative_int(value: Any) -> str | None:
    return None if _is_int(value) and value >= 0 else "must be an integer >= 0"


def _optional_positive_int(value: Any) -> str | None:
    return None if value is None else _positive_int(value)


def _learning_rate(value: Any) -> str | None:
    if callable(value):  # an SB3 schedule, given from Python
        return None
    return None if _is_real(value) and value > 0 else "must be a finite number > 0"


def _real_in(low: float, high: float, low_open: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        ok = _is_real(value) and (low < value if low_open else low <= value) and value <= high
        return None if ok else f"must be a number in {'(' if low_open else '['}{low:g}, {high:g}]"

    return check


def _non_negative_real(value: Any) -> str | None:
    return None if _is_real(value) and value >= 0 else "must be a finite number >= 0"


def _positive_real(value: Any) -> str | None:
    return None if _is_real(value) and value > 0 else "must be a finite number > 0"


def _optional_positive_real(value: Any) -> str | None:
    return None if value is None else _positive_real(value)


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _mapping(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict) else "must be a mapping of names to values"


def _train_freq(value: Any) -> str | None:
    if _is_int(value) and value > 0:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2 and _is_int(value[0]) and value[0] > 0 \
            and value[1] in ("step", "episode"):
        return None
    return "must be a positive integer or [N, 'step' | 'episode']"


def _gradient_steps(value: Any) -> str | None:
    return None if _is_int(value) and (value > 0 or value == -1) else "must be a positive integer (or -1)"


def _weights_folder(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, PathLike)):
        return "must be the path of a folder written by `recgym pretrain`"
    from state_encoders.weights import PretrainedWeightsError, read_description

    try:
        read_description(value)
    except PretrainedWeightsError as err:
        return str(err)
    return None


def _hidden_widths(value: Any) -> str | None:
    # DRR-att takes one width; DIN and HPMN a sequence of widths, one per hidden layer
    if _is_int(value) and value > 0:
        return None
    if isinstance(value, (list, tuple)) and value and all(_is_int(v) and v > 0 for v in value):
        return None
    return "must be a positive integer (DRR-att) or a non-empty list of positive integers (DIN, HPMN)"


def _noise(value: Any) -> str | None:
    return None if value in NOISE_KINDS else f"must be one of {', '.join(NOISE_KINDS)}"


#: checks by argument name, for the agents and the encoders alike
CHECKS: dict[str, Callable[[Any], str | None]] = {
    # sizes and counts
    "buffer_size": _positive_int,
    "batch_size": _positive_int,
    "n_steps": _positive_int,
    "target_update_interval": _positive_int,
    "stats_window_size": _positive_int,
    "learning_starts": _non_negative_int,
    "verbose": _non_negative_int,
    "train_freq": _train_freq,
    "gradient_steps": _gradient_steps,
    "n_clusters": _optional_positive_int,
    "embedding_dim": _optional_positive_int,
    "hidden_size": _positive_int,
    "attention_hidden": _hidden_widths,
    # rates and discounts
    "learning_rate": _learning_rate,
    "actor_learning_rate": _learning_rate,
    "gamma": _real_in(0.0, 1.0),  # 0: myopic, the right discount where the simulator is stateless
    "tau": _real_in(0.0, 1.0, low_open=True),
    "exploration_fraction": _real_in(0.0, 1.0),
    "exploration_initial_eps": _real_in(0.0, 1.0),
    "exploration_final_eps": _real_in(0.0, 1.0),
    "per_beta0": _real_in(0.0, 1.0),
    "per_alpha": _non_negative_real,
    "per_eps": _positive_real,
    "max_grad_norm": _positive_real,
    "noise_sigma": _non_negative_real,
    "replay_ratio": _positive_real,
    "action_penalty": _non_negative_real,
    "pairwise_alpha": _non_negative_real,
    "pairwise_clip": _optional_positive_real,
    "alpha": _non_negative_real,  # LinUCB's exploration width
    "ridge": _positive_real,
    # switches and nested settings
    "noise": _noise,
    "encoder_kwargs": _mapping,
    "policy_kwargs": _mapping,
    "replay_buffer_kwargs": _mapping,
    "pmf_kwargs": _mapping,
    "freeze_embeddings": _boolean,
    "normalize_embeddings": _boolean,
    "weights": _weights_folder,
    "freeze": _boolean,
}


def _by_default(default: Any) -> Callable[[Any], str | None] | None:
    """A type check from a parameter's default, for the arguments :data:`CHECKS` does not name."""
    if isinstance(default, bool):
        return _boolean
    if _is_int(default):
        return lambda v: None if _is_int(v) else "must be an integer"
    if isinstance(default, float):
        return lambda v: None if _is_real(v) else "must be a finite number"
    if isinstance(default, str):
        return lambda v: None if isinstance(v, str) else "must be a string"
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


def _problems(values: dict[str, Any], valid: dict[str, Any]) -> list[str]:
    """One line per bad argument: an unknown name, or a value of the wrong type or range.

    :param values: the arguments given.
    :param valid: the arguments taken, with their defaults.
    """
    problems = []
    for key, value in values.items():
        if key not in valid:
            problems.append(f"{key}: unknown argument")
            continue
        check = CHECKS.get(key) or _by_default(valid[key])
        reason = check(value) if check is not None else None
        if reason:
            problems.append(f"{key}={value!r}: {reason}")
    return problems


def check_constructor_arguments(cls: type, values: dict[str, Any]) -> None:
    """Check the values of an agent class's constructor arguments with the same rules as :func:`validate_agent_kwargs`.

    The agent classes call this, so an agent built directly (``MaskedDQN(...)``) is held
    to the ranges ``agents.make`` and the command line apply. Names the constructor does
    not take are left to it (it raises ``TypeError`` for them).

    :param cls: the agent class being built.
    :param values: its keyword arguments.
    :raises ValueError: listing every bad value.
    """
    valid = {k: p.default for k, p in constructor_parameters(cls).items() if k not in RESERVED}
    problems = _problems({k: v for k, v in values.items() if k in valid}, valid)
    if problems:
        raise ValueError(f"invalid settings for {cls.__name__}: {'; '.join(problems)}")


def agent_arguments(name: str) -> dict[str, Any]:
    """The settings agent ``name`` takes (``agent_kwargs``), with their defaults where known.

    :param name: a registered agent.
    """
    from agents.registry import spec as agent_spec  # here: the agent classes import this module, the registry them

    spec = agent_spec(name)
    params = {k: p.default for k, p in constructor_parameters(spec.agent_class).items() if k not in RESERVED}
    if spec.uses_encoder:
        params.update({k: None for k in BUILDER_ARGUMENTS})
        if spec.action_mode == "embedding":
            params.update({k: None for k in ACTOR_CRITIC_ARGUMENTS})
    params.update({k: v for k, v in spec.defaults.items() if k in params})  # recgym's defaults win over SB3's
    return params


def encoder_arguments(encoder: str) -> dict[str, Any]:
    """The settings state encoder ``encoder`` takes (``encoder_kwargs``), with their defaults.

    :param encoder: a registered state encoder.
    """
    params = constructor_parameters(state_encoders.encoder_class(encoder))
    return {**{k: p.default for k, p in params.items() if k not in ENCODER_RESERVED}, **ENCODER_LOADER_ARGUMENTS}


def _pretrained_problems(encoder: str, settings: dict[str, Any]) -> list[str]:
    """The pretrained weights in ``settings`` must be for ``encoder``; ``freeze`` needs weights."""
    weights = settings.get("weights")
    if weights is None:
        return ["encoder_kwargs: freeze=true needs weights (a folder written by `recgym pretrain`)"] \
            if settings.get("freeze") is True else []
    if _weights_folder(weights) is not None:
        return []  # already reported
    from state_encoders.weights import read_description

    saved = read_description(weights)["encoder"]
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
    valid = agent_arguments(name)
    problems = _problems(kwargs, valid)
    nested = kwargs.get("encoder_kwargs")
    if isinstance(nested, dict) and nested and encoder_kwargs:
        problems.append("encoder_kwargs: given both as an agent argument and on its own; give it once")
    encoder_settings = {**(nested if isinstance(nested, dict) else {}), **encoder_kwargs}
    encoder_valid: dict[str, Any] = {}
    if spec.uses_encoder:
        encoder = spec.default_encoder if encoder is None else encoder
        encoder_valid = encoder_arguments(encoder)
        problems += [f"encoder {encoder!r}: {p}" for p in _problems(encoder_settings, encoder_valid)]
        problems += _pretrained_problems(encoder, encoder_settings)
    elif encoder is not None or encoder_settings:
        problems.append(f"agent {name!r} is not a learning agent and takes no encoder nor encoder_kwargs")
    if problems:
        names = f"Valid agent arguments: {', '.join(sorted(valid)) or '(none)'}"
        if spec.uses_encoder:
            names += f"; valid encoder arguments ({encoder}): {', '.join(sorted(encoder_valid))}"
        raise ValueError(f"invalid settings for agent {name!r}: {'; '.join(problems)}. {names}")
