"""What every agent needs from an environment, whatever wraps it, and small shared helpers.

An agent may be handed a single :class:`~recgym.envs.recommendation.RecommendationEnv`
(possibly behind Gymnasium wrappers), the natively batched
:class:`~recgym.envs.vector.RecommendationVectorEnv`, or an SB3 ``VecEnv``
(:class:`~recgym.envs.sb3.SB3VecEnvAdapter`, ``VecMonitor`` over it, or a
``DummyVecEnv`` of single envs). :func:`env_context` unwraps all of them once and
returns what agents read: item embeddings, the simulator, the log and the
user split. Nothing else in ``agents/`` looks inside an environment.

Observations follow :mod:`recgym.envs.spaces`: ``consumed`` is the window of the
latest items of the episode (the whole episode by default), padded with the id
``n_items``; every agent masks them. The environment still substitutes any
unavailable item it is asked for, so a shorter window costs reward, never validity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecMonitor

from recgym.data.rating_log import RatingLog
from recgym.envs.recommendation import RecommenderSetup
from recgym.envs.sb3 import SB3VecEnvAdapter
from recgym.envs.vector import RecommendationVectorEnv
from recgym.envs.world import World
from simulators.base import UserSimulator

Observation = dict[str, np.ndarray]


@dataclass(frozen=True)
class EnvContext:
    """The parts of a recgym environment that agents read.

    :param env: the unwrapped recgym environment (single or vector).
    :param action_mode: ``"discrete"`` or ``"embedding"``.
    :param item_embeddings: ``(n_items, d)`` item embeddings in ``[-1, 1]`` that
        embedding actions are scored against (the scaled PMF item factors).
    :param simulator: the fitted simulated user.
    :param log: the rating log the world was built from.
    :param train_users: training users of the 80/20 split.
    :param test_users: held-out users.
    :param n_users: number of users.
    :param n_items: number of items (``n_items`` is also the padding id).
    """

    env: RecommenderSetup
    action_mode: str
    item_embeddings: np.ndarray
    simulator: UserSimulator
    log: RatingLog
    train_users: np.ndarray
    test_users: np.ndarray
    n_users: int
    n_items: int

    @property
    def world(self) -> World:
        return self.env.world


def unwrap_env(env: Any) -> RecommenderSetup:
    """The recgym environment inside ``env``.

    Follows Gymnasium wrappers (``.unwrapped``), the SB3 adapter (``.env``),
    SB3 ``VecEnvWrapper`` s (``.venv``) and other SB3 ``VecEnv`` s
    (``get_attr("unwrapped")`` of the first sub-environment).

    :param env: any of the environment forms listed in the module docstring.
    :raises ValueError: when no recgym environment is found inside.
    """
    current = env
    for _ in range(32):  # wrappers nest a handful of levels; the bound only guards cycles
        if isinstance(current, RecommenderSetup):
            return current
        if isinstance(current, SB3VecEnvAdapter):
            current = current.env
        elif isinstance(current, VecEnvWrapper):
            current = current.venv
        elif isinstance(current, VecEnv):
            current = current.get_attr("unwrapped", indices=[0])[0]
        elif isinstance(current, (gym.Env, gym.vector.VectorEnv)) and current.unwrapped is not current:
            current = current.unwrapped
        else:
            break
    raise ValueError(
        f"agents need a recgym environment (RecommendationEnv, RecommendationVectorEnv or an SB3 VecEnv over "
        f"one, e.g. SB3VecEnvAdapter); got {type(env).__name__}"
    )


def env_context(env: Any) -> EnvContext:
    """Unwrap ``env`` once and collect what agents need (see :class:`EnvContext`)."""
    base = unwrap_env(env)
    world = base.world
    return EnvContext(
        env=base,
        action_mode=base.mapper.mode,
        item_embeddings=base.item_embeddings,
        simulator=base.simulator,
        log=world.log,
        train_users=np.asarray(world.train_users),
        test_users=np.asarray(world.test_users),
        n_users=base.n_users,
        n_items=base.n_items,
    )


def check_action_mode(ctx: EnvContext, required: str, agent: str) -> None:
    """Raise a ValueError that says how to build the right env when the action mode differs.

    :param ctx: the environment's context.
    :param required: the action mode the agent needs.
    :param agent: the agent's registry name (for the message).
    """
    if ctx.action_mode != required:
        raise ValueError(
            f"agent {agent!r} needs an environment with action_mode={required!r}, but this one uses "
            f"action_mode={ctx.action_mode!r}; build it with action_mode=agents.spec({agent!r}).action_mode "
            f"(e.g. RecommendationEnv(..., action_mode={required!r}))"
        )
    if ctx.env.mapper.slate_size != 1:
        raise ValueError(
            f"agent {agent!r} recommends one item per step; build the environment with slate_size=1 "
            f"(got {ctx.env.mapper.slate_size})"
        )


def as_sb3_env(env: Any) -> Any:
    """What SB3 algorithms train on: the batched env behind the adapter (with episode stats), else ``env``.

    A bare :class:`RecommendationVectorEnv` is wrapped in :class:`SB3VecEnvAdapter`;
    SB3 ``VecEnv`` s get a ``VecMonitor`` (so ``rollout/ep_rew_mean`` is logged)
    unless they already have one; single Gymnasium envs are left to SB3, which
    wraps them in ``Monitor`` and ``DummyVecEnv`` itself.
    """
    if isinstance(env, RecommendationVectorEnv):
        env = SB3VecEnvAdapter(env)
    if isinstance(env, VecEnv) and not _has_vec_monitor(env):
        env = VecMonitor(env)
    return env


def _has_vec_monitor(env: VecEnv) -> bool:
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, VecMonitor):
            return True
        env = env.venv
    return False


# -- observations ----------------------------------------------------------------------


def as_batch(observation: Observation) -> tuple[Observation, bool]:
    """A batched view ``(B, ...)`` of one observation or of a batch; and whether it was single.

    A single recgym observation has ``consumed`` of shape ``(C,)``; a batch ``(B, C)``.
    """
    consumed = np.asarray(observation["consumed"])
    if consumed.ndim == 1:
        return {key: np.asarray(value)[None] for key, value in observation.items()}, True
    return {key: np.asarray(value) for key, value in observation.items()}, False


def consumed_mask_numpy(consumed: np.ndarray, n_items: int) -> np.ndarray:
    """``(B, n_items)`` bool mask of the items listed in ``consumed`` ``(B, C)``; padding ids are dropped."""
    ids = np.clip(np.asarray(consumed, dtype=np.int64), 0, n_items)
    mask = np.zeros((ids.shape[0], n_items + 1), dtype=bool)
    mask[np.arange(ids.shape[0])[:, None], ids] = True
    return mask[:, :n_items]


def mask_consumed(q_values: th.Tensor, consumed: th.Tensor) -> th.Tensor:
    """``q_values`` ``[B, n_items]`` with the consumed items set to ``-inf`` (never the argmax).

    Scatters ``-inf`` into a copy with one extra column that absorbs the padding
    ids (about 3x faster than building a boolean mask and ``masked_fill``).
    """
    n_items = q_values.shape[1]
    padded = th.cat([q_values, q_values.new_empty(q_values.shape[0], 1)], dim=1)  # [B, n_items + 1]
    padded.scatter_(1, consumed.long().clamp(0, n_items), float("-inf"))
    return padded[:, :n_items]


def random_unconsumed(consumed: np.ndarray, n_items: int, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random item per row that is not in that row's ``consumed`` ``(B, C)``.

    Rejection sampling: ``C`` is small next to ``n_items``, so a redraw is rare
    and this avoids a ``(B, n_items)`` matrix per step. Rows whose items are all
    consumed get 0 (the environment substitutes an available item).
    """
    consumed = np.asarray(consumed, dtype=np.int64)
    items = rng.integers(n_items, size=consumed.shape[0])
    for _ in range(64):
        bad = np.flatnonzero((consumed == items[:, None]).any(axis=1))
        if bad.size == 0:
            return items
        items[bad] = rng.integers(n_items, size=bad.size)
    # nearly everything consumed: sample exactly among what is left
    scores = rng.random((consumed.shape[0], n_items))
    scores[consumed_mask_numpy(consumed, n_items)] = -1.0
    return scores.argmax(axis=1)


