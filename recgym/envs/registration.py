"""Registration of every recgym environment id with Gymnasium.

Ids are ``recgym/<Dataset>-<Simulator>-v0`` for the datasets ``ML100K``,
``ML1M``, ``YahooR3``, ``Jester`` (Dataset 1 layout; ``path=`` takes a local
file), ``Jester4`` (Dataset 4) and ``Synthetic``, and the simulators ``PMF``,
``Replay`` and ``Behavior``. ``recgym/<Dataset>-Behavior-v1`` is the behaviour
user with the stronger long-term dynamics of :data:`simulators.BEHAVIOR_V1`
(simulator ``"behavior-v1"``; ``simulator_kwargs={"config": {...}}`` overrides
single fields); the ``-v0`` ids keep their dynamics unchanged. Entry points are strings, so registering builds
nothing; every keyword of :class:`~recgym.envs.recommendation.RecommendationEnv`
can be passed to ``gymnasium.make``. Each id also has a ``vector_entry_point``:
``gymnasium.make_vec(id, num_envs=B, vectorization_mode="vector_entry_point")``
returns the natively batched :class:`~recgym.envs.vector.RecommendationVectorEnv`.
"""

from __future__ import annotations

import gymnasium as gym

#: environment-id name of each dataset -> the dataset name of ``recgym.data.load``
DATASET_IDS = {
    "ML100K": "ml-100k",
    "ML1M": "ml-1m",
    "YahooR3": "yahoo-r3",
    "Jester": "jester",
    "Jester4": "jester-4",
    "Synthetic": "synthetic",
}
#: environment-id name of each simulator -> the simulator name of ``simulators.make_simulator``
SIMULATOR_IDS = {"PMF": "pmf", "Replay": "replay", "Behavior": "behavior"}
#: ``-v1`` ids: environment-id name of each simulator -> its v1 simulator name
SIMULATOR_V1_IDS = {"Behavior": "behavior-v1"}

ENTRY_POINT = "recgym.envs.recommendation:RecommendationEnv"
VECTOR_ENTRY_POINT = "recgym.envs.vector:RecommendationVectorEnv"


def _id_table() -> dict[str, tuple[str, str]]:
    """``{env_id: (dataset, simulator)}`` of every recgym id, v0 then v1."""
    table = {f"recgym/{d}-{s}-v0": (dataset, simulator)
             for d, dataset in DATASET_IDS.items() for s, simulator in SIMULATOR_IDS.items()}
    table.update({f"recgym/{d}-{s}-v1": (dataset, simulator)
                  for d, dataset in DATASET_IDS.items() for s, simulator in SIMULATOR_V1_IDS.items()})
    return table


def env_ids() -> list[str]:
    """Every registered recgym environment id."""
    return list(_id_table())


def register_envs() -> None:
    """Register every recgym environment id with Gymnasium (idempotent)."""
    for env_id, (dataset, simulator) in _id_table().items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs={"dataset": dataset, "simulator": simulator},
        )
