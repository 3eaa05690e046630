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

``recgym/<Dataset>-<Simulator>-Flat-v0`` (and ``-Behavior-Flat-v1``) are the
same environments for generic clients (CleanRL, SB3's ``MlpPolicy``): a float32
feature vector (``observation="features"``, :mod:`recgym.envs.features`) and
``Discrete(FLAT_CANDIDATES)`` actions over a candidate slate the vector
describes (``candidates=FLAT_CANDIDATES``), so every action is available and no
client needs masks. :func:`flat_env_ids` lists them; :func:`env_ids` lists the
dict-observation ids that recgym's own agents and protocols use.

No id registers a Gymnasium ``TimeLimit``: the episode is truncated inside the
environment at ``max_steps``, and ``env.spec.max_episode_steps`` reports it.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

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

ENTRY_POINT = "recgym.envs.registration:make_env"
VECTOR_ENTRY_POINT = "recgym.envs.vector:RecommendationVectorEnv"
#: K of the Flat ids: candidates drawn per step (the action is their index)
FLAT_CANDIDATES = 10
#: the episode keywords of the Flat ids
FLAT_KWARGS = {"observation": "features", "candidates": FLAT_CANDIDATES}


def make_env(**kwargs: Any) -> Any:
    """Gymnasium's entry point of every recgym id: ``RecommendationEnv(**kwargs)``.

    A function rather than the class, so that ``gymnasium.make`` does not compare
    the ``render_mode`` that stock clients pass unasked (SB3's ``make_vec_env``
    passes ``"rgb_array"``) with the class's render modes and warn; the
    environment warns itself if ``render()`` is called in a mode it lacks.
    """
    from recgym.envs.recommendation import RecommendationEnv

    return RecommendationEnv(**kwargs)


def _id_table() -> dict[str, tuple[str, str]]:
    """``{env_id: (dataset, simulator)}`` of every recgym id, v0 then v1."""
    table = {f"recgym/{d}-{s}-v0": (dataset, simulator)
             for d, dataset in DATASET_IDS.items() for s, simulator in SIMULATOR_IDS.items()}
    table.update({f"recgym/{d}-{s}-v1": (dataset, simulator)
                  for d, dataset in DATASET_IDS.items() for s, simulator in SIMULATOR_V1_IDS.items()})
    return table


def _flat_id(env_id: str) -> str:
    return re.sub(r"-(v\d+)$", r"-Flat-\1", env_id)


def env_ids() -> list[str]:
    """Every registered recgym id with the dict observation (what recgym's agents and protocols take)."""
    return list(_id_table())


def flat_env_ids() -> list[str]:
    """Every registered ``-Flat-`` id: feature observation and candidate actions, for generic clients."""
    return [_flat_id(env_id) for env_id in _id_table()]


def register_envs() -> None:
    """Register every recgym environment id with Gymnasium (idempotent)."""
    for env_id, (dataset, simulator) in _id_table().items():
        for id_, extra in ((env_id, {}), (_flat_id(env_id), FLAT_KWARGS)):
            if id_ in gym.registry:
                continue
            gym.register(
                id=id_,
                entry_point=ENTRY_POINT,
                vector_entry_point=VECTOR_ENTRY_POINT,
                kwargs={"dataset": dataset, "simulator": simulator, **extra},
            )
    # Gymnasium calls a -v0 id "out of date" when a -v1 of the same name exists. The Behavior -v0 ids
    # are not deprecated (they are the original user, kept with their numbers), so the note tells a
    # user nothing to act on: silence it for these ids only.
    warnings.filterwarnings(
        "ignore", message=r".*The environment recgym/\w+-Behavior(-Flat)?-v0 is out of date",
        category=DeprecationWarning,
    )
