"""Simulated users fitted from rating logs.

=============  ===========================  ===============================================
name           class                        user model
=============  ===========================  ===============================================
``"pmf"``      :class:`PMFSimulator`        DRR's PMF: predicted (or logged) rating, no dynamics
``"replay"``   :class:`LoggedReplaySimulator`  logged ratings only; candidates = rated items
``"behavior"`` :class:`BehaviorSimulator`   skip / click / purchase with boredom and patience
``"behavior-v1"`` :class:`BehaviorV1Simulator` the same with SARDINE-style satiation (``BEHAVIOR_V1``)
=============  ===========================  ===============================================
"""

from __future__ import annotations

from typing import Any

from simulators.base import N_BEHAVIORS, Behavior, Feedback, NotFittedError, UserSimulator
from simulators.behavior import BEHAVIOR_V1, BehaviorConfig, BehaviorSimulator, BehaviorV1Simulator
from simulators.pmf import PMFSimulator
from simulators.replay import LoggedReplaySimulator

#: Simulator classes by the short name that configs and the CLI use.
SIMULATORS: dict[str, type[UserSimulator]] = {
    "pmf": PMFSimulator,
    "replay": LoggedReplaySimulator,
    "behavior": BehaviorSimulator,
    "behavior-v1": BehaviorV1Simulator,
}


def make_simulator(name: str, **kwargs: Any) -> UserSimulator:
    """Build an unfitted simulator by short name (case-insensitive).

    :param name: one of ``"pmf"``, ``"replay"``, ``"behavior"``, ``"behavior-v1"``.
    :param kwargs: constructor arguments of that simulator.
    """
    key = str(name).lower()
    if key not in SIMULATORS:
        raise ValueError(f"unknown simulator {name!r}; known simulators: {sorted(SIMULATORS)}")
    return SIMULATORS[key](**kwargs)


__all__ = [
    "BEHAVIOR_V1",
    "N_BEHAVIORS",
    "SIMULATORS",
    "Behavior",
    "BehaviorConfig",
    "BehaviorSimulator",
    "BehaviorV1Simulator",
    "Feedback",
    "LoggedReplaySimulator",
    "NotFittedError",
    "PMFSimulator",
    "UserSimulator",
    "make_simulator",
]
