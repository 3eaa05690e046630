"""Run configuration: one validated object for ``recgym train`` (flags or a YAML/TOML file)."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A run configuration that cannot be used; the message says which field and why."""


#: settings that say where a run computes, not what it learns: a resumed run (``recgym train --resume``,
#: a rerun of ``recgym compare``) may change them, and a saved configuration without them still matches
RUNTIME_SETTINGS = frozenset({"device"})
#: the evaluation protocols a trained run can be scored under (``recgym evaluate --protocol``,
#: :func:`recgym.experiments.evaluate.evaluate_policy`); the one list every command takes its choices from
PROTOCOLS = ("online", "offline", "long-term")
#: why a run takes no ``users`` setting
RUN_USERS_NOTE = ("a run trains on its environment's training users and is evaluated on its test users; "
                  "choose the user split with split_seed / test_fraction")


def changed_settings(saved: dict[str, Any], given: dict[str, Any],
                     also_free: frozenset[str] = frozenset()) -> list[str]:
    """The settings of two run configurations (``TrainConfig.to_json()``) that differ, sorted.

    :param saved: the configuration a run was started with.
    :param given: the configuration it is continued with.
    :param also_free: further settings that may change (e.g. ``steps`` on resume), besides
        :data:`RUNTIME_SETTINGS`.
    """
    free = RUNTIME_SETTINGS | also_free
    return sorted(k for k in set(saved) | set(given) if k not in free and saved.get(k) != given.get(k))


class TrainConfig(BaseModel):
    """Everything that defines a training run.

    :param env: a registered environment id, e.g. ``recgym/ML100K-PMF-v0``.
    :param agent: agent name (``agents.available()``).
    :param encoder: state encoder name (``state_encoders.available()``); None = the agent's default.
    :param steps: environment steps of training (summed over parallel users).
    :param seed: seed of the agent, the environment and the evaluation.
    :param n_envs: users simulated in parallel during training (the batched env).
    :param checkpoint_every: environment steps between checkpoints.
    :param eval_every: environment steps between evaluations on test users (learning curve).
    :param eval_episodes: test-user episodes per evaluation.
    :param env_kwargs: keyword arguments of the environment (history_length, max_steps, data_dir, ...).
    :param agent_kwargs: keyword arguments of the agent (learning rates, buffer size, ...).
    :param encoder_kwargs: keyword arguments of the state encoder.
    :param encoder_weights: a folder written by ``recgym pretrain``: the encoder starts from those
        pretrained weights (it must be the same encoder, pretrained with the environment's
        history length on the same dataset) instead of the PMF tables.
    :param freeze_encoder: with ``encoder_weights``: keep the pretrained encoder fixed (True, default)
        or fine-tune it with the agent (False).
    :param stop_at_reward: stop training at the first evaluation whose test reward per step reaches
        this value (time-to-quality measurements); None trains all ``steps``.
    :param device: where the agent's networks train: ``auto`` (CUDA when available, else the CPU),
        ``cpu`` or ``cuda`` (:func:`recgym.devices.resolve_device`). A runtime choice: a resumed run
        may change it (:data:`RUNTIME_SETTINGS`), and checkpoints load on either device.
    """

    # strict: a YAML ``steps: true`` or ``n_envs: 8.0`` is refused, not read as 1 or 8
    model_config = ConfigDict(extra="forbid", strict=True)

    env: str = "recgym/ML100K-PMF-v0"
    agent: str = "drr"
    encoder: str | None = None
    steps: int = Field(20_000, ge=1)
    seed: int = Field(0, ge=0)
    n_envs: int = Field(16, ge=1, le=65_536)
    checkpoint_every: int = Field(5_000, ge=1)
    eval_every: int = Field(2_000, ge=1)
    eval_episodes: int = Field(256, ge=1)
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    agent_kwargs: dict[str, Any] = Field(default_factory=dict)
    encoder_kwargs: dict[str, Any] = Field(default_factory=dict)
    encoder_weights: str | None = None
    freeze_encoder: bool = True
    stop_at_reward: float | None = Field(None, allow_inf_nan=False)
    device: str = "auto"

    @field_validator("env")
    @classmethod
    def _known_env(cls, value: str) -> str:
        import gymnasium as gym

        import recgym  # noqa: F401  (registers the ids)

        if value not in gym.registry:
            from recgym.envs.registration import env_ids

            raise ValueError(f"unknown environment id {value!r}; registered recgym ids: {', '.join(env_ids())}")
        return value

    @field_validator("agent")
    @classmethod
    def _known_agent(cls, value: str) -> str:
        import agents

        if value not in agents.available():
            raise ValueError(f"unknown agent {value!r}; choose one of {', '.join(agents.available())}")
        return value

    @field_validator("encoder")
    @classmethod
    def _known_encoder(cls, value: str | None) -> str | None:
        if value is None:
            return value
        import state_encoders

        if value not in state_encoders.available():
            raise ValueError(f"unknown encoder {value!r}; choose one of {', '.join(state_encoders.available())}")
        return value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        # the spelling only: a configuration saved on a GPU machine still reads on a CPU-only one
        from recgym.devices import check_device_name

        return check_device_name(value)

    @field_validator("env_kwargs")
    @classmethod
    def _no_user_selection(cls, value: dict[str, Any]) -> dict[str, Any]:
        # the one check of a run's users (RunSetup.from_config relies on it)
        if "users" in value:
            raise ValueError(f"env_kwargs may not set users (got {value['users']!r}): {RUN_USERS_NOTE}")
        return value

    @model_validator(mode="after")
    def _valid_agent_arguments(self) -> "TrainConfig":
        from agents.arguments import validate_agent_kwargs

        if self.encoder_weights is None and not self.freeze_encoder:
            raise ValueError("freeze_encoder=false (--no-freeze-encoder) needs encoder_weights (--encoder-weights DIR): "
                             "only pretrained weights are frozen or fine-tuned")
        if self.encoder_weights is not None and "weights" in self.encoder_kwargs:
            raise ValueError("encoder_weights and encoder_kwargs.weights both name pretrained weights: give one")
        validate_agent_kwargs(self.agent, self.agent_kwargs, self.encoder, self.all_encoder_kwargs())
        return self

    def all_encoder_kwargs(self) -> dict[str, Any]:
        """``encoder_kwargs`` with the pretrained weights (``weights``, ``freeze``) the agent's encoder loads."""
        if self.encoder_weights is None:
            return dict(self.encoder_kwargs)
        return {**self.encoder_kwargs, "weights": self.encoder_weights, "freeze": self.freeze_encoder}

    def to_json(self) -> dict[str, Any]:
        return json.loads(self.model_dump_json())


