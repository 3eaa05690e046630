"""``recgym evaluate``: a trained run (and baselines) under the online, offline or long-term protocol."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import agents
from recgym.envs.world import World
from recgym.evaluation.offline import evaluate_offline
from recgym.evaluation.online import evaluate_online
from recgym.experiments.config import make_config
from recgym.experiments.environments import RunEnvironments, make_run_environments
from recgym.experiments.run_dir import RunDir, read_json
from simulators import BehaviorSimulator, LoggedReplaySimulator, PMFSimulator

EVAL_ENVS = 256
#: long-term modes after EasyRL4Rec: (name, allow_repeats, max_steps); episodes also end when the user leaves
LONG_TERM_MODES = (("no-repeat, until leave", False, 100), ("repeat, until leave", True, 100), ("no-repeat, 10 turns", False, 10))


def rating_model(world: World) -> PMFSimulator:
    """The PMF inside a world's simulator: its item factors define the embedding action space."""
    sim = world.simulator
    for candidate in (sim, getattr(sim, "rating_model", None), getattr(sim, "embedding_model", None)):
        if isinstance(candidate, PMFSimulator):
            return candidate
    raise ValueError(f"{type(sim).__name__} carries no PMF rating model to build the evaluation worlds from")


def replay_world(world: World) -> World:
    """DRR's offline protocol: the test users' logged ratings, in the training world's embedding space."""
    sim = LoggedReplaySimulator(embedding_model=rating_model(world)).fit(world.log)
    return replace(world, simulator=sim)


def behavior_world(world: World) -> World:
    """Users with boredom and quitting over the training world's rating model."""
    sim = world.simulator if isinstance(world.simulator, BehaviorSimulator) else BehaviorSimulator(rating_model=rating_model(world)).fit(world.log)
    return replace(world, simulator=sim)


def evaluate_policy(policy: Any, envs: RunEnvironments, protocol: str, n_episodes: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Figures of one policy under one protocol, on the test users.

    :param policy: a trained agent or a baseline (SB3 ``predict`` on batched observations).
    :param envs: the run's environments (world and episode settings, in the policy's action mode).
    :param protocol: ``"online"``, ``"offline"`` or ``"long-term"``.
    :param n_episodes: online episodes (default: one per test user).
    :param seed: seed of the simulated responses.
    """
    kwargs = dict(envs.episode_kwargs)
    if protocol == "online":
        return evaluate_online(policy, envs.vector_env(EVAL_ENVS, users="test"), n_episodes=n_episodes, seed=seed).summary()
    if protocol == "offline":
        offline = RunEnvironments(replay_world(envs.world), kwargs)
        return evaluate_offline(policy, offline.vector_env(EVAL_ENVS, users="test"))
    if protocol == "long-term":
        world = behavior_world(envs.world)
        # keep the observation space the policy was trained with: same consumed window
        window = kwargs.pop("consumed_length", None) or kwargs.get("history_length", 5) + kwargs.get("max_steps", 20) * kwargs.get("slate_size", 1)
        out: dict[str, Any] = {}
        for name, repeats, steps in LONG_TERM_MODES:
            mode = RunEnvironments(world, {**kwargs, "allow_repeats": repeats, "max_steps": steps, "consumed_length": window})
            res = evaluate_online(policy, mode.vector_env(EVAL_ENVS, users="test"), n_episodes=n_episodes, seed=seed)
            out[f"{name}: reward/episode"] = res.avg_reward_per_episode
            out[f"{name}: length"] = res.avg_episode_length
            out[f"{name}: left"] = res.left_fraction
        return out
    raise ValueError(f"unknown protocol {protocol!r}; choose online, offline or long-term")


def make_baseline(name: str, envs: RunEnvironments, seed: int, steps: int) -> tuple[Any, RunEnvironments]:
    """A fitted baseline on the run's world, and the environments in its action mode.

    ``learn`` fits the baselines that fit from the log and runs LinUCB online for ``steps``.
    """
    spec = agents.spec(name)
    own = RunEnvironments(envs.world, {**envs.episode_kwargs, "action_mode": spec.action_mode})
    model = agents.make(name, own.training_env(16), seed=seed)
    model.learn(steps)
    return model, own


def evaluate_run(run: str | Path, protocol: str = "online", baselines: list[str] | None = None,
                 n_episodes: int | None = None) -> list[dict[str, Any]]:
    """Evaluate a run folder's newest checkpoint, and optionally baselines, under ``protocol``.

    :returns: one row per policy: ``{"policy": name, **figures}``.
    """
    rd = RunDir(run)
    if not rd.config.exists():
        raise FileNotFoundError(f"{rd.root} is not a run folder (no config.json): train with `recgym train --out DIR`")
    config = make_config(**read_json(rd.config))
    spec = agents.spec(config.agent)
    envs = make_run_environments(config.env, config.env_kwargs, spec.action_mode)
    folder = rd.latest_checkpoint()
    if folder is None:
        raise FileNotFoundError(f"{rd.root} holds no checkpoint yet: train it first")
    model = agents.load(folder / "model.zip", envs.training_env(1))
    label = f"{config.agent}" + (f" ({config.encoder})" if config.encoder else "")
    rows = [{"policy": label, **evaluate_policy(model, envs, protocol, n_episodes, config.seed)}]
    for name in baselines or []:
        baseline, benv = make_baseline(name, envs, config.seed, config.steps)
        rows.append({"policy": name, **evaluate_policy(baseline, benv, protocol, n_episodes, config.seed)})
    return rows


def format_table(rows: list[dict[str, Any]], protocol: str = "online") -> str:
    """A plain-text table of evaluation rows (policies as rows, figures as columns)."""
    if not rows:
        return "(no results)"
    columns = [c for c in rows[0] if c != "policy"]
    width = max(len(r["policy"]) for r in rows) + 2
    head = f"{'policy':<{width}}" + "".join(f"{c:>{max(12, len(c) + 2)}}" for c in columns)
    lines = [f"protocol: {protocol} (test users)", head, "-" * len(head)]
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            w = max(12, len(c) + 2)
            cells.append(f"{v:>{w}.4f}" if isinstance(v, float) and not np.isnan(v) else f"{str(v):>{w}}")
        lines.append(f"{r['policy']:<{width}}" + "".join(cells))
    return "\n".join(lines)
