"""The supervised training loop: Adam over shuffled batches, validation every epoch, early stopping.

Reads top to bottom: shuffle the training targets, take a gradient step per
batch, evaluate on the validation targets, keep the best epoch's parameters
(by the task's ``monitor`` metric), stop after ``patience`` epochs without
improvement or at ``epochs``, restore the best parameters and evaluate them on
the test targets. Timing counts training epochs only (evaluation apart), as
RecBole's ``epoch N training [time: ...]``. The encoder and head train on
``TrainerConfig.device`` (``auto``: CUDA when available); they are initialised
on the CPU before they move, so a seed gives the same starting parameters on
either device.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from recgym.devices import check_device_name, resolve_device
from recgym.pretrain.tasks import Task
from recgym.pretrain.windows import WindowBuilder
from state_encoders.base import StateEncoder

#: RecBole's defaults (``overall.yaml``): learning_rate, train_batch_size, eval_batch_size, stopping_step
DEFAULT_LR = 1e-3
DEFAULT_BATCH_SIZE = 2048
DEFAULT_EVAL_BATCH_SIZE = 4096
DEFAULT_PATIENCE = 10
DEFAULT_EPOCHS = 100


@dataclass(frozen=True)
class TrainerConfig:
    """Settings of the loop.

    :param epochs: the most epochs to train.
    :param batch_size: training targets per gradient step.
    :param lr: Adam's learning rate.
    :param patience: stop after this many epochs without a better validation figure
        (``None``: never stop early, train ``epochs`` and keep the best epoch, as a fixed budget).
    :param eval_batch_size: targets per forward pass in evaluation.
    :param seed: seed of the parameter initialisation's RNG (set by the caller) and of the shuffling.
    :param progress: show a progress bar over batches.
    :param snapshot_epoch: also test the best epoch among the first ``snapshot_epoch`` ones
        (:attr:`TrainResult.snapshot`): one early-stopped run then reports both a fixed epoch budget
        and convergence, which is what a budget-matched comparison needs.
    :param device: where the encoder and head train and are evaluated: ``"auto"`` (CUDA when
        available, else the CPU), ``"cpu"`` or ``"cuda"`` (:func:`recgym.devices.resolve_device`).
    """

    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    lr: float = DEFAULT_LR
    patience: int | None = DEFAULT_PATIENCE
    eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE
    seed: int = 0
    progress: bool = True
    snapshot_epoch: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        check_device_name(self.device)
        if self.snapshot_epoch is not None and (isinstance(self.snapshot_epoch, bool)
                                                or not isinstance(self.snapshot_epoch, int)
                                                or self.snapshot_epoch < 1):
            raise ValueError(f"snapshot-epoch must be a positive integer, got {self.snapshot_epoch!r}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.patience is not None and (isinstance(self.patience, bool) or not isinstance(self.patience, int)
                                          or self.patience < 1):
            raise ValueError(f"patience must be a positive integer, got {self.patience!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) \
                or self.lr <= 0:
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")


@dataclass
class TrainResult:
    """What a training run produced (everything JSON-serialisable)."""

    test: dict[str, float]
    valid: dict[str, float]
    best_epoch: int
    epochs: int
    stopped_early: bool
    seconds_per_epoch: float
    train_seconds: float
    total_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    #: with ``TrainerConfig.snapshot_epoch``: ``test``, ``valid``, ``best_epoch``, ``epochs`` and
    #: ``train_seconds`` as they stood after that epoch (or at the end, if training stopped before it)
    snapshot: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def fit(
    encoder: StateEncoder,
    head: nn.Module,
    task: Task,
    windows: WindowBuilder,
    split: dict[str, np.ndarray],
    config: TrainerConfig,
    tensorboard_dir: str | Path | None = None,
) -> TrainResult:
    """Train ``encoder`` and ``head`` on ``task``; return the best epoch's validation and test figures.

    On return the encoder and head hold the best epoch's parameters, on ``config.device``.

    :param encoder: the state encoder being pretrained.
    :param head: the task's head (:meth:`Task.make_head`).
    :param task: the task (loss and metrics).
    :param windows: observations of the targets.
    :param split: ``{"train", "valid", "test"}`` target indices (:meth:`Task.split`).
    :param config: the loop's settings.
    :param tensorboard_dir: write TensorBoard scalars (loss, validation metrics) here.
    :raises ValueError: no training or validation targets, or ``config.device`` is CUDA where torch has none.
    """
    device = resolve_device(config.device)
    if split["train"].size == 0:
        raise ValueError("no training targets: the log's users are too short for this task (need 3+ interactions)")
    if split["valid"].size == 0:
        raise ValueError("no validation targets: the log is too small for this task's split")
    rng = np.random.default_rng(config.seed)
    encoder.to(device)
    head.to(device)
    parameters = [p for module in (encoder, head) for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=config.lr)
    writer = _summary_writer(tensorboard_dir)
    better = (lambda a, b: a > b) if task.monitor_mode == "max" else (lambda a, b: a < b)

    start = time.perf_counter()
    best_score, best_epoch, best_state, best_valid = None, 0, None, {}
    history: list[dict[str, Any]] = []
    epoch_seconds: list[float] = []
    waited = 0
    snapshot: dict[str, Any] | None = None
    n_batches = -(-split["train"].size // config.batch_size)
    bar = tqdm(total=config.epochs * n_batches, unit="batch", desc=f"pretrain {encoder.name} ({task.name})",
               disable=not config.progress, dynamic_ncols=True)
    try:
        for epoch in range(1, config.epochs + 1):
            tic = time.perf_counter()
            encoder.train()
            head.train()
            order = rng.permutation(split["train"])
            total = 0.0
            for b in range(n_batches):
                batch = order[b * config.batch_size : (b + 1) * config.batch_size]
                loss = task.loss(encoder, head, windows, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * batch.size
                bar.update(1)
            epoch_seconds.append(time.perf_counter() - tic)
            train_loss = total / split["train"].size

            encoder.eval()
            head.eval()
            valid = task.evaluate(encoder, head, windows, split["valid"], config.eval_batch_size)
            score = valid[task.monitor]
            history.append({"epoch": epoch, "train_loss": train_loss, "seconds": epoch_seconds[-1], **valid})
            bar.set_postfix(loss=f"{train_loss:.4f}", **{task.monitor: f"{score:.4f}"}, refresh=False)
            if writer is not None:
                writer.add_scalar("train/loss", train_loss, epoch)
                writer.add_scalar("train/seconds_per_epoch", epoch_seconds[-1], epoch)
                for key, value in valid.items():
                    writer.add_scalar(f"valid/{key}", value, epoch)
            improved = math.isfinite(score) and (best_score is None or not math.isfinite(best_score)
                                                 or better(score, best_score))
            if best_score is None or improved:
                best_score, best_epoch, best_valid, waited = score, epoch, valid, 0
                best_state = (copy.deepcopy(encoder.state_dict()), copy.deepcopy(head.state_dict()))
            else:
                waited += 1
            if epoch == config.snapshot_epoch:
                snapshot = _snapshot(encoder, head, task, windows, split, config, best_state, best_epoch,
                                     best_valid, epoch_seconds)
            if config.patience is not None and waited >= config.patience:
                break
    finally:
        bar.close()
    assert best_state is not None
    encoder.load_state_dict(best_state[0])
    head.load_state_dict(best_state[1])
    encoder.eval()
    head.eval()
    test = task.evaluate(encoder, head, windows, split["test"], config.eval_batch_size)
    if writer is not None:
        for key, value in test.items():
            writer.add_scalar(f"test/{key}", value, best_epoch)
        writer.close()
    epochs = len(epoch_seconds)
    if config.snapshot_epoch is not None and snapshot is None:  # stopped before the snapshot epoch
        snapshot = {"test": test, "valid": best_valid, "best_epoch": best_epoch, "epochs": epochs,
                    "train_seconds": sum(epoch_seconds)}
    return TrainResult(
        test=test, valid=best_valid, best_epoch=best_epoch, epochs=epochs,
        stopped_early=epochs < config.epochs, seconds_per_epoch=sum(epoch_seconds) / epochs,
        train_seconds=sum(epoch_seconds), total_seconds=time.perf_counter() - start, history=history,
        snapshot=snapshot,
    )


def _snapshot(encoder: StateEncoder, head: nn.Module, task: Task, windows: WindowBuilder,
              split: dict[str, np.ndarray], config: TrainerConfig, best_state: tuple[Any, Any] | None,
              best_epoch: int, best_valid: dict[str, float], epoch_seconds: list[float]) -> dict[str, Any]:
    """Test the best state so far, then put the current parameters back so that training goes on unchanged."""
    assert best_state is not None
    current = (copy.deepcopy(encoder.state_dict()), copy.deepcopy(head.state_dict()))
    encoder.load_state_dict(best_state[0])
    head.load_state_dict(best_state[1])
    test = task.evaluate(encoder, head, windows, split["test"], config.eval_batch_size)
    encoder.load_state_dict(current[0])
    head.load_state_dict(current[1])
    encoder.train()
    head.train()
    return {"test": test, "valid": best_valid, "best_epoch": best_epoch, "epochs": len(epoch_seconds),
            "train_seconds": sum(epoch_seconds)}


def _summary_writer(folder: str | Path | None) -> Any:
    if folder is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(folder))


@dataclass
class Pretrained:
    """An encoder pretrained by :func:`pretrain_encoder`, with what is needed to save and report it."""

    encoder: StateEncoder
    encoder_kwargs: dict[str, Any]
    head: nn.Module
    result: TrainResult
    windows: WindowBuilder
    split: dict[str, np.ndarray]


def pretrain_encoder(
    log: Any,
    encoder: str,
    task: Task,
    history_length: int,
    encoder_kwargs: dict[str, Any] | None = None,
    config: TrainerConfig = TrainerConfig(),
    tensorboard_dir: str | Path | None = None,
) -> Pretrained:
    """Cut ``log`` into windows, build encoder ``encoder`` and the task's head, and train them.

    :param log: the :class:`~recgym.data.rating_log.RatingLog` to learn from (for a
        scenario, its training users' log: ``scenario.training_log()``); the observation's
        ids span the log's whole id space, so the encoder fits the environment's spaces.
    :param encoder: a registered encoder name.
    :param task: :class:`~recgym.pretrain.tasks.NextItemTask` or :class:`~recgym.pretrain.tasks.ClickThroughTask`.
    :param history_length: ``N`` of the observations (the environment's ``history_length``).
    :param encoder_kwargs: the encoder's constructor arguments (e.g. ``embedding_dim``).
    :param config: the loop's settings (its ``seed`` also seeds the initialisation).
    :param tensorboard_dir: where TensorBoard scalars go (None: nowhere).
    """
    import state_encoders
    from recgym.pretrain.windows import UserSequences

    sequences = UserSequences.from_log(log)
    windows = WindowBuilder(sequences, n_users=log.n_users, history_length=history_length)
    split = task.split(sequences)
    kwargs = dict(encoder_kwargs or {})
    torch.manual_seed(config.seed)
    model = state_encoders.make(encoder, windows.observation_space, **kwargs)
    head = task.make_head(model, windows)
    result = fit(model, head, task, windows, split, config, tensorboard_dir=tensorboard_dir)
    return Pretrained(model, kwargs, head, result, windows, split)