def closest_key_hint(key: object, valid: Iterable[str], nested: Mapping[str, Iterable[str]] | None = None) -> str:
    """Why ``key`` is not a setting, with the valid key it most likely means.

    ``n-envs`` -> "did you mean `n_envs`?" (hyphens and case are forgiven first, then
    :func:`difflib.get_close_matches`); a key that belongs one level down, such as
    ``max_steps`` under ``env_kwargs``, is pointed there; otherwise the valid keys are listed.

    :param key: the unknown key, as the file spells it.
    :param valid: the keys the mapping accepts.
    :param nested: for a key that belongs in a nested mapping: that mapping's name -> its keys.
    """
    valid = sorted(valid)
    text = str(key)
    normalised = text.strip().lower().replace("-", "_").replace(" ", "_")
    if normalised in valid:
        return f"did you mean `{normalised}`?"
    for parent, keys in (nested or {}).items():
        if normalised in set(keys):
            return f"`{normalised}` goes under `{parent}` ({parent}: {{{normalised}: ...}})"
    close = difflib.get_close_matches(normalised, valid, n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    return f"valid keys: {', '.join(valid)}"


def _train_nested_keys() -> dict[str, tuple[str, ...]]:
    # imported here: the environment modules are heavy and a valid config never needs them
    from recgym.envs.config import EPISODE_KEYWORDS
    from recgym.scenario import SCENARIO_KEYWORDS

    return {"env_kwargs": (*EPISODE_KEYWORDS, *SCENARIO_KEYWORDS)}


def make_config(**values: Any) -> TrainConfig:
    """Build a :class:`TrainConfig`, turning validation failures into one readable :class:`ConfigError`."""
    try:
        return TrainConfig(**values)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            # a check of the whole config (agent arguments) has no field to name: its message names them
            where = f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else ""
            if e["type"] == "extra_forbidden" and len(e["loc"]) == 1:
                hint = closest_key_hint(e["loc"][0], TrainConfig.model_fields, _train_nested_keys())
                problems.append(f"{where}unknown setting; {hint}")
            else:
                problems.append(where + e["msg"].removeprefix("Value error, "))
        raise ConfigError(f"invalid run configuration: {'; '.join(problems)}") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) run configuration into a dict."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    else:
        raise ConfigError(f"config file {path} must end in .yaml, .yml or .toml")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, got {type(data).__name__}")
    return data
