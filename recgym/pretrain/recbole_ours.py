"""recgym's side of the comparison with RecBole: our encoders trained and timed under the shared protocol.

The protocol's settings and RecBole's side are :mod:`recgym.pretrain.recbole_reference`;
``scripts/compare_recbole.py ours`` and ``speed`` call :func:`run_ours` and :func:`ours_speed`.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import state_encoders
from recgym.data import RatingLog, load
from recgym.data.atomic import atomic_write
from recgym.devices import resolve_device
from recgym.pretrain.recbole_reference import (
    BATCH_SIZE,
    CONVERGED_EPOCHS,
    EMBEDDING_DIM,
    EVERY_POSITION,
    HISTORY_LENGTH,
    LEARNING_RATE,
    NO_PROJECTION,
    OURS,
    PATIENCE,
    RECBOLE_MODELS,
    RECBOLE_SASREC_SETTINGS,
    THREADS,
    conditions_at_end,
    conditions_at_start,
)
from recgym.pretrain.tasks import Task, make_task
from recgym.pretrain.trainer import TrainerConfig, pretrain_encoder
from recgym.pretrain.windows import UserSequences, WindowBuilder

__all__ = ["our_encoder_kwargs", "our_task_and_batch", "ours_speed", "run_ours", "write_record"]


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as indented JSON, atomically (a kill leaves the old file)."""
    import json

    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))


def our_encoder_kwargs(name: str, log: RatingLog) -> dict[str, Any]:
    """Embedding 64; item genres for encoders whose constructor takes ``item_features`` (FDSA, p-RNN); RecBole's
    initialisation and layer-norm placement for SASRec (``RECBOLE_SASREC_SETTINGS``)."""
    kwargs: dict[str, Any] = {"embedding_dim": EMBEDDING_DIM, **RECBOLE_SASREC_SETTINGS.get(name, {})}
    parameters = inspect.signature(state_encoders.encoder_class(name).__init__).parameters
    if "item_features" in parameters and log.item_genres() is not None:
        kwargs["item_features"] = log.item_genres()
    return kwargs


def our_task_and_batch(name: str) -> tuple[Task, int]:
    """Our task object and batch size (windows) for encoder ``name`` (see ``EVERY_POSITION``, ``NO_PROJECTION``)."""
    if name not in OURS:
        raise ValueError(f"no RecBole counterpart for {name!r}; choose among {', '.join(OURS)}")
    task = RECBOLE_MODELS[OURS[name]][0]
    options: dict[str, Any] = {"project": False} if name in NO_PROJECTION else {}
    if name in EVERY_POSITION:
        return make_task(task, window_stride=HISTORY_LENGTH - 1, **options), BATCH_SIZE // HISTORY_LENGTH
    return make_task(task, **options), BATCH_SIZE