# -- running a policy -------------------------------------------------------------------


def iterate_steps(
    env: Any, act: Callable[[Observation], np.ndarray], total_timesteps: int, seed: int | None = None
) -> Iterator[tuple[Observation, np.ndarray, np.ndarray]]:
    """Run ``act`` on ``env`` for ``total_timesteps`` transitions; yield ``(obs, actions, rewards)`` batches.

    Works on a single Gymnasium env (batches of one; reset at episode end), on a
    :class:`RecommendationVectorEnv` and on SB3 ``VecEnv`` s (both autoreset).
    Used by agents that learn online outside SB3 (LinUCB).

    :param env: the environment.
    :param act: maps a batched observation to ``(B,)`` actions.
    :param total_timesteps: number of transitions (users x steps) to run.
    :param seed: seed of the first reset.
    """
    done_steps = 0
    if isinstance(env, RecommendationVectorEnv):
        env = SB3VecEnvAdapter(env)
    if isinstance(env, VecEnv):
        if seed is not None:
            env.seed(seed)
        obs = env.reset()
        while done_steps < total_timesteps:
            actions = act(obs)
            next_obs, rewards, _, _ = env.step(actions)
            yield obs, actions, np.asarray(rewards, dtype=np.float64)
            obs = next_obs
            done_steps += env.num_envs
        return
    obs, _ = env.reset(seed=seed)
    while done_steps < total_timesteps:
        batch, _ = as_batch(obs)
        actions = np.asarray(act(batch)).reshape(-1)
        next_obs, reward, terminated, truncated, _ = env.step(actions[0])
        yield batch, actions, np.array([reward], dtype=np.float64)
        done_steps += 1
        obs = env.reset()[0] if (terminated or truncated) else next_obs


