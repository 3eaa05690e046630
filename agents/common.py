"""What every agent reads from its environment, and small shared helpers.

An agent is built for a :class:`~recgym.scenario.Scenario` and an environment
over it. The scenario comes explicitly (``agents.make(..., scenario=...)``) or
through the environment's documented accessors: ``env.scenario`` on recgym's
environments, Gymnasium's ``get_wrapper_attr("scenario")`` through wrappers,
SB3's ``get_attr("scenario")`` on a ``VecEnv``. The action mode and slate size
come from the action space itself. Nothing in ``agents/`` looks inside an
environment.

Observations follow :mod:`recgym.envs.spaces`: ``consumed`` is the window of the
latest items of the episode (the whole episode by default), padded with the id
``n_items``; every agent masks them, and takes ``action_masks`` (the
environment's :meth:`~recgym.envs.RecommendationVectorEnv.action_masks`, as
sb3-contrib's maskable agents do) to restrict itself to the available items
when a protocol passes them.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecMonitor

from recgym.envs.sb3 import SB3VecEnvAdapter
from recgym.envs.vector import RecommendationVectorEnv
from recgym.scenario import Scenario

Observation = dict[str, np.ndarray]


def scenario_of(env: Any) -> Scenario:
    """The scenario an environment was built for, through documented accessors only.

    :param env: a recgym environment, a Gymnasium wrapper over one, or an SB3 ``VecEnv`` over one.
    :raises ValueError: when ``env`` exposes no scenario (pass ``scenario=`` explicitly).
    """
    found: Any = None
    if isinstance(env, VecEnv):
        found = env.get_attr("scenario", indices=[0])[0]
    elif isinstance(env, gym.Env):
        found = env.get_wrapper_attr("scenario") if env.has_wrapper_attr("scenario") else None
    else:
        found = getattr(env, "scenario", None)
    if not isinstance(found, Scenario):
        raise ValueError(
            f"{type(env).__name__} is not a recgym environment (no .scenario): agents need RecommendationEnv, "
            "RecommendationVectorEnv or an SB3 VecEnv over one (e.g. SB3VecEnvAdapter), or scenario= given explicitly"
        )
    return found


def call_env_method(env: Any, method: str) -> Any:
    """Call a documented method of a recgym environment, also through SB3's ``VecEnv`` and Gymnasium wrappers."""
    if isinstance(env, VecEnv):
        return env.env_method(method, indices=[0])[0]
    if isinstance(env, gym.Env) and env.has_wrapper_attr(method):
        return env.get_wrapper_attr(method)()
    return getattr(env, method)()


def single_action_space(env: Any) -> spaces.Space:
    """The action space of one user (``single_action_space`` of vector envs)."""
    return getattr(env, "single_action_space", None) or env.action_space


def action_mode_of(env: Any) -> tuple[str, int]:
    """``(action_mode, slate_size)`` read from an environment's action space."""
    space = single_action_space(env)
    if isinstance(space, spaces.Discrete):
        return "discrete", 1
    if isinstance(space, spaces.MultiDiscrete):
        return "discrete", int(space.nvec.size)
    if isinstance(space, spaces.Box):
        return "embedding", 1
    raise ValueError(f"not a recgym action space: {space!r}")


def check_action_mode(env: Any, required: str, agent: str) -> None:
    """Raise a ValueError that says how to build the right env when the action mode differs.

    :param env: the environment.
    :param required: the action mode the agent needs.
    :param agent: the agent's registry name (for the message).
    """
    mode, slate = action_mode_of(env)
    if mode != required:
        raise ValueError(
            f"agent {agent!r} needs an environment with action_mode={required!r}, but this one uses "
            f"action_mode={mode!r}; build it with action_mode=agents.spec({agent!r}).action_mode "
            f"(e.g. RecommendationEnv(..., action_mode={required!r}))"
        )
    if slate != 1:
        raise ValueError(
            f"agent {agent!r} recommends one item per step; build the environment with slate_size=1 (got {slate})"
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
    consumed get 0 (the environment ends such episodes before that happens).
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


def random_available(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random available item per row of ``masks`` ``(B, n_items)`` (row without one: 0)."""
    scores = rng.random(masks.shape)
    scores[~masks] = -1.0
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


def replay_schedule(env: Any, replay_ratio: float) -> dict[str, int]:
    """``train_freq`` and ``gradient_steps`` that keep ``replay_ratio`` gradient steps per transition.

    SB3 counts ``train_freq`` in ``env.step`` calls, each ``n_envs`` transitions:
    with many envs, several gradient steps per call; with few, one every few calls.

    :param env: the training environment (a ``VecEnv`` counts ``num_envs`` transitions per call).
    :param replay_ratio: gradient steps per transition (> 0).
    """
    per_call = int(getattr(env, "num_envs", 1)) * float(replay_ratio)
    if per_call >= 1:
        return {"train_freq": 1, "gradient_steps": round(per_call)}
    return {"train_freq": round(1 / per_call), "gradient_steps": 1}


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


def pmf_encoder_kwargs(scenario: Scenario, freeze: bool = True, normalize: bool = True) -> dict[str, Any]:
    """Encoder arguments that initialise its tables from the scenario's embedding model (as DRR).

    The user term is folded in from the observation's history (leak-free, see
    :class:`state_encoders.base.UserFoldIn`) unless the scenario is the DRR
    paper's all-data setting (``embedding_fit="all"``), where the fitted user
    factors are looked up by id, as the paper does.

    :param scenario: the scenario.
    :param freeze: keep the tables fixed (DRR pre-trains the embeddings with PMF and
        learns only the state module and the networks on top).
    :param normalize: divide the item and the user factors each by their overall
        standard deviation. Strongly regularised PMF factors are ~0.1 in size, so
        DRR's products ``u ⊗ h`` would be ~0.01; unit-scale inputs suit the default
        initialisation of the layers above. A global scale keeps every direction
        and every ranking by dot product.
    """
    model = scenario.embedding_model
    items = np.asarray(model.item_embeddings, dtype=np.float32)
    users = np.asarray(model.user_embeddings, dtype=np.float32)
    seen = scenario.seen_users()
    item_scale = max(float(items.std()), 1e-8) if normalize else 1.0
    user_scale = max(float(users[seen].std()), 1e-8) if normalize and seen.any() else 1.0
    kwargs: dict[str, Any] = {"item_embeddings": items / item_scale, "freeze_embeddings": bool(freeze)}
    if scenario.embedding_fit == "all":
        kwargs["user_embeddings"] = users / user_scale
    else:
        scale = scenario.log.scale
        kwargs["user_fold_in"] = {
            "item_factors": items, "item_bias": np.asarray(model.item_bias, dtype=np.float32),
            "global_mean": float(model.global_mean), "reg": float(model.reg), "bias_reg": float(model.bias_reg),
            "rating_midpoint": float(scale.midpoint), "rating_half_range": float(scale.half_range),
            "output_scale": user_scale,
        }
    return kwargs
