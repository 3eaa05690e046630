"""Name -> class registry of state encoders (``make("drr-ave", space, ...)``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gymnasium import spaces

from state_encoders.base import StateEncoder

_REGISTRY: dict[str, type[StateEncoder]] = {}

E = TypeVar("E", bound=type[StateEncoder])


def register(name: str) -> Callable[[E], E]:
    """Class decorator that registers a :class:`StateEncoder` under ``name``."""

    def decorator(cls: E) -> E:
        if not (isinstance(cls, type) and issubclass(cls, StateEncoder)):
            raise TypeError(f"register({name!r}) expects a StateEncoder subclass, got {cls!r}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"state encoder {name!r} is already registered to {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def available() -> list[str]:
    """Registered encoder names, sorted."""
    return sorted(_REGISTRY)


def encoder_class(name: str) -> type[StateEncoder]:
    """The class registered under ``name`` (what SB3's ``features_extractor_class`` takes)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown state encoder {name!r}; known encoders: {', '.join(available())}") from None


def make(name: str, observation_space: spaces.Dict, *, weights: str | Path | None = None, freeze: bool = False,
         **kwargs: Any) -> StateEncoder:
    """Build the encoder registered under ``name`` for ``observation_space``.

    :param weights: a folder written by ``recgym pretrain``: the encoder is rebuilt from the
        constructor arguments saved there and its pretrained parameters are loaded (the name and
        every parameter's shape are checked; :class:`state_encoders.weights.PretrainedWeightsError`
        says what differs). ``kwargs`` then replace saved arguments.
    :param freeze: with ``weights``: stop the gradients of every parameter.
    :param kwargs: the encoder's constructor arguments (``embedding_dim``,
        ``item_embeddings``, ``user_embeddings``, ``freeze_embeddings``, ...).
    """
    cls = encoder_class(name)
    if weights is not None:
        from state_encoders.weights import load_pretrained

        return load_pretrained(observation_space, weights=weights, freeze=freeze, name=name, **kwargs)
    if freeze:
        raise ValueError("freeze=True needs weights=DIR (pretrained weights to keep fixed); "
                         "to keep only the embedding tables fixed pass freeze_embeddings=True")
    return cls(observation_space, **kwargs)
