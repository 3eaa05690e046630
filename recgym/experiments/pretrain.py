"""``recgym pretrain``: train a state encoder on a supervised task and write weights an agent can load.

The run reads top to bottom: check the settings and the run folder (nothing is
written before), build the dataset's scenario (the same user split as
``recgym train`` with the same ``split_seed``), take its **training users'**
ratings only (``scenario.training_log()``: a pretrained encoder never saw a
test user's rating), cut them into windows in the environment's observation
format, train (:mod:`recgym.pretrain`), and write the run folder::

    .recgym-run     marker: recgym created this folder (``--overwrite`` needs it)
    config.json     the settings
    tensorboard/    loss and validation metrics per epoch (run_1/events...)
    weights.pt      the encoder's parameters, name and constructor arguments
    encoder.json    the same without the tensors, and the parameter shapes
    results.json    test and best-validation figures, epochs, seconds per epoch, total time

The test figures are on the training users' held-out items (their last item
for next-item, the newest 10% of interactions for click-through), the standard
protocol of these models; the RL test users are not touched.
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recgym.devices import DEVICE_CHOICES, check_device_name
from recgym.envs.config import DEFAULT_HISTORY_LENGTH
from recgym.experiments.run_dir import RunDir, write_json
from simulators.base import Behavior
from recgym.pretrain.tasks import TASKS
from recgym.pretrain.trainer import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_PATIENCE,
    TrainerConfig,
)

#: RecBole's embedding size for its sequential models (embedding_size / hidden_size 64)
DEFAULT_EMBEDDING_DIM = 64
#: how the encoder's tables start: learned from scratch, or the scenario's (training-users) PMF factors
INITS = ("scratch", "pmf")
#: what ``history_behavior`` reports in the windows: CLICK for a liked rating and SKIP otherwise (as the
#: PMF environment), or the ratings read as skip / click / purchase (a multi-behaviour log)
BEHAVIOR_SOURCES = ("liked", "ratings")
#: the behaviour a target-behaviour task tests by default (MB-STR's target: purchase)
DEFAULT_TARGET_BEHAVIOR = "purchase"
PRETRAIN_ENTRIES = frozenset({".recgym-run", "config.json", "tensorboard", "weights.pt", "encoder.json", "results.json"})
_TEMPORARY_PRETRAIN_ENTRY = re.compile(
    r"\.(config\.json|results\.json|weights\.pt|encoder\.json|\.recgym-run)\..*\.tmp"
)


class PretrainRunDir(RunDir):
    """A ``recgym pretrain`` run folder: its own entries, the same overwrite rules as ``recgym train``'s."""

    entries = PRETRAIN_ENTRIES
    temporary_entry = _TEMPORARY_PRETRAIN_ENTRY
    written_by = "recgym pretrain"

    @property
    def weights(self) -> Path:
        return self.root / "weights.pt"


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that defines a pretraining run.

    :param encoder: a registered state encoder.
    :param dataset: a registered dataset.
    :param task: ``"next-item"`` or ``"ctr"``.
    :param epochs: most epochs (early stopping may stop sooner).
    :param batch_size: training windows per step.
    :param lr: Adam's learning rate.
    :param patience: epochs without a better validation figure before stopping.
    :param history_length: N of the observations; match the environment you will load the encoder into.
    :param seed: seed of the initialisation and the shuffling.
    :param data_dir: local data directory.
    :param embedding_dim: embedding size (``init="scratch"``).
    :param init: ``"scratch"`` or ``"pmf"`` (tables from the scenario's training-users PMF, users folded in).
    :param exclude_seen: next item and cloze: drop already-rated items from the ranking (default False, as RecBole).
    :param split_seed: seed of the train/test user split (as the environment's ``split_seed``).
    :param behaviors: ``"liked"`` (default) or ``"ratings"``: the log's ratings read as skip / click /
        purchase (:func:`~recgym.experiments.behavior_log.rating_behavior_log`).
    :param behavior_log: a log written by ``recgym log-behavior`` (recorded on ``dataset``): train on it
        instead of the dataset's ratings (its users should be the training users, its default).
    :param target_behavior: test on each user's last interaction of this behaviour (``skip``, ``click``,
        ``purchase``): the cloze task always (default purchase), next item when given.
    :param device: where the encoder trains: ``auto`` (CUDA when available, else the CPU), ``cpu`` or
        ``cuda`` (:func:`recgym.devices.resolve_device`); the saved weights are CPU tensors either way.
    """

    encoder: str
    dataset: str = "ml-100k"
    task: str = "next-item"
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    lr: float = DEFAULT_LR
    patience: int = DEFAULT_PATIENCE
    history_length: int = DEFAULT_HISTORY_LENGTH
    seed: int = 0
    data_dir: str | None = None
    embedding_dim: int = DEFAULT_EMBEDDING_DIM
    init: str = "scratch"
    exclude_seen: bool = False
    split_seed: int = 0
    behaviors: str = "liked"
    behavior_log: str | None = None
    target_behavior: str | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        import state_encoders
        from recgym.data.registry import DATASETS

        if self.encoder not in state_encoders.available():
            raise ValueError(f"unknown encoder {self.encoder!r}; choose one of {', '.join(state_encoders.available())}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; choose one of {', '.join(INITS)}")
        if self.behaviors not in BEHAVIOR_SOURCES:
            raise ValueError(f"unknown behaviours {self.behaviors!r}; choose one of {', '.join(BEHAVIOR_SOURCES)}")
        if self.behavior_log is not None and self.behaviors != "liked":
            raise ValueError("--behavior-log brings its own behaviours: leave --behaviors at liked")
        if self.target_behavior is not None:
            from state_encoders.mbstr import behavior_code

            behavior_code(self.target_behavior)  # a clear error for an unknown name
            if self.task == "ctr":
                raise ValueError("--target-behavior applies to the next-item and cloze tasks, not to ctr")
        for name in ("history_length", "embedding_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int) or self.split_seed < 0:
            raise ValueError(f"split-seed must be an integer >= 0, got {self.split_seed!r}")
        check_device_name(self.device)
        self.trainer()  # checks epochs, batch size, lr, patience, seed

    def trainer(self, progress: bool = True) -> TrainerConfig:
        return TrainerConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, patience=self.patience,
                             seed=self.seed, progress=progress, device=self.device)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def task_kwargs(self) -> dict[str, Any]:
        """The task's arguments: exclusion of seen items, target behaviour, cloze windows of length N."""
        from state_encoders.mbstr import behavior_code

        if self.task == "ctr":
            return {}
        kwargs: dict[str, Any] = {"exclude_seen": self.exclude_seen}
        if self.task == "cloze":
            kwargs["target_behavior"] = behavior_code(self.target_behavior or DEFAULT_TARGET_BEHAVIOR)
            kwargs["stride"] = self.history_length  # windows of length N tile each sequence
        elif self.target_behavior is not None:
            kwargs["target_behavior"] = behavior_code(self.target_behavior)
        return kwargs


def check_start(run: PretrainRunDir, overwrite: bool) -> None:
    """Refuse a folder that exists unless ``overwrite`` and recgym pretrain wrote it (nothing written yet)."""
    if run.root.exists() and not run.root.is_dir():
        raise FileExistsError(f"--out {run.root} is a file, not a folder: choose another --out")
    if run.root.exists() and any(run.root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"run folder {run.root} already exists: pass --overwrite to replace it")
        run.check_overwritable()


def pretrain(config: PretrainConfig, out: str | Path, overwrite: bool = False, progress: bool = True) -> dict:
    """Pretrain ``config.encoder`` on ``config.task`` and write the run folder ``out``.

    :returns: what is written to ``out/results.json``.
    """
    import torch

    from recgym.devices import resolve_device
    from recgym.pretrain import make_task, pretrain_encoder
    from recgym.scenario import make_scenario
    from state_encoders.weights import save_pretrained

    run = PretrainRunDir(out)
    check_start(run, overwrite)
    device = resolve_device(config.device)  # CUDA asked for without one: refused before anything is written
    torch.set_num_threads(1)
    tic = time.perf_counter()
    scenario = make_scenario(config.dataset, data_dir=config.data_dir, split_seed=config.split_seed)
    log = _training_log(config, scenario)
    task = make_task(config.task, **config.task_kwargs())
    encoder_kwargs = _encoder_kwargs(config, scenario)

    if run.root.exists() and overwrite:
        run.clear()
    run.mark()
    write_json(run.config, config.to_json())
    trained = pretrain_encoder(log, config.encoder, task, config.history_length, encoder_kwargs,
                               config.trainer(progress), tensorboard_dir=run.tensorboard / "run_1")
    target = config.task_kwargs().get("target_behavior")
    held_out = "last items" if target is None else f"last {Behavior(target).name.lower()} interactions"
    source = ("a behaviour log recorded on" if config.behavior_log else "")
    note = (f"pretrained on {source or 'the'} training users' {'ratings' if not source else 'episodes'} only; "
            "test figures are on their held-out "
            + (f"{held_out} (chronological leave-one-out, full ranking over all items, seen items "
               f"{'excluded' if config.exclude_seen else 'not excluded, as RecBole'})" if config.task != "ctr"
               else "newest 10% of interactions (time-ordered 80/10/10)"))
    save_pretrained(trained.encoder, encoder_kwargs, run.root, extra={
        "task": config.task, "dataset": config.dataset, "split_seed": config.split_seed,
        "history_length": config.history_length, "behaviors": config.behaviors,
        "behavior_log": config.behavior_log, "target_behavior": target, "note": note,
    })
    result = trained.result
    results = {
        "encoder": config.encoder,
        "task": config.task,
        "dataset": config.dataset,
        "users": {"pretrained_on": "train", "n_train_users": int(scenario.train_users.size),
                  "n_test_users_excluded": int(scenario.test_users.size)},
        "targets": {k: int(v.size) for k, v in trained.split.items()},
        "note": note,
        "test": result.test,
        "valid": result.valid,
        "best_epoch": result.best_epoch,
        "epochs": result.epochs,
        "stopped_early": result.stopped_early,
        "seconds_per_epoch": result.seconds_per_epoch,
        "train_seconds": result.train_seconds,
        "total_seconds": time.perf_counter() - tic,
        "device": str(device),
        "history": result.history,
    }
    write_json(run.results, _finite(results))
    return results


def _training_log(config: PretrainConfig, scenario: Any) -> Any:
    """The training users' ratings, read as behaviours if asked, or a recorded behaviour log."""
    from recgym.experiments.behavior_log import load_behavior_log, rating_behavior_log

    if config.behavior_log is not None:
        log = load_behavior_log(config.behavior_log, scenario.log)
        users = np.unique(log.interactions["user"].to_numpy())
        leaked = np.intersect1d(users, scenario.test_users)
        if leaked.size:
            raise ValueError(f"{config.behavior_log} holds {leaked.size} test users of split {config.split_seed}: "
                             "record it with --users train and the same --split-seed")
        return log
    log = scenario.training_log()
    return rating_behavior_log(log) if config.behaviors == "ratings" else log


def _encoder_kwargs(config: PretrainConfig, scenario: Any) -> dict[str, Any]:
    """The encoder's constructor arguments: an embedding size, or the scenario's PMF tables (learned further).

    Encoders whose constructor takes ``item_features`` (content-aware ones such as FDSA and p-RNN)
    get the dataset's item content features (:func:`state_encoders.features.content_kwargs`).
    """
    import state_encoders
    from state_encoders.features import content_kwargs

    if config.init == "pmf":
        from state_encoders.pmf_tables import pmf_encoder_kwargs

        kwargs = pmf_encoder_kwargs(scenario, freeze=False)
    else:
        kwargs = {"embedding_dim": config.embedding_dim}
    return {**kwargs, **content_kwargs(state_encoders.encoder_class(config.encoder), scenario.log),
            **_target_kwargs(config)}


def _target_kwargs(config: PretrainConfig) -> dict[str, Any]:
    """``{"target_behavior": code}`` for an encoder whose state predicts a behaviour (MB-STR), else ``{}``."""
    import inspect

    import state_encoders

    parameters = inspect.signature(state_encoders.encoder_class(config.encoder).__init__).parameters
    target = config.task_kwargs().get("target_behavior")
    return {"target_behavior": target} if target is not None and "target_behavior" in parameters else {}


def _finite(value: Any) -> Any:
    """NaN and infinities -> None, so results.json is strict JSON."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# -- the command line ---------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pretrain`` sub-command."""
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain a state encoder on next-item or click-through prediction",
        description="Train a state encoder on the training users' ratings of a dataset (next-item prediction or "
        "click-through) and write DIR/weights.pt, DIR/encoder.json and DIR/results.json; load the weights "
        "with `recgym train --encoder NAME --encoder-weights DIR`.",
    )
    p.add_argument("--encoder", required=True, help="state encoder name")
    p.add_argument("--dataset", default="ml-100k", help="dataset name (default ml-100k)")
    p.add_argument("--task", default="next-item", help=f"supervised task: {', '.join(TASKS)} (default next-item)")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help=f"most epochs (default {DEFAULT_EPOCHS})")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                   help=f"training windows per step (default {DEFAULT_BATCH_SIZE}, RecBole's)")
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"Adam learning rate (default {DEFAULT_LR:g})")
    p.add_argument("--patience", type=int, default=DEFAULT_PATIENCE,
                   help=f"epochs without a better validation figure before stopping (default {DEFAULT_PATIENCE})")
    p.add_argument("--history-length", type=int, default=DEFAULT_HISTORY_LENGTH,
                   help=f"N, the observation's history length; use the environment's (default {DEFAULT_HISTORY_LENGTH})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--data-dir", help="local data directory (default: RECGYM_DATA_DIR, then the cache)")
    p.add_argument("--embedding-dim", type=int, default=DEFAULT_EMBEDDING_DIM,
                   help=f"embedding size (default {DEFAULT_EMBEDDING_DIM}; ignored with --init pmf)")
    p.add_argument("--init", default="scratch",
                   help="scratch: learn the tables from random; pmf: start from the scenario's PMF factors "
                   "(fitted on the training users; user terms folded in)")
    p.add_argument("--exclude-seen", action="store_true",
                   help="next-item and cloze: drop already-rated items from the ranking (RecBole does not)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/test user split (as the environment's)")
    p.add_argument("--behaviors", default="liked",
                   help="history_behavior of the windows: liked (CLICK if rating >= 4, else SKIP; default) or "
                   "ratings (1-3 stars skip, 4 click, 5 purchase)")
    p.add_argument("--behavior-log", help="train on a log written by `recgym log-behavior` (recorded on --dataset)")
    p.add_argument("--target-behavior",
                   help="test on each user's last skip, click or purchase (cloze: default purchase)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                   help="where the encoder trains: auto (CUDA when available, else the CPU; default), cpu or cuda")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run folder written by recgym pretrain (refused for any other folder)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run_pretrain)


def run_pretrain(args: argparse.Namespace) -> int:
    config = PretrainConfig(
        encoder=args.encoder, dataset=args.dataset, task=args.task, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, patience=args.patience, history_length=args.history_length, seed=args.seed,
        data_dir=args.data_dir, embedding_dim=args.embedding_dim, init=args.init, exclude_seen=args.exclude_seen,
        split_seed=args.split_seed, behaviors=args.behaviors, behavior_log=args.behavior_log,
        target_behavior=args.target_behavior, device=args.device,
    )
    results = pretrain(config, args.out, overwrite=args.overwrite, progress=not args.no_progress)
    figures = ", ".join(f"{k} {v:.4f}" for k, v in results["test"].items() if v is not None)
    print(f"pretrained {config.encoder} on {config.dataset} ({config.task}) on {results['device']} for "
          f"{results['epochs']} epochs "
          f"({results['seconds_per_epoch']:.1f} s/epoch; best epoch {results['best_epoch']}); test: {figures}")
    print(f"weights: {Path(args.out) / 'weights.pt'}; results: {Path(args.out) / 'results.json'}")
    return 0
