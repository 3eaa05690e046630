"""Pretrained encoder weights: write them, rebuild an encoder from them, plug them into an agent.

A weights folder (written by ``recgym pretrain``) holds:

* ``weights.pt``: ``{"format", "encoder", "kwargs", "layout", "state_dict"}``: the
  registry name, every constructor argument needed to rebuild the encoder
  (arrays such as PMF initialisations stored as tensors), the observation
  layout it was trained on and its parameters; read with
  ``torch.load(weights_only=True)``, so loading runs no pickled code;
* ``encoder.json``: the same minus the tensors, for people and for checks
  before anything is built (the parameter shapes included).

:func:`load_pretrained` rebuilds the encoder from the saved arguments for the
observation space it is given, checks that the parameters' names and shapes
match, loads them and, with ``freeze=True``, stops their gradients. It has the
call signature of an encoder class, so it is what an agent's
``features_extractor_class`` becomes when its ``encoder_kwargs`` carry
``weights`` (``agents.registry``); ``state_encoders.make(name, space,
weights=DIR, freeze=...)`` is the direct way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from recgym.envs.spaces import ObservationLayout
from state_encoders.base import StateEncoder

WEIGHTS_FILE = "weights.pt"
ENCODER_FILE = "encoder.json"
WEIGHTS_FORMAT = 1


class PretrainedWeightsError(ValueError):
    """Pretrained weights that cannot be used here; the message says why and what to do."""


# -- writing ----------------------------------------------------------------------------------


def save_pretrained(encoder: StateEncoder, kwargs: dict[str, Any], folder: str | Path,
                    extra: dict[str, Any] | None = None) -> None:
    """Write ``weights.pt`` and ``encoder.json`` into ``folder``, each atomically.

    :param encoder: a registered encoder (its ``name`` is stored).
    :param kwargs: the constructor arguments it was built with (besides the observation space).
    :param folder: the weights folder.
    :param extra: JSON-serialisable notes for ``encoder.json`` (task, dataset, ...).
    """
    from recgym.data.atomic import atomic_write

    if not encoder.name:
        raise ValueError(f"{type(encoder).__name__} is not registered: only registered encoders can be saved")
    folder = Path(folder)
    layout = ObservationLayout.from_space(encoder._observation_space)
    state = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
    payload = {"format": WEIGHTS_FORMAT, "encoder": encoder.name, "kwargs": _to_tensors(kwargs),
               "layout": _layout_dict(layout), "state_dict": state}
    description = {
        "format": WEIGHTS_FORMAT,
        "encoder": encoder.name,
        "kwargs": {k: v for k, v in kwargs.items() if _is_json(v)},
        "kwargs_in_weights_only": sorted(k for k, v in kwargs.items() if not _is_json(v)),
        "layout": _layout_dict(layout),
        "parameter_shapes": {k: list(v.shape) for k, v in state.items()},
        **(extra or {}),
    }
    atomic_write(folder / WEIGHTS_FILE, lambda tmp: torch.save(payload, tmp))
    atomic_write(folder / ENCODER_FILE, lambda tmp: tmp.write_text(json.dumps(description, indent=2) + "\n"))


# -- reading ----------------------------------------------------------------------------------


def read_description(folder: str | Path) -> dict[str, Any]:
    """The ``encoder.json`` of a weights folder (cheap: no tensors).

    :raises PretrainedWeightsError: no such folder, or not a weights folder.
    """
    path = Path(folder) / ENCODER_FILE
    if not path.is_file():
        raise PretrainedWeightsError(
            f"{folder} holds no pretrained encoder ({ENCODER_FILE} missing): give a folder written by `recgym pretrain`"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise PretrainedWeightsError(f"{path} is unreadable ({err}): pretrain the encoder again") from None
    if not isinstance(data, dict) or not isinstance(data.get("encoder"), str):
        raise PretrainedWeightsError(f"{path} names no encoder: pretrain the encoder again")
    return data


def read_weights(folder: str | Path) -> dict[str, Any]:
    """The ``weights.pt`` of a weights folder, loaded without unpickling code (``weights_only=True``)."""
    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise PretrainedWeightsError(
            f"{folder} holds no {WEIGHTS_FILE}: give a folder written by `recgym pretrain`"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file surfaces as many exception types
        raise PretrainedWeightsError(f"{path} cannot be read ({type(err).__name__}: {err}): pretrain again") from None
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT or "state_dict" not in payload:
        raise PretrainedWeightsError(f"{path} is not a recgym weights file (format {WEIGHTS_FORMAT})")
    return payload


def load_pretrained(
    observation_space: spaces.Dict,
    *,
    weights: str | Path,
    freeze: bool = False,
    name: str | None = None,
    **overrides: Any,
) -> StateEncoder:
    """Rebuild a pretrained encoder for ``observation_space`` and load its weights.

    Called like an encoder class (``features_extractor_class``), so an agent can build it.

    :param observation_space: the environment's observation space.
    :param weights: the weights folder.
    :param freeze: stop the gradients of every parameter (the encoder is then a fixed feature map).
    :param name: the encoder expected (e.g. the run's ``--encoder``): a folder of another encoder is refused.
    :param overrides: constructor arguments that replace the saved ones (say a dropout); the
        parameters' shapes must still match.
    :raises PretrainedWeightsError: another encoder, other sizes (items, users, history length), or an
        unreadable folder.
    """
    from state_encoders.registry import encoder_class

    payload = read_weights(weights)
    saved = payload["encoder"]
    if name is not None and name != saved:
        raise PretrainedWeightsError(
            f"the weights in {weights} are for encoder {saved!r}, not {name!r}: use --encoder {saved} "
            f"or pretrain {name!r}"
        )
    kwargs = {**_to_arrays(payload.get("kwargs") or {}), **overrides}
    try:
        encoder = encoder_class(saved)(observation_space, **kwargs)
    except ValueError as err:
        raise PretrainedWeightsError(
            f"encoder {saved!r} from {weights} cannot be rebuilt for this observation space: {err}"
            f"{_layout_hint(payload, observation_space)}"
        ) from None
    load_state(encoder, payload["state_dict"], weights, payload, observation_space)
    if freeze:
        freeze_encoder(encoder)
    encoder.pretrained_from = str(Path(weights).resolve())
    return encoder


def load_state(encoder: StateEncoder, state: dict[str, torch.Tensor], source: Any,
               payload: dict[str, Any] | None = None, observation_space: spaces.Dict | None = None) -> None:
    """Load ``state`` into ``encoder`` after checking every parameter's name and shape (a clear error otherwise)."""
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: saved {tuple(state[k].shape)}, here {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        problems = []
        if shapes:
            problems.append("shapes differ (" + "; ".join(shapes[:5]) + (" ..." if len(shapes) > 5 else "") + ")")
        if missing:
            problems.append(f"missing {missing[:5]}")
        if unexpected:
            problems.append(f"unexpected {unexpected[:5]}")
        hint = _layout_hint(payload, observation_space) if payload is not None and observation_space is not None else ""
        raise PretrainedWeightsError(
            f"the weights in {source} do not fit encoder {encoder.name!r} here: {'; '.join(problems)}{hint}"
        )
    encoder.load_state_dict(state, strict=True)


def freeze_encoder(encoder: StateEncoder) -> None:
    """Stop the gradients of every parameter of ``encoder``."""
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)


# -- helpers ----------------------------------------------------------------------------------


def _layout_dict(layout: ObservationLayout) -> dict[str, int]:
    return {"n_users": layout.n_users, "n_items": layout.n_items, "history_length": layout.history_length,
            "consumed_length": layout.consumed_length}


def _layout_hint(payload: dict[str, Any], observation_space: spaces.Dict) -> str:
    """Which observation sizes differ between the pretraining data and this environment, in words."""
    saved = payload.get("layout") or {}
    try:
        here = _layout_dict(ObservationLayout.from_space(observation_space))
    except ValueError:
        return ""
    differ = [f"{k} {saved[k]} there, {here[k]} here" for k in ("n_items", "n_users", "history_length")
              if k in saved and saved[k] != here[k]]
    if not differ:
        return ""
    return (f". The encoder was pretrained on other observation sizes ({', '.join(differ)}): pretrain it on the "
            "same dataset with --history-length equal to the environment's history_length (or set "
            "history_length in the environment)")


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _to_tensors(value: Any) -> Any:
    """Arrays -> tensors, recursively (``weights_only`` loading accepts tensors, not numpy arrays)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value).copy())
    if isinstance(value, dict):
        return {k: _to_tensors(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_tensors(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _to_arrays(value: Any) -> Any:
    """Tensors -> numpy arrays, recursively (constructor arguments take arrays)."""
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {k: _to_arrays(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_arrays(v) for v in value)
    return value