_FUSED_ADAM: bool | None = None


def optimizer_kwargs() -> dict[str, Any]:
    """Adam arguments for the small networks here: the fused kernel where torch has it on CPU.

    With one-to-a-few-hundred-thousand parameters the per-tensor Python loop of
    the default Adam costs more than the arithmetic (about 5x at ML-100K size).
    """
    global _FUSED_ADAM
    if _FUSED_ADAM is None:
        try:
            th.optim.Adam([th.zeros(1, requires_grad=True)], fused=True)
            _FUSED_ADAM = True
        except (RuntimeError, TypeError, ValueError):
            _FUSED_ADAM = False
    return {"fused": True} if _FUSED_ADAM else {}


#: Thread-count setters that OpenBLAS builds export (plain, 64-bit-int, and numpy's scipy-openblas).
_OPENBLAS_SETTERS = (
    "openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
)


def limit_blas_threads(n_threads: int) -> bool:
    """Set the thread count of every OpenBLAS loaded in this process (numpy's); True if one was found.

    The environments score items with numpy matrix products; OpenBLAS threads
    busy-wait between calls and then compete with torch for the same cores,
    which halved training throughput on a 2-core machine. This is what
    ``threadpoolctl`` does, without the dependency: find the loaded library in
    ``/proc/self/maps`` and call its setter (Linux only; elsewhere a no-op).
    """
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return False
    found = False
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in _OPENBLAS_SETTERS:
            setter = getattr(library, symbol, None)
            if setter is not None:
                setter(int(n_threads))
                found = True
                break
    return found


def set_threads(n_threads: int | None) -> None:
    """Use ``n_threads`` threads for torch and for numpy's OpenBLAS (``None`` leaves both).

    The networks here are small (batch 64, widths in the hundreds) and the
    environment's numpy work comes in small pieces: on a few cores one thread
    each is fastest (measured on 2 cores: 2 torch threads made DQN training 10x
    slower), and it leaves cores to the environment and to other processes.
    Both settings are process-wide.
    """
    if n_threads is None:
        return
    if int(n_threads) < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    th.set_num_threads(int(n_threads))
    limit_blas_threads(int(n_threads))


def pmf_encoder_kwargs(ctx: EnvContext, freeze: bool = True, normalize: bool = True) -> dict[str, Any]:
    """Encoder arguments that initialise its tables from the simulator's PMF factors (as DRR).

    :param ctx: the environment's context.
    :param freeze: keep the tables fixed (DRR pre-trains the embeddings with PMF and
        learns only the state module and the networks on top).
    :param normalize: divide the item and the user factors each by their overall
        standard deviation. Strongly regularised PMF factors are ~0.1 in size, so
        DRR's products ``u ⊗ h`` would be ~0.01; unit-scale inputs suit the default
        initialisation of the layers above. A global scale keeps every direction
        and every ranking by dot product.
    """

    def prepare(array: np.ndarray | None) -> np.ndarray | None:
        if array is None:
            return None
        array = np.asarray(array, dtype=np.float32)
        if normalize:
            array = array / max(float(array.std()), 1e-8)
        return array

    sim = ctx.simulator
    return {
        "item_embeddings": prepare(getattr(sim, "item_embeddings", None)),
        "user_embeddings": prepare(getattr(sim, "user_embeddings", None)),
        "freeze_embeddings": bool(freeze),
    }
