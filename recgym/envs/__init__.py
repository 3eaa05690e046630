"""Gymnasium environments of recgym: single, natively batched, and the SB3 adapter.

Names are imported lazily (PEP 562) so that ``import recgym``, which registers
the environment ids, stays cheap and free of import cycles with ``simulators``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ACTION_MODES": "recgym.envs.config",
    "ActionMapper": "recgym.envs.actions",
    "InvalidActionError": "recgym.envs.actions",
    "RecommendationEnv": "recgym.envs.recommendation",
    "DATASET_IDS": "recgym.envs.registration",
    "SIMULATOR_IDS": "recgym.envs.registration",
    "SIMULATOR_V1_IDS": "recgym.envs.registration",
    "env_ids": "recgym.envs.registration",
    "flat_env_ids": "recgym.envs.registration",
    "FeatureMap": "recgym.envs.features",
    "register_envs": "recgym.envs.registration",
    "ObservationLayout": "recgym.envs.spaces",
    "RecommendationVectorEnv": "recgym.envs.vector",
    "SB3VecEnvAdapter": "recgym.envs.sb3",
    "EpisodeConfig": "recgym.envs.config",
    "resolve_env_kwargs": "recgym.envs.config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'recgym.envs' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
