"""Evaluation of a policy in a run's setup, and ``recgym evaluate``: a saved run (and baselines) under a protocol.

:func:`evaluate` scores a policy in memory: ``recgym train`` and ``recgym compare`` pass it the model they
trained and the :class:`~recgym.experiments.setup.RunSetup` it was trained in. :func:`evaluate_run` is
``recgym evaluate``: it loads a run folder's newest checkpoint, then does the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import agents
from recgym.evaluation.long_term import evaluate_long_term
from recgym.evaluation.offline import evaluate_offline
from recgym.evaluation.online import evaluate_online
from recgym.experiments.config import PROTOCOLS, TrainConfig, make_config
from recgym.experiments.run_dir import RunDir, read_json
from recgym.experiments.setup import RunSetup
from state_encoders.weights import PretrainedWeightsError, read_description


def evaluate_policy(policy: Any, run: RunSetup, protocol: str, n_episodes: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Figures of one policy under one protocol, on the test users.

    :param policy: a trained agent or a baseline (SB3 ``predict`` on batched observations).
    :param run: the run's scenario and episode configuration (in the policy's action mode).
    :param protocol: ``"online"``, ``"offline"`` or ``"long-term"``.
    :param n_episodes: online episodes (default: one per test user).
    :param seed: seed of the simulated responses.
    """
    if protocol == "online":
        return evaluate_online(policy, run.scenario, run.config, n_episodes=n_episodes, seed=seed).summary()
    if protocol == "offline":
        return evaluate_offline(policy, run.scenario, run.config)
    if protocol == "long-term":
        return evaluate_long_term(policy, run.scenario, run.config, n_episodes=n_episodes, seed=seed)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def evaluate(policy: Any, setup: RunSetup, protocols: Sequence[str], n_episodes: int | None = None,
             seed: int = 0) -> dict[str, dict[str, Any]]:
    """Figures of a policy in memory under each of ``protocols``, on the setup's test users.

    :param policy: a trained agent (:class:`~recgym.experiments.train.TrainedRun`'s model) or a baseline.
    :param setup: the setup it acts in (its scenario, and episodes in its action mode).
    :param protocols: among :data:`~recgym.experiments.config.PROTOCOLS`.
    :param n_episodes: online and long-term episodes (default: one per test user).
    :param seed: seed of the simulated responses (the run's seed).
    :returns: ``{protocol: figures}``.
    """
    return {protocol: evaluate_policy(policy, setup, protocol, n_episodes, seed) for protocol in protocols}


def make_baseline(name: str, run: RunSetup, seed: int, steps: int) -> tuple[Any, RunSetup]:
    """A fitted baseline for the run's scenario, and the run set up for the baseline (its action mode).

    ``learn`` fits the baselines that fit from the log and runs LinUCB online for ``steps``
    on the training users.
    """
    own = run.for_agent(name)
    model = agents.make(name, own.training_env(16), seed=seed, scenario=own.scenario)
    model.learn(steps)
    return model, own


def run_config(rd: RunDir) -> TrainConfig:
    """The validated configuration of a run folder.

    :raises FileNotFoundError: the run was trained from pretrained encoder weights (``--encoder-weights``)
        whose folder is gone or unreadable: the agent's encoder is rebuilt from that folder when it loads.
    """
    saved = read_json(rd.config)
    weights = saved.get("encoder_weights") if isinstance(saved, dict) else None
    if isinstance(weights, str):
        try:
            read_description(weights)
        except PretrainedWeightsError as err:
            raise FileNotFoundError(
                f"run {rd.root} was trained with --encoder-weights {weights}, and its agent's encoder is rebuilt "
                f"from that folder when the run loads, but it cannot be used now ({err}). Put the folder back at "
                f"{weights} (or write it again with the `recgym pretrain` command that made it) to evaluate or "
                "resume the run"
            ) from None
    return make_config(**saved)


def evaluate_run(run: str | Path, protocol: str = "online", baselines: list[str] | None = None,
                 n_episodes: int | None = None, device: str = "auto") -> list[dict[str, Any]]:
    """Evaluate a run folder's newest checkpoint, and optionally baselines, under ``protocol``.

    :param device: where the trained agent runs (``auto``, ``cpu``, ``cuda``), whatever device trained it:
        the run's own ``device`` setting is not used, so a run trained on a GPU evaluates on a CPU-only machine.

    :returns: one row per policy: ``{"policy": name, **figures}``.
    """
    rd = RunDir(run)
    if not rd.config.exists():
        raise FileNotFoundError(f"{rd.root} is not a run folder (no config.json): train with `recgym train --out DIR`")
    from recgym.experiments.train import check_checkpoint_model  # train evaluates through this module

    config = run_config(rd)
    run_setup = RunSetup.from_config(config)
    folder = rd.latest_checkpoint()
    if folder is None:
        raise FileNotFoundError(f"{rd.root} holds no checkpoint yet: train it first")
    model = agents.load(folder / "model.zip", run_setup.training_env(1), device=device)
    check_checkpoint_model(model, config, folder / "model.zip")
    label = f"{config.agent}" + (f" ({config.encoder})" if config.encoder else "")
    scenario = run_setup.scenario.label
    rows = [{"policy": label, "scenario": scenario,
             **evaluate_policy(model, run_setup, protocol, n_episodes, config.seed)}]
    for name in baselines or []:
        baseline, own = make_baseline(name, run_setup, config.seed, config.steps)
        rows.append({"policy": name, "scenario": scenario,
                     **evaluate_policy(baseline, own, protocol, n_episodes, config.seed)})
    return rows


def format_table(rows: list[dict[str, Any]], protocol: str = "online") -> str:
    """A plain-text table of evaluation rows (policies as rows, figures as columns)."""
    if not rows:
        return "(no results)"
    columns = [c for c in rows[0] if c not in ("policy", "scenario") and not c.endswith("_ci95")]
    width = max(len(r["policy"]) for r in rows) + 2
    head = f"{'policy':<{width}}" + "".join(f"{c:>{max(12, len(c) + 2)}}" for c in columns)
    scenario = f"; {rows[0]['scenario']}" if rows[0].get("scenario") else ""
    lines = [f"protocol: {protocol} (test users{scenario})", head, "-" * len(head)]
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            w = max(12, len(c) + 2)
            cells.append(f"{v:>{w}.4f}" if isinstance(v, float) and not np.isnan(v) else f"{str(v):>{w}}")
        lines.append(f"{r['policy']:<{width}}" + "".join(cells))
    return "\n".join(lines)
