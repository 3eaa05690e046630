"""``recgym train``: train an agent, checkpoint it atomically, evaluate it on test users.

The run reads top to bottom: :meth:`RunSetup.from_config` resolves the
configuration once (scenario, episode configuration, agent); :func:`train`
checks everything that can refuse the start (nothing is written before), builds
the training env and the agent (or resumes it), writes the run folder, learns
with one callback that shows progress, evaluates on the test users every
``eval_every`` steps and checkpoints every ``checkpoint_every`` steps, then
evaluates the trained model in memory and writes ``results.json`` and the
learning-curve plot. It returns a :class:`TrainedRun`: the model, its setup and
its figures, which further protocols evaluate as they are (the run folder is for
persistence and ``--resume``, never read back to evaluate). docs/guarantees.md
says what a kill can lose.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

import agents
from agents.registry import saved_agent_name
from agents.update_counter import GradientUpdateCounter
from recgym.evaluation.online import EVAL_ENVS, evaluation_env, run_episodes
from recgym.devices import resolve_device
from recgym.experiments.config import TrainConfig, changed_settings
from recgym.experiments.evaluate import evaluate
from recgym.experiments.setup import RunSetup, pretrained_weights_mismatch
from recgym.experiments.plots import plot_learning_curve
from recgym.experiments.run_dir import CorruptCheckpointError, RunDir, read_json, write_json
from recgym.threads import WORK_THREADS, set_threads


@dataclass
class TrainedRun:
    """A trained run, in memory: what :func:`train` returns.

    :param model: the trained agent (its newest checkpoint in the run folder holds the same model).
    :param setup: the setup it was trained in; evaluate the model on it (:func:`recgym.experiments.evaluate.evaluate`).
    :param curve: the learning curve: online figures on the test users over training steps.
    :param results: what ``results.json`` holds (``online``: the final online figures on the test users).
    """

    model: Any
    setup: RunSetup
    curve: list[dict]
    results: dict[str, Any]

    def saved_policy(self) -> Any:
        """The model as the run's checkpoint holds it, to score under a further protocol in memory.

        The same figures as loading the checkpoint gives (``recgym evaluate``), without reading it: a baseline's
        random choices start again from its seed, as a loaded baseline's do; a learning agent acts greedily and
        holds no random state to restart.
        """
        restart = getattr(self.model, "restart_random_choices", None)
        if restart is not None:
            restart()
        return self.model


class RunCallback(BaseCallback):
    """Progress bar with reward, periodic test-user evaluation and atomic checkpoints.

    :param run: the run folder.
    :param config: the run configuration.
    :param setup: the run's scenario and episode configuration (for the evaluation env).
    :param curve: learning-curve points so far (continued on resume).
    :param updates: the gradient-update counter learning alongside (its count goes into each checkpoint).
    :param progress: show a progress bar.
    :param report: called with the steps trained so far after each environment step (``recgym compare``'s
        live display); it should return at once.
    """

    def __init__(self, run: RunDir, config: TrainConfig, setup: RunSetup, curve: list[dict],
                 updates: GradientUpdateCounter, progress: bool, report: Callable[[int], None] | None = None) -> None:
        super().__init__()
        self.run, self.config, self.setup, self.curve, self.updates = run, config, setup, curve, updates
        self.report = report
        self.eval_env = evaluation_env(setup.scenario, setup.config, "test", min(EVAL_ENVS, config.eval_episodes))
        self.show_progress = progress
        self._returns: np.ndarray | None = None
        self._recent: list[float] = []
        self._next_eval = self._next_ckpt = 0
        self.overhead_seconds = 0.0  # evaluation and checkpoint time, excluded from steps/s
        # training wall-clock of earlier sessions of a resumed run, so that curve points add up
        self._seconds_before = float(curve[-1].get("train_seconds", 0.0)) if curve else 0.0
        self._start = time.perf_counter()
        self._reached = False
        self.bar: tqdm | None = None

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
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
        if self.report is not None:
            self.report(steps)
        if self.bar is not None:
            self.bar.update(steps - self.bar.n)
            if self._recent:
                self.bar.set_postfix(episode_reward=f"{np.mean(self._recent):.3f}", refresh=False)
        if steps >= self._next_eval:
            self.evaluate(steps)
            self._next_eval = (steps // self.config.eval_every + 1) * self.config.eval_every
        # the final step is checkpointed by train() once learning is over (with the last gradient
        # steps): saving it here too would write the same step twice
        if steps >= self._next_ckpt and steps < self.config.steps:
            tic = time.perf_counter()
            save_checkpoint(self.run, self.model, self.curve, self.updates.count)
            self.overhead_seconds += time.perf_counter() - tic
            self._next_ckpt = (steps // self.config.checkpoint_every + 1) * self.config.checkpoint_every
        return not self._reached

    def evaluate(self, steps: int) -> None:
        tic = time.perf_counter()
        self._evaluate(steps)
        self.overhead_seconds += time.perf_counter() - tic

    def _evaluate(self, steps: int) -> None:
        train_seconds = self._seconds_before + time.perf_counter() - self._start - self.overhead_seconds
        result = run_episodes(self.model, self.eval_env, n_episodes=self.config.eval_episodes, seed=self.config.seed)
        point = {"step": int(steps), "train_seconds": train_seconds, **result.summary()}
        target = self.config.stop_at_reward
        self._reached = target is not None and result.avg_reward_per_step >= target
        if self._recent:
            point["train_episode_reward"] = float(np.mean(self._recent))
        self.curve.append(point)
        self.logger.record("eval/avg_reward_per_step", result.avg_reward_per_step)
        self.logger.record("eval/avg_reward_per_episode", result.avg_reward_per_episode)

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


def save_checkpoint(run: RunDir, model: Any, curve: list[dict], gradient_updates: int) -> Path:
    """Write checkpoint ``step-N``, point ``latest.json`` at it, then remove the older ones.

    The files are written into a temporary folder that is renamed into place, and
    the pointer is written last, so ``latest.json`` always names a complete folder
    whenever the process is killed. A step the pointer already names is kept as it
    is: nothing was trained since (a resume with no steps left).

    :param run: the run folder.
    :param model: the agent (``num_timesteps``, ``save``, and ``save_replay_buffer`` for SB3 agents).
    :param curve: the learning curve so far.
    :param gradient_updates: the gradient updates taken so far (:class:`GradientUpdateCounter`), kept for a
        resume with no steps left, which trains nothing and so sees no count of its own.
    :returns: the checkpoint folder.
    """
    step = int(getattr(model, "num_timesteps", 0))
    folder = run.checkpoint_dir(step)
    if _committed(run) == folder:
        return folder
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=run.checkpoints))
    try:
        _write_checkpoint_files(tmp, model, step, curve, gradient_updates)
        if folder.exists():  # written by a run killed before its pointer: latest.json names another folder
            shutil.rmtree(folder)
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_json(run.latest, {"folder": folder.name, "step": step})
    for old in run.old_checkpoints(keep=folder):
        shutil.rmtree(old, ignore_errors=True)
    return folder


def _write_checkpoint_files(folder: Path, model: Any, step: int, curve: list[dict], gradient_updates: int) -> None:
    model.save(folder / "model.zip")
    if isinstance(model, BaseAlgorithm) and getattr(model, "replay_buffer", None) is not None:
        model.save_replay_buffer(folder / "replay_buffer.pkl")
    write_json(folder / "state.json",
               {"step": step, "curve": curve, "gradient_updates": int(gradient_updates), "time": time.time()})


def _committed(run: RunDir) -> Path | None:
    """The complete checkpoint ``latest.json`` names, or None (no pointer, or a broken one to be replaced)."""
    try:
        return run.latest_checkpoint()
    except CorruptCheckpointError:
        return None


def check_checkpoint_model(model: Any, config: TrainConfig, path: Path) -> None:
    """Refuse a checkpoint's model that is not the agent and encoder the run's ``config.json`` records.

    A ``model.zip`` copied in from another run (a dqn with ``mean`` into a dqn/``drr-ave`` run)
    loads on the same environment, and would otherwise be evaluated and resumed under this
    run's name. ``agents.make`` records both names on the model, and they are saved with it.

    :param model: the loaded model.
    :param config: the run's configuration.
    :param path: the model's file, for the message.
    :raises ValueError: naming both and what to do.
    """
    expected_encoder = config.encoder if config.encoder is not None else agents.spec(config.agent).default_encoder
    # the baselines record no encoder (None, as config's); their name is in the file, not on the object
    saved = (saved_agent_name(path), getattr(model, "encoder_name", None))
    if saved != (config.agent, expected_encoder):
        def describe(agent: Any, encoder: Any) -> str:
            return f"agent {agent!r}" + (f" with encoder {encoder!r}" if encoder is not None else "")

        raise ValueError(
            f"{path} holds {describe(*saved)}, but the run's config.json records "
            f"{describe(config.agent, expected_encoder)}: the model was copied in from another run. Put back this "
            "run's own model.zip, or evaluate the other run's folder; start this run again with --overwrite"
        )


def load_checkpoint(run: RunDir, env: Any, device: str = "auto",
                    config: TrainConfig | None = None) -> tuple[Any, list[dict], int]:
    """Load the newest checkpoint's model (and replay buffer), learning curve and gradient updates so far.

    :param run: the run folder.
    :param env: the environment the model trains on.
    :param device: where the model continues (its tensors and replay samples are mapped there,
        whatever device wrote the checkpoint).
    :param config: the run's configuration: the model must be its agent and encoder
        (:func:`check_checkpoint_model`).
    :raises CorruptCheckpointError: when any checkpoint file cannot be read.
    :raises ValueError: a model of another agent or encoder than ``config``'s.
    """
    folder = run.latest_checkpoint()
    if folder is None:
        raise FileNotFoundError(f"no checkpoint in {run.root}: nothing to resume; run without --resume")
    try:
        state = read_json(folder / "state.json")
        model = agents.load(folder / "model.zip", env, device=device)
        if (folder / "replay_buffer.pkl").exists() and isinstance(model, BaseAlgorithm):
            model.load_replay_buffer(folder / "replay_buffer.pkl")
    except CorruptCheckpointError:
        raise
    except Exception as err:  # a truncated zip or pickle surfaces as many exception types
        raise CorruptCheckpointError(
            f"checkpoint {folder} cannot be loaded ({type(err).__name__}: {err}); "
            "it is not used: start again with --overwrite"
        ) from err
    if config is not None:
        check_checkpoint_model(model, config, folder / "model.zip")
    path = folder / "state.json"
    return model, checkpoint_curve(state, path), checkpoint_gradient_updates(state, path)


def checkpoint_curve(state: Any, path: Path) -> list[dict]:
    """The learning curve of a checkpoint's ``state.json``, checked to have the shape ``save_checkpoint`` writes.

    :raises CorruptCheckpointError: valid JSON of another shape (not a mapping, a curve that is not a list of
        points with an integer ``step``), which would otherwise fail later as a ``TypeError``.
    """
    curve = state.get("curve", []) if isinstance(state, dict) else None
    if not isinstance(curve, list) or not all(
        isinstance(p, dict) and isinstance(p.get("step"), int) and not isinstance(p.get("step"), bool) for p in curve
    ):
        raise CorruptCheckpointError(
            f"{path} is not a recgym checkpoint state (expected {{\"step\": N, \"curve\": [points with a step]}}, "
            f"got {json.dumps(state)[:200]}); it is not used: start again with --overwrite"
        )
    return list(curve)


def checkpoint_gradient_updates(state: Any, path: Path) -> int:
    """The gradient updates a checkpoint's ``state.json`` records (0 in one written before they were recorded).

    Such an older run resumed with steps left reports its model's own total again, as the logger gives it; only
    one resumed with no steps left reports 0.

    :raises CorruptCheckpointError: a count that is not a whole number >= 0.
    """
    count = state.get("gradient_updates", 0) if isinstance(state, dict) else None
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise CorruptCheckpointError(
            f"{path} is not a recgym checkpoint state (expected \"gradient_updates\": a whole number >= 0, "
            f"got {json.dumps(count)[:200]}); it is not used: start again with --overwrite"
        )
    return count


def check_pretrained_weights(config: TrainConfig) -> None:
    """Refuse pretrained encoder weights that do not belong to the run's environment.

    ``recgym compare`` skips such cells; this is the same check
    (:func:`recgym.experiments.setup.pretrained_weights_mismatch`): the weights must come from the
    environment's dataset, history length and user split. Weights pretrained on another split
    were trained on ratings of this split's test users, so the run's test figures would be
    inflated without a word.

    :raises ValueError: naming what differs and how to fix it.
    """
    weights = config.all_encoder_kwargs().get("weights")
    if weights is None:
        return
    problems = pretrained_weights_mismatch(str(weights), config.env, config.env_kwargs)
    if problems:
        raise ValueError(
            f"--encoder-weights {weights} do not belong to {config.env} with env_kwargs {config.env_kwargs}: "
            f"{'; '.join(problems)} (on another split, this split's test users would have been seen in pretraining). "
            "For `recgym train`, pretrain on this run's environment (`recgym pretrain` with its --dataset, "
            "--history-length and --split-seed) or run on the weights' (--env-kwarg split_seed=N, "
            "history_length=N, dataset=NAME)"
        )


def check_start(run: RunDir, config: TrainConfig, resume: bool, overwrite: bool) -> None:
    """Everything that can refuse a start, checked before anything is written into the run folder.

    A refused start leaves the folder as it was, so the same command can be
    corrected and run again.

    :param run: the run folder.
    :param config: the run configuration.
    :param resume: continue from the newest checkpoint.
    :param overwrite: replace an existing run folder.
    :raises ValueError: contradictory flags, bad settings, or a resume that cannot continue.
    :raises FileExistsError: the folder exists and may not be replaced.
    :raises FileNotFoundError: ``--resume`` with no checkpoint.
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other: choose one")
    resolve_device(config.device)  # CUDA asked for where torch has none
    check_pretrained_weights(config)
    if run.root.exists() and not run.root.is_dir():
        raise FileExistsError(f"--out {run.root} is a file, not a folder: choose another --out")
    if not resume:
        if run.root.exists() and any(run.root.iterdir()):
            if not overwrite:
                raise FileExistsError(
                    f"run folder {run.root} already exists: pass --resume to continue it or --overwrite to replace it"
                )
            run.check_overwritable()
        return
    saved = read_json(run.config) if run.config.exists() else None
    given = config.to_json()
    # a resumed run may train for longer, and on another device; everything else must match what was saved
    changed = changed_settings(saved or {}, given, also_free=frozenset({"steps"}))
    if saved is not None and changed:
        raise ValueError(
            f"--resume needs the configuration saved in {run.config} (only --steps and --device may change); "
            f"differs in: {changed}"
        )
    folder = run.latest_checkpoint()
    if folder is None:
        raise FileNotFoundError(f"no checkpoint in {run.root}: nothing to resume; run without --resume")
    done = int(folder.name.removeprefix("step-"))
    # n_envs users step together, so a run of config.steps ends at the next multiple of n_envs (1000 -> 1008 with
    # 16): a run killed after that final checkpoint is resumed by the command that started it, with nothing to train
    batched_end = -(-config.steps // config.n_envs) * config.n_envs
    if done > batched_end:
        raise ValueError(
            f"{run.root} has already trained {done} steps, more than --steps {config.steps}: "
            f"pass --steps {done} or more to continue it, or use `recgym evaluate --run {run.root}` to evaluate it"
        )


def train(setup: RunSetup, config: TrainConfig, out: str | Path, resume: bool = False, overwrite: bool = False,
          progress: bool = True, report: Callable[[int], None] | None = None) -> TrainedRun:
    """Train ``config.agent`` in ``setup`` and write the run folder ``out``.

    :param setup: the run's scenario, episodes and agent, resolved from ``config`` (:meth:`RunSetup.from_config`).
    :param config: validated run configuration.
    :param out: run folder.
    :param resume: continue from the newest checkpoint in ``out`` (same config, ``steps`` at least those done).
    :param overwrite: replace a run folder recgym created (only recgym's own entries are removed).
    :param progress: show a progress bar.
    :param report: called with the steps trained so far as training goes (see :class:`RunCallback`).
    :returns: the trained model, its setup, its learning curve and the results written to ``out/results.json``
        (``steps`` is the steps trained in all).
    """
    if setup.agent is None or (setup.env_id, setup.agent.name) != (config.env, config.agent):
        raise ValueError(f"the setup is not {config.agent} on {config.env}: build it with RunSetup.from_config(config)")
    run = RunDir(out)
    check_start(run, config, resume, overwrite)

    train_env = setup.training_env(config.n_envs)
    # the trainer launches work: recgym's thread policy (recgym/threads.py), set from here on, where building the
    # environment used to set it, so that the scenario is built as before and every figure stays the same
    set_threads(WORK_THREADS)
    curve: list[dict] = []
    updates_before = 0
    if resume:
        model, curve, updates_before = load_checkpoint(run, train_env, config.device, config)
    else:
        model = setup.make_agent(config, train_env)
    # the agent exists: only now is anything written
    if not resume:
        if run.root.exists() and overwrite:
            run.clear()
        run.mark()
    write_json(run.config, config.to_json())

    start = time.perf_counter()
    done_before = int(getattr(model, "num_timesteps", 0))
    remaining = max(0, config.steps - done_before)
    overhead = 0.0
    updates = GradientUpdateCounter(start=updates_before)
    if isinstance(model, BaseAlgorithm):
        model.tensorboard_log = str(run.tensorboard)
        callback = RunCallback(run, config, setup, curve, updates, progress, report)
        if remaining:
            model.learn(remaining, callback=[callback, updates], reset_num_timesteps=not resume, tb_log_name="run")
        if not curve or curve[-1]["step"] != model.num_timesteps:
            callback.evaluate(model.num_timesteps)
        overhead = callback.overhead_seconds  # read after the last evaluation: it is not training time
    elif remaining:
        model.learn(remaining)
    seconds = time.perf_counter() - start - overhead
    steps = int(getattr(model, "num_timesteps", 0))
    trained = steps - done_before
    save_checkpoint(run, model, curve, updates.count)

    final = evaluate(model, setup, ("online",), seed=config.seed)
    results = {
        "env": config.env,
        "agent": config.agent,
        "encoder": config.encoder,
        "seed": config.seed,
        "scenario": setup.scenario.label,
        "steps": steps,  # trained in all (a batched env may end a few steps past config.steps)
        "gradient_updates": updates.count,  # the baselines take none
        # the baselines compute in numpy: no torch device
        "device": str(model.device) if isinstance(model, BaseAlgorithm) else None,
        "train_seconds": seconds,
        "steps_per_second": trained / seconds if seconds > 0 and trained else None,
        "online": final["online"],
        "curve": curve,
    }
    write_json(run.results, results)
    if curve:
        plot_learning_curve({config.agent: [curve]}, run.curve_png, title=f"{config.agent} on {config.env}")
    return TrainedRun(model, setup, curve, results)