def run_ours(name: str, budget: int, seed: int, budget_out: Path, converged_out: Path | None, code_commit: str,
             max_epochs: int = CONVERGED_EPOCHS, patience: int = PATIENCE) -> dict[str, Any]:
    """Train recgym encoder ``name`` on ML-100K (all users, as RecBole) under the shared protocol.

    With ``converged_out``, one run with early stopping writes both records: the best epoch among
    the first ``budget`` (RecBole's budget, a snapshot taken during the run) and the best epoch at
    convergence. Without it, the run stops at ``budget`` epochs and writes the first only. The
    same seed gives the same first ``budget`` epochs either way (same initialisation and shuffling;
    the patience decides nothing before then). Each record carries the run's timing conditions
    (load average at its start and end, niceness, threads).

    :param code_commit: the checkout's commit, recorded with the figures.
    """
    torch.set_num_threads(THREADS)
    task = RECBOLE_MODELS[OURS[name]][0]
    log = load("ml-100k")
    conditions = conditions_at_start(THREADS)
    tic = time.perf_counter()
    converging = converged_out is not None
    task_object, batch_size = our_task_and_batch(name)
    trained = pretrain_encoder(
        log, name, task_object, HISTORY_LENGTH, our_encoder_kwargs(name, log),
        TrainerConfig(epochs=max_epochs if converging else budget, batch_size=batch_size, lr=LEARNING_RATE,
                      patience=patience if converging else None, seed=seed, progress=False, snapshot_epoch=budget),
    )
    r = trained.result
    total = time.perf_counter() - tic
    conditions = conditions_at_end(conditions)
    common = {
        "side": "recgym", "code_commit": code_commit, "encoder": name, "compared_with": OURS[name],
        "task": task, "dataset": "ml-100k", "seed": seed, "status": "done",
        "n_users": int(log.n_users), "n_items": int(log.n_items), "n_interactions": len(log),
        "targets": {k: int(v.size) for k, v in trained.split.items()},
        "seconds_per_epoch": r.seconds_per_epoch, "batch_size": batch_size,
        "training": "every position" if name in EVERY_POSITION else "one prefix per label",
        "recbole_settings": {**RECBOLE_SASREC_SETTINGS.get(name, {}), **({"project": False} if name in NO_PROJECTION
                                                                         else {})},
        "valid_curve": [h[task_object.monitor] for h in r.history], **conditions,
    }
    snap = r.snapshot or {}
    at_budget = {**common, "epoch_budget": budget, "patience": None, "epochs": snap["epochs"],
                 "best_epoch": snap["best_epoch"], "stopped_early": snap["epochs"] < budget,
                 "train_seconds": snap["train_seconds"],
                 "total_seconds": snap["train_seconds"] * total / max(r.train_seconds, 1e-9),
                 "test": snap["test"], "valid": snap["valid"]}
    write_record(budget_out, at_budget)
    if converging:
        write_record(converged_out, {**common, "epoch_budget": max_epochs, "patience": patience, "epochs": r.epochs,
                                     "best_epoch": r.best_epoch, "stopped_early": r.stopped_early,
                                     "train_seconds": r.train_seconds, "total_seconds": total, "test": r.test,
                                     "valid": r.valid})
    return at_budget


def ours_speed(name: str, batches: int, device: str = "cpu", batch_size: int | None = None) -> dict[str, Any]:
    """Seconds per training batch of our ``name`` under the shared protocol (window building included).

    :param batches: batches timed, after one warm-up batch that is not counted.
    :param device: where the encoder trains (``cpu``, ``cuda``).
    :param batch_size: training windows per step (default the shared protocol's, ``our_task_and_batch``).
    """
    if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
        raise ValueError(f"batches must be a whole number >= 1, got {batches!r}")
    torch.set_num_threads(THREADS)
    task, protocol_batch = our_task_and_batch(name)
    batch_size = batch_size or protocol_batch
    log = load("ml-100k")
    sequences = UserSequences.from_log(log)
    windows = WindowBuilder(sequences, n_users=log.n_users, history_length=HISTORY_LENGTH)
    split = task.split(sequences)
    torch.manual_seed(0)
    encoder = state_encoders.make(name, windows.observation_space, **our_encoder_kwargs(name, log))
    head = task.make_head(encoder, windows)
    place = resolve_device(device)
    encoder.to(place)  # as recgym.pretrain.trainer.fit places them
    head.to(place)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=LEARNING_RATE)
    order = np.random.default_rng(0).permutation(split["train"])
    n_batches = -(-order.size // batch_size)
    encoder.train()
    head.train()
    seconds = []
    for b in range(min(batches + 1, n_batches)):  # the loop of recgym.pretrain.trainer.fit
        tic = time.perf_counter()
        loss = task.loss(encoder, head, windows, order[b * batch_size : (b + 1) * batch_size])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if place.type == "cuda":
            torch.cuda.synchronize(place)  # the batch's queued GPU work belongs to its time
        seconds.append(time.perf_counter() - tic)
    per_batch = sum(seconds[1:]) / len(seconds[1:])
    return {"side": "recgym", "model": name, "device": device, "batch_size": batch_size,
            "batches_timed": len(seconds) - 1, "seconds_per_batch": per_batch,
            "batches_per_epoch": n_batches, "seconds_per_epoch": per_batch * n_batches, "threads": THREADS}
