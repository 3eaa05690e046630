"""``recgym train``: train an agent, checkpoint it atomically, evaluate it on test users.

The run reads top to bottom: build the environments, build (or resume) the
agent, learn with one callback that shows progress, evaluates on the test
users every ``eval_every`` steps and checkpoints every ``checkpoint_every``
steps, then write ``results.json`` and the learning-curve plot.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

import agents
from recgym.evaluation.online import EVAL_ENVS, evaluate_online, evaluation_env, run_episodes
from recgym.experiments.config import TrainConfig
from recgym.experiments.environments import RunSetup, make_run_setup
from recgym.experiments.plots import plot_learning_curve
from recgym.experiments.run_dir import CorruptCheckpointError, RunDir, read_json, write_json

class RunCallback(BaseCallback):
    """Progress bar with reward, periodic test-user evaluation and atomic checkpoints.

    :param run: the run folder.
    :param config: the run configuration.
    :param setup: the run's scenario and episode configuration (for the evaluation env).
    :param curve: learning-curve points so far (continued on resume).
    :param progress: show a progress bar.
    """

    def __init__(self, run: RunDir, config: TrainConfig, setup: RunSetup, curve: list[dict], progress: bool) -> None:
        super().__init__()
        self.run, self.config, self.setup, self.curve = run, config, setup, curve
        self.eval_env = evaluation_env(setup.scenario, setup.config, "test", min(EVAL_ENVS, config.eval_episodes))
        self.show_progress = progress
        self._returns: np.ndarray | None = None
        self._recent: list[float] = []
        self._next_eval = self._next_ckpt = 0
        self.overhead_seconds = 0.0  # evaluation and checkpoint time, excluded from steps/s
        self.bar: tqdm | None = None

    def _on_training_start(self) -> None:
        start = self.model.num_timesteps
        self._next_eval = (start // self.config.eval_every + 1) * self.config.eval_every
        self._next_ckpt = (start // self.config.checkpoint_every + 1) * self.config.checkpoint_every
        self._returns = np.zeros(self.training_env.num_envs)
        if start == 0 and not self.curve:
            self.evaluate(0)  # the untrained policy anchors the learning curve
        self.bar = tqdm(
            total=self.config.steps,
            initial=self.model.num_timesteps,
            unit="step",
            desc=f"{self.config.agent} on {self.config.env}",
            disable=not self.show_progress,
            dynamic_ncols=True,
        )

    def _on_step(self) -> bool:
        rewards, dones = self.locals.get("rewards"), self.locals.get("dones")
        if rewards is not None and dones is not None:
            self._returns += rewards
            for i in np.flatnonzero(dones):
                self._recent.append(float(self._returns[i]))
                self._returns[i] = 0.0
            self._recent = self._recent[-200:]
        steps = self.model.num_timesteps
        if self.bar is not None:
            self.bar.update(steps - self.bar.n)
            if self._recent:
                self.bar.set_postfix(episode_reward=f"{np.mean(self._recent):.3f}", refresh=False)
        if steps >= self._next_eval:
            self.evaluate(steps)
            self._next_eval = (steps // self.config.eval_every + 1) * self.config.eval_every
        if steps >= self._next_ckpt:
            tic = time.perf_counter()
            save_checkpoint(self.run, self.model, self.curve)
            self.overhead_seconds += time.perf_counter() - tic
            self._next_ckpt = (steps // self.config.checkpoint_every + 1) * self.config.checkpoint_every
        return True

    def evaluate(self, steps: int) -> None:
        tic = time.perf_counter()
        self._evaluate(steps)
        self.overhead_seconds += time.perf_counter() - tic

    def _evaluate(self, steps: int) -> None:
        result = run_episodes(self.model, self.eval_env, n_episodes=self.config.eval_episodes, seed=self.config.seed)
        point = {"step": int(steps), **result.summary()}
        if self._recent:
            point["train_episode_reward"] = float(np.mean(self._recent))
        self.curve.append(point)
        self.logger.record("eval/avg_reward_per_step", result.avg_reward_per_step)
        self.logger.record("eval/avg_reward_per_episode", result.avg_reward_per_episode)

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


def save_checkpoint(run: RunDir, model: Any, curve: list[dict]) -> Path:
    """Write a complete checkpoint folder, then point ``latest.json`` at it; drop older ones."""
    step = int(getattr(model, "num_timesteps", 0))
    folder = run.checkpoint_dir(step)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    model.save(folder / "model.zip")
    if isinstance(model, BaseAlgorithm) and getattr(model, "replay_buffer", None) is not None:
        model.save_replay_buffer(folder / "replay_buffer.pkl")
    write_json(folder / "state.json", {"step": step, "curve": curve, "time": time.time()})
    write_json(run.latest, {"folder": folder.name, "step": step})
    for old in run.checkpoints.glob("step-*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def load_checkpoint(run: RunDir, env: Any) -> tuple[Any, list[dict]]:
    """Load the newest checkpoint's model (and replay buffer) and learning curve.

    :raises CorruptCheckpointError: when any checkpoint file cannot be read.
    """
    folder = run.latest_checkpoint()
    if folder is None:
        raise FileNotFoundError(f"no checkpoint in {run.root}: nothing to resume; run without --resume")
    try:
        state = read_json(folder / "state.json")
        model = agents.load(folder / "model.zip", env)
        if (folder / "replay_buffer.pkl").exists() and isinstance(model, BaseAlgorithm):
            model.load_replay_buffer(folder / "replay_buffer.pkl")
    except CorruptCheckpointError:
        raise
    except Exception as err:  # a truncated zip or pickle surfaces as many exception types
        raise CorruptCheckpointError(
            f"checkpoint {folder} cannot be loaded ({type(err).__name__}: {err}); "
            "it is not used: start again with --overwrite"
        ) from err
    return model, list(state.get("curve", []))


def train(config: TrainConfig, out: str | Path, resume: bool = False, overwrite: bool = False, progress: bool = True) -> dict:
    """Train ``config.agent`` on ``config.env`` and write the run folder ``out``.

    :param config: validated run configuration.
    :param out: run folder.
    :param resume: continue from the newest checkpoint in ``out`` (same config).
    :param overwrite: delete an existing run folder first.
    :param progress: show a progress bar.
    :returns: the results written to ``out/results.json``.
    """
    run = RunDir(out)
    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other: choose one")
    if run.root.exists() and any(run.root.iterdir()) and not resume:
        if not overwrite:
            raise FileExistsError(
                f"run folder {run.root} already exists: pass --resume to continue it or --overwrite to replace it"
            )
        shutil.rmtree(run.root)
    if resume:
        saved = read_json(run.config) if run.config.exists() else None
        given = config.to_json()
        # a resumed run may train for longer; everything else must match what was saved
        changed = sorted(k for k in set(given) | set(saved or {}) if k != "steps" and (saved or {}).get(k) != given.get(k))
        if saved is not None and changed:
            raise ValueError(
                f"--resume needs the configuration saved in {run.config} (only --steps may change); differs in: {changed}"
            )
    run.root.mkdir(parents=True, exist_ok=True)
    write_json(run.config, config.to_json())

    spec = agents.spec(config.agent)
    setup = make_run_setup(config.env, config.env_kwargs, spec.action_mode)
    train_env = setup.training_env(config.n_envs)
    curve: list[dict] = []
    if resume:
        model, curve = load_checkpoint(run, train_env)
    else:
        extra = {"encoder_kwargs": config.encoder_kwargs} if config.encoder_kwargs else {}
        model = agents.make(config.agent, train_env, encoder=config.encoder, seed=config.seed, **extra, **config.agent_kwargs)

    start = time.perf_counter()
    done_before = int(getattr(model, "num_timesteps", 0))
    remaining = max(0, config.steps - done_before)
    overhead = 0.0
    if isinstance(model, BaseAlgorithm):
        model.tensorboard_log = str(run.tensorboard)
        callback = RunCallback(run, config, setup, curve, progress)
        if remaining:
            model.learn(remaining, callback=callback, reset_num_timesteps=not resume, tb_log_name="run")
        overhead = callback.overhead_seconds
        if not curve or curve[-1]["step"] != model.num_timesteps:
            callback.evaluate(model.num_timesteps)
    elif remaining:
        model.learn(remaining)
    seconds = time.perf_counter() - start - overhead
    trained = int(getattr(model, "num_timesteps", config.steps)) - done_before
    save_checkpoint(run, model, curve)

    final = evaluate_online(model, setup.scenario, setup.config, seed=config.seed)
    results = {
        "env": config.env,
        "agent": config.agent,
        "encoder": config.encoder,
        "seed": config.seed,
        "scenario": setup.scenario.label,
        "steps": config.steps,
        "gradient_updates": int(getattr(model, "_n_updates", 0)),
        "train_seconds": seconds,
        "steps_per_second": trained / seconds if seconds > 0 and trained else None,
        "online": final.summary(),
        "curve": curve,
    }
    write_json(run.results, results)
    if curve:
        plot_learning_curve({config.agent: [curve]}, run.curve_png, title=f"{config.agent} on {config.env}")
    return results
